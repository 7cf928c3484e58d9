"""Reviewer API (``/api/review``), behind the reviewer token from settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from app.db.base import in_thread
from app.deps import Reviewer, SessionDep
from app.errors import API_ERRORS
from app.grading.schemas import GradeFlag, GradeResult
from app.interview.deps import InterviewsDep
from app.review import service
from app.review.schemas import OverrideIn, OverrideOut, ReviewTurn
from app.statuses import TurnGradingStatus

router = APIRouter(prefix="/api/review", tags=["review"], responses=API_ERRORS)


@router.get("/turns", response_model=list[ReviewTurn])
def list_turns(
    _: Reviewer,
    db: SessionDep,
    flagged: bool | None = None,
    grading_status: TurnGradingStatus | None = None,
    topic: str | None = None,
    flag: GradeFlag | None = None,
    limit: Annotated[int, Query(ge=1, le=500, description="How many turns at most.")] = 100,
) -> list[ReviewTurn]:
    """Answered turns, newest first, filtered by flag, grading status or topic."""
    turns = service.list_turns(db, flagged=flagged, grading_status=grading_status, topic=topic, flag=flag, limit=limit)
    return [service.review_turn(db, t) for t in turns]


@router.get("/turns/{turn_id}", response_model=ReviewTurn)
def get_turn(turn_id: str, _: Reviewer, db: SessionDep) -> ReviewTurn:
    """One turn with its grading parts, overrides and the audit trail of its LLM calls."""
    return service.review_turn(db, service.get_turn(db, turn_id), detail=True)


@router.post("/turns/{turn_id}/override", response_model=OverrideOut, status_code=status.HTTP_201_CREATED)
async def override(turn_id: str, body: OverrideIn, _: Reviewer, db: SessionDep) -> OverrideOut:
    """Record a reviewer's score and note; the grader's original score is kept."""
    row = await in_thread(service.override_turn, db, turn_id, body)
    return OverrideOut.model_validate(row, from_attributes=True)


@router.post("/turns/{turn_id}/regrade", response_model=GradeResult | None)
async def regrade(turn_id: str, _: Reviewer, db: SessionDep, interviews: InterviewsDep) -> GradeResult | None:
    """Grade a kept answer again (e.g. one left ``ungraded`` by a failure)."""
    return await interviews.regrade(db, turn_id)
