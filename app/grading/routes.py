"""``POST /api/grade``: stateless grading through the same code as the interview."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, field_validator

from app.deps import BearerDep, SettingsDep
from app.errors import API_ERRORS, InvalidInput, RateLimited, Unauthorized
from app.grading.deps import GradeGateDep, GraderDep
from app.grading.schemas import GradeInput, GradeResult, RubricPoint
from app.limits import TooManyRequests
from app.text import PLAIN_SCHEMA, RUBRIC_ITEMS_MAX, Question, Reference, RubricItem, check_text

router = APIRouter(prefix="/api", tags=["grading"], responses=API_ERRORS)


class GradeRequest(BaseModel):
    """Every field is bounded (the limits are in :mod:`app.text`; the answer's is the
    ``max_answer_chars`` setting), so no request can make the models work without limit."""

    question: Question
    reference_answer: Reference
    rubric: list[RubricItem] | None = Field(
        default=None,
        max_length=RUBRIC_ITEMS_MAX,
        description="Key points; derived from the reference answer when absent.",
    )
    answer: Annotated[str, PLAIN_SCHEMA]

    @field_validator("answer")
    @classmethod
    def _plain(cls, value: str) -> str:
        return check_text(value, "answer")

    def to_input(self) -> GradeInput:
        points = [
            RubricPoint(id=f"r{i + 1}", text=t, essential=i == 0) for i, t in enumerate(self.rubric or []) if t.strip()
        ]
        return GradeInput(
            question=self.question, reference_answer=self.reference_answer, answer=self.answer, rubric=points
        )


@router.post(
    "/grade",
    response_model=GradeResult,
    # The bearer token is optional here (needed only when ``grade_api_token`` is set): in OpenAPI,
    # an empty requirement beside the bearer scheme says so (FastAPI appends it to the bearer's).
    openapi_extra={"security": [{}]},
)
async def grade(
    body: GradeRequest,
    request: Request,
    credentials: BearerDep,
    settings: SettingsDep,
    gate: GradeGateDep,
    grader: GraderDep,
) -> GradeResult:
    """Grade one answer against a reference answer (and optional rubric points). Limited per
    client and in concurrency (429 with ``Retry-After``); needs ``grade_api_token`` if set."""
    expected = settings.grade_api_token
    if expected is not None:
        sent = credentials.credentials if credentials is not None else ""
        if not hmac.compare_digest(sent.encode(), expected.get_secret_value().encode()):
            raise Unauthorized("this endpoint needs the grading token (Authorization: Bearer <token>)")
    if len(body.answer) > settings.max_answer_chars:
        raise InvalidInput(f"answer is {len(body.answer)} characters; the limit is {settings.max_answer_chars}")
    if grader is None:
        raise InvalidInput("the grader is not available")
    try:
        gate.admit(request.client.host if request.client else "unknown")
    except TooManyRequests as exc:
        raise RateLimited(exc.message, exc.retry_after_s) from None
    try:
        return await grader.grade(body.to_input())
    finally:
        gate.release()
