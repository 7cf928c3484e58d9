"""Writes every LLM call record to the ``llm_calls`` table.

Audit rows use their own short transaction, committed at once, so a call is on record even when
the request that caused it fails or is rolled back. The record names the turn it was made for
(``turn_id``, taken by the judge from the grading input).
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.orm import Session, sessionmaker

from app.grading.models import LLMCall
from app.grading.schemas import LLMCallRecord

log = logging.getLogger(__name__)


class DatabaseAudit:
    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory

    def write(self, record: LLMCallRecord) -> None:
        row = LLMCall(**record.model_dump())
        with self.session_factory() as session, session.begin():
            session.add(row)

    async def __call__(self, record: LLMCallRecord) -> None:
        try:
            await asyncio.to_thread(self.write, record)
        except Exception:  # the audit must never break grading, but must be loud
            log.exception("could not write LLM audit record: %s", record.model_dump_json())
