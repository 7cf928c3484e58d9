"""FastAPI dependencies, as ``Annotated`` aliases so route signatures stay short."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from app.config import Settings
from app.context import AppContext
from app.db.base import finish_in_thread
from app.errors import Forbidden, Unauthorized
from app.grading.service import Grader
from app.interview.models import InterviewSession
from app.interview.service import InterviewService

_bearer = HTTPBearer(auto_error=False, description="The session token, or the reviewer token.")


def get_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


ContextDep = Annotated[AppContext, Depends(get_context)]


def get_settings(ctx: ContextDep) -> Settings:
    return ctx.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_db(ctx: ContextDep) -> AsyncIterator[Session]:
    """One database session per request, and the owner of its commit: what the route did is
    committed when it returns, rolled back when it raises.

    ``scope="function"`` runs this exit code before the response is sent (FastAPI's default
    runs it after), so a reply never announces work whose commit then failed. The commit runs
    in a thread of its own pool (:func:`app.db.base.finish_in_thread`), never on the loop."""
    session = ctx.session_factory()
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


async def get_grader(ctx: ContextDep) -> Grader | None:
    """The grader, waiting (briefly) for the model if the process is still loading it."""
    if not ctx.loaded.is_set():
        await asyncio.to_thread(ctx.loaded.wait, 120)
    return ctx.grader


GraderDep = Annotated[Grader | None, Depends(get_grader)]


def get_interviews(ctx: ContextDep, grader: GraderDep) -> InterviewService:
    return InterviewService(ctx.settings, ctx.bank, grader, ctx.shadow, ctx.runtime)


InterviewsDep = Annotated[InterviewService, Depends(get_interviews)]
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def bearer_token(request: Request, credentials: BearerDep, cookie_name: str | None = None) -> str:
    if credentials is not None and credentials.scheme.lower() == "bearer":
        return credentials.credentials
    if cookie_name and request.cookies.get(cookie_name):
        return request.cookies[cookie_name]
    raise Unauthorized("a session token is required (Authorization: Bearer <token>)")


def get_current_session(
    session_id: str, request: Request, credentials: BearerDep, db: SessionDep, interviews: InterviewsDep
) -> InterviewSession:
    # The session cookie counts only for reads: state-changing API calls need the Bearer token,
    # so a cross-site form can never act with a candidate's cookie (the web pages post to their
    # own CSRF-checked endpoints).
    cookie = f"mi_session_{session_id}" if request.method in ("GET", "HEAD") else None
    token = bearer_token(request, credentials, cookie_name=cookie)
    return interviews.authenticate(db, session_id, token)  # ends its read (no lock held after)


CurrentSession = Annotated[InterviewSession, Depends(get_current_session)]


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
