"""The browser interface: server-rendered pages over the same services as the JSON API.

``router`` holds every page; ``app.main`` includes it. See :mod:`app.web.candidate` (start,
interview, report, progress), :mod:`app.web.reviewer` (the reviewer console) and
:mod:`app.web.security` (CSRF, cookies, headers).
"""

from __future__ import annotations

from app.web.routes import router

__all__ = ["router"]
