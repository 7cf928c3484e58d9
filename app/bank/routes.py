"""``GET /api/questions``: browse the bank (questions only; answers and rubrics stay private)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from app.bank.deps import BankDep
from app.errors import API_ERRORS

router = APIRouter(prefix="/api", tags=["bank"], responses=API_ERRORS)


class QuestionSummary(BaseModel):
    id: str
    track: str
    topic: str
    difficulty: str
    type: str
    tags: list[str]
    question: str


@router.get("/questions", response_model=list[QuestionSummary])
def list_questions(
    bank: BankDep, track: str | None = None, topic: str | None = None, difficulty: str | None = None
) -> list[QuestionSummary]:
    return [
        QuestionSummary(
            id=q.id,
            track=q.track,
            topic=q.topic,
            difficulty=q.difficulty.value,
            type=q.type.value,
            tags=list(q.tags),
            question=q.question,
        )
        for q in sorted(bank.questions.values(), key=lambda q: q.id)
        if (track is None or q.track == track)
        and (topic is None or q.topic == topic)
        and (difficulty is None or q.difficulty.value == difficulty)
    ]
