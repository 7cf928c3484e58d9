"""The session's end-of-session report: built by the reports domain, kept on the session."""

from __future__ import annotations

import logging

from pydantic import ValidationError

from app.bank.loader import Bank
from app.interview.models import InterviewSession
from app.reports.schemas import Report, SessionRecord
from app.reports.service import build_report

log = logging.getLogger(__name__)


def live_report(session: InterviewSession, bank: Bank) -> Report:
    """The report of the session as its turns stand now (not stored)."""
    return build_report(SessionRecord.model_validate(session), bank)


def write_report(session: InterviewSession, bank: Bank) -> Report:
    """Build the session's report from its stored turns and keep it on the session (as JSON)."""
    report = live_report(session, bank)
    session.report = report.model_dump(mode="json")
    return report


def stored_report(session: InterviewSession) -> Report | None:
    """The report kept on the session, or ``None`` if there is none (or it has an older shape
    than :class:`Report`, in which case the caller builds it again)."""
    if session.report is None:
        return None
    try:
        return Report.model_validate(session.report)
    except ValidationError:
        log.info("the stored report of session %s has an older shape; building it again", session.id)
        return None
