"""Spoken answers: a recording of the candidate's answer to the current question, as text.

The text is not an answer yet: it goes back to the candidate (the page puts it in the answer
box), who reads and edits it, then submits it like any typed answer.
"""

from __future__ import annotations

from fastapi import UploadFile

from app.db.base import in_thread
from app.errors import Conflict, NotFound
from app.grading.judge_transcription import Transcriber
from app.interview.models import InterviewSession
from app.statuses import SessionStatus, TurnStatus


async def transcribe_answer(transcriber: Transcriber | None, session: InterviewSession, audio: UploadFile) -> str:
    """The text of ``audio``, spoken as the answer to ``session``'s current question."""
    if transcriber is None:
        raise NotFound("transcription is not configured (set MOCKINTERVIEW_TRANSCRIPTION_MODEL); type the answer")
    if session.status != SessionStatus.active:
        raise Conflict("the interview is finished: there is no question to answer")
    turn_id = await in_thread(_asked_turn_id, session)  # may load the turns: off the event loop
    data = await audio.read(transcriber.max_bytes + 1)
    return await transcriber.transcribe(
        data, audio.filename or "answer.webm", audio.content_type or "", turn_id=turn_id
    )


def _asked_turn_id(session: InterviewSession) -> str | None:
    return next((t.id for t in session.turns if t.status == TurnStatus.asked), None)
