"""CSRF protection, cookies and response headers of the browser pages.

CSRF is a double submit: a random token lives in an HttpOnly, SameSite=Lax cookie and is
repeated in every state-changing request, as the hidden form field ``csrf_token`` or (for
``fetch``) the ``X-CSRF-Token`` header. A request from another site can send the cookie but
cannot read it, so it cannot repeat it. Requests that browsers mark as cross-site
(``Sec-Fetch-Site`` other than ``same-origin``) or whose ``Origin`` is another host are
refused outright.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner
from starlette.responses import Response

from app.config import Settings
from app.errors import Forbidden

CSRF_COOKIE = "mi_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
CANDIDATE_COOKIE = "mi_candidate"
REVIEWER_COOKIE = "mi_reviewer"
SESSION_COOKIE_PREFIX = "mi_session_"

SESSION_COOKIE_MAX_AGE = 60 * 60 * 24 * 90
CANDIDATE_COOKIE_MAX_AGE = 60 * 60 * 24 * 365

CSRF_FAILED = "This form has expired or did not come from this site (CSRF check failed). Reload the page and try again."

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.ctx.settings
    return settings


def session_cookie_name(session_id: str) -> str:
    return f"{SESSION_COOKIE_PREFIX}{session_id}"


def set_cookie(
    response: Response,
    request: Request,
    name: str,
    value: str,
    *,
    max_age: int,
    path: str = "/",
    samesite: str = "lax",
) -> None:
    """Every cookie of the web pages is HttpOnly and SameSite; Secure follows the settings."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=True,
        samesite=samesite,  # type: ignore[arg-type]
        secure=settings_of(request).cookie_secure,
    )


# ------------------------------------------------------------------------------------ CSRF
def csrf_token(request: Request) -> str:
    """The request's CSRF token: the cookie's, or a new one (set on the response by render)."""
    token = getattr(request.state, "csrf_token", None)
    if token:
        return str(token)
    existing = request.cookies.get(CSRF_COOKIE, "")
    if 20 <= len(existing) <= 128:
        token = existing
    else:
        token = secrets.token_urlsafe(32)
        request.state.csrf_new = True
    request.state.csrf_token = token
    return token


def attach_csrf_cookie(request: Request, response: Response) -> None:
    if getattr(request.state, "csrf_new", False):
        set_cookie(response, request, CSRF_COOKIE, request.state.csrf_token, max_age=CANDIDATE_COOKIE_MAX_AGE)


def _same_origin(request: Request) -> bool:
    """What the browser says about where the request came from. ``Sec-Fetch-Site`` (every
    current browser) is trusted first; older browsers are checked by ``Origin``."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin and origin != "null":
        hosts = {request.headers.get("host", ""), request.headers.get("x-forwarded-host", "")}
        return urlsplit(origin).netloc in hosts - {""}
    return True


async def check_csrf(request: Request) -> None:
    """Dependency for every state-changing web request."""
    if not _same_origin(request):
        raise Forbidden(CSRF_FAILED)
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else ""
    if not cookie or not sent or not hmac.compare_digest(cookie.encode(), sent.encode()):
        raise Forbidden(CSRF_FAILED)


CsrfChecked = Annotated[None, Depends(check_csrf)]


# -------------------------------------------------------------------------------- reviewer
def _reviewer_signer(settings: Settings) -> TimestampSigner | None:
    if settings.reviewer_token is None:
        return None
    return TimestampSigner(settings.reviewer_token.get_secret_value(), salt="mockinterview web reviewer v2")


def reviewer_cookie_value(settings: Settings) -> str | None:
    """A new reviewer cookie: signed with the reviewer token and its issue time, so it never
    gives the token away, expires after ``reviewer_session_hours``, and rotating the token
    signs everyone out."""
    signer = _reviewer_signer(settings)
    return signer.sign(b"reviewer").decode() if signer is not None else None


def reviewer_cookie_valid(settings: Settings, value: str) -> bool:
    signer = _reviewer_signer(settings)
    if signer is None or not value:
        return False
    try:
        signer.unsign(value, max_age=max(1, round(settings.reviewer_session_hours * 3600)))
    except (BadSignature, SignatureExpired):
        return False
    return True


# --------------------------------------------------------------------------------- headers
def add_security_headers(response: Response, *, cache: bool = False) -> None:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if not cache:
        response.headers.setdefault("Cache-Control", "no-store")
