"""``POST /api/grade``: stateless grading through the same code as the interview."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field, field_validator

from app.deps import GraderDep, SettingsDep
from app.errors import InvalidInput
from app.grading.schemas import GradeInput, GradeResult, RubricPoint
from app.interview.schemas import check_text

router = APIRouter(prefix="/api", tags=["grading"])


class GradeRequest(BaseModel):
    question: str = Field(min_length=1, max_length=4000)
    reference_answer: str = Field(min_length=1, max_length=8000)
    rubric: list[str] | None = Field(
        default=None, max_length=12, description="Key points; derived from the reference answer when absent."
    )
    answer: str

    @field_validator("answer", "question", "reference_answer")
    @classmethod
    def _plain(cls, value: str) -> str:
        return check_text(value, "text")

    def to_input(self) -> GradeInput:
        points = [
            RubricPoint(id=f"r{i + 1}", text=t, essential=i == 0) for i, t in enumerate(self.rubric or []) if t.strip()
        ]
        return GradeInput(
            question=self.question, reference_answer=self.reference_answer, answer=self.answer, rubric=points
        )


@router.post("/grade", response_model=GradeResult)
async def grade(body: GradeRequest, grader: GraderDep, settings: SettingsDep) -> GradeResult:
    """Grade one answer against a reference answer (and optional rubric points)."""
    if len(body.answer) > settings.max_answer_chars:
        raise InvalidInput(f"answer is {len(body.answer)} characters; the limit is {settings.max_answer_chars}")
    if grader is None:
        raise InvalidInput("the grader is not available")
    return await grader.grade(body.to_input())
