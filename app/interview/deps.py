"""The interview domain's route dependencies: the interview engine and the session a request acts on."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.deps import BearerDep, SessionDep, bearer_token, process_context
from app.grading.deps import GraderDep
from app.grading.judge_transcription import Transcriber
from app.interview.models import InterviewSession
from app.interview.service import InterviewService


def get_interviews(request: Request, grader: GraderDep) -> InterviewService:
    ctx = process_context(request)
    return InterviewService(ctx.settings, ctx.bank, grader, ctx.shadow, ctx.runtime)


InterviewsDep = Annotated[InterviewService, Depends(get_interviews)]


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


def get_transcriber(request: Request) -> Transcriber | None:
    """Speech to text for recorded answers (``None`` unless a transcription model is set)."""
    transcriber: Transcriber | None = process_context(request).transcriber
    return transcriber


TranscriberDep = Annotated[Transcriber | None, Depends(get_transcriber)]
