"""FastAPI dependencies shared by every domain's routes, as ``Annotated`` aliases so route
signatures stay short: the request's database session (which owns the commit), settings,
bearer tokens and the reviewer check.

Shared below the domains: nothing here imports a domain. Each domain keeps the dependencies
on its own services beside its routes (``app/grading/deps.py``, ``app/interview/deps.py``,
``app/bank/deps.py``); the whole process context is :data:`app.context.ContextDep`.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from app.config import Settings
from app.db.base import finish_in_thread
from app.errors import Forbidden, Unauthorized

_bearer = HTTPBearer(auto_error=False, description="The session token, or the reviewer token.")


def process_context(request: Request) -> Any:
    """The process's :class:`app.context.AppContext` (set on ``app.state`` by ``app.main``).

    Typed ``Any`` here because the context is built above the domains; the dependencies that
    read it return typed objects."""
    return request.app.state.ctx


def get_settings(request: Request) -> Settings:
    settings: Settings = process_context(request).settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_db(request: Request) -> AsyncIterator[Session]:
    """One database session per request, and the owner of its commit: what the route did is
    committed when it returns, rolled back when it raises.

    ``scope="function"`` runs this exit code before the response is sent (FastAPI's default
    runs it after), so a reply never announces work whose commit then failed. The commit runs
    in a thread of its own pool (:func:`app.db.base.finish_in_thread`), never on the loop."""
    session = process_context(request).session_factory()
    try:
        yield session
    except Exception:
        await finish_in_thread(session.rollback)
        raise
    else:
        await finish_in_thread(session.commit)
    finally:
        await finish_in_thread(session.close)


SessionDep = Annotated[Session, Depends(get_db, scope="function")]


BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def bearer_token(request: Request, credentials: BearerDep, cookie_name: str | None = None) -> str:
    if credentials is not None and credentials.scheme.lower() == "bearer":
        return credentials.credentials
    if cookie_name and request.cookies.get(cookie_name):
        return request.cookies[cookie_name]
    raise Unauthorized("a session token is required (Authorization: Bearer <token>)")


def require_reviewer(credentials: BearerDep, settings: SettingsDep) -> str:
    expected = settings.reviewer_token
    if expected is None:
        raise Forbidden("reviewer access is disabled: set MOCKINTERVIEW_REVIEWER_TOKEN")
    if credentials is None:
        raise Unauthorized("the reviewer token is required (Authorization: Bearer <token>)")
    if not hmac.compare_digest(credentials.credentials.encode(), expected.get_secret_value().encode()):
        raise Forbidden("invalid reviewer token")
    return "reviewer"


Reviewer = Annotated[str, Depends(require_reviewer)]
