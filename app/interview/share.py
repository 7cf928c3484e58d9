"""Read-only share links for a report: a random token whose hash is kept on the session."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.interview.models import InterviewSession
from app.security import hash_token
from app.statuses import SessionStatus


def create_share_token(session: InterviewSession) -> str:
    """A new share token for ``session``; it replaces (and so revokes) any earlier one.

    Only its hash is stored, so the token can be shown once, when it is made.
    """
    token = secrets.token_urlsafe(24)
    session.share_token_hash = hash_token(token)
    return token


def revoke_share(session: InterviewSession) -> None:
    session.share_token_hash = None


def shared_session(db: Session, token: str) -> InterviewSession:
    """The finished session this share token opens; anything else is an unknown link."""
    if not token or len(token) > 128:
        raise NotFound("this shared report does not exist (the link may have been revoked)")
    found = db.scalar(select(InterviewSession).where(InterviewSession.share_token_hash == hash_token(token)))
    if found is None or found.status != SessionStatus.finished:
        raise NotFound("this shared report does not exist (the link may have been revoked)")
    return found
