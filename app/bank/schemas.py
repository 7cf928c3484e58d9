"""The pydantic schema every bank YAML file is validated against."""

from __future__ import annotations

import hashlib
import json
import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.rubric import RubricPoint

ID_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


class Difficulty(StrEnum):
    easy = "easy"
    medium = "medium"
    hard = "hard"

    @property
    def level(self) -> int:
        return {"easy": 0, "medium": 1, "hard": 2}[self.value]

    @classmethod
    def from_level(cls, level: int) -> Difficulty:
        return [cls.easy, cls.medium, cls.hard][max(0, min(2, level))]


class QuestionType(StrEnum):
    conceptual = "conceptual"
    scenario = "scenario"
    design = "design"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class RubricItem(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    point: str = Field(min_length=10)
    weight: float = Field(gt=0)
    essential: bool = False
    variants: list[str] = Field(default_factory=list, max_length=4)
    """Plain-language restatements of the point that earn the same credit."""

    @field_validator("variants")
    @classmethod
    def _variants_are_claims(cls, value: list[str]) -> list[str]:
        value = [" ".join(v.split()) for v in value]
        short = [v for v in value if len(v.split()) < 5]
        if short:
            raise ValueError(f"a variant restates the whole point in a sentence (5+ words): {short[0]!r}")
        return value


class Misconception(_Strict):
    """A confusion interviewers hear, stated as a candidate would, and the point it contradicts."""

    id: str = Field(pattern=r"^m[0-9]+$")
    contradicts: str
    statement: str = Field(min_length=20)


def _points(items: list[RubricItem], wrong: dict[str, list[str]] | None = None) -> list[RubricPoint]:
    return [
        RubricPoint(
            id=r.id,
            text=r.point,
            weight=r.weight,
            essential=r.essential,
            variants=list(r.variants),
            misconceptions=(wrong or {}).get(r.id, []),
        )
        for r in items
    ]


class FollowUp(_Strict):
    """A follow-up either probes one of its question's rubric points (and is graded against that
    point) or goes ``deeper`` than the question, with a reference answer and rubric of its own:
    an answer about a new sub-topic is not graded against the points the question already asked."""

    question: str = Field(min_length=10)
    probes: str | None = None
    deeper: bool = False
    reference_answer: str | None = Field(default=None, min_length=40)
    rubric: list[RubricItem] = Field(default_factory=list, max_length=4)

    @model_validator(mode="after")
    def _probes_or_deeper(self) -> FollowUp:
        if bool(self.probes) == self.deeper:
            raise ValueError("a follow-up needs exactly one of `probes: <rubric id>` or `deeper: true`")
        if self.probes and (self.rubric or self.reference_answer):
            raise ValueError(
                "a follow-up that probes a rubric point is graded against it: drop its rubric/reference_answer"
            )
        if self.deeper:
            if not self.reference_answer or len(self.rubric) < 2:
                raise ValueError("a deeper follow-up needs its own reference_answer and a rubric of 2-4 points")
            ids = [r.id for r in self.rubric]
            if len(set(ids)) != len(ids):
                raise ValueError(f"duplicate rubric ids in a deeper follow-up: {', '.join(ids)}")
            if not any(r.essential for r in self.rubric):
                raise ValueError("at least one rubric point of a deeper follow-up must be essential")
        return self

    def rubric_points(self) -> list[RubricPoint]:
        """A deeper follow-up's own rubric, as the grader reads it."""
        return _points(self.rubric)


class BankQuestion(_Strict):
    id: str
    track: str
    topic: str
    difficulty: Difficulty
    type: QuestionType
    tags: list[str] = Field(default_factory=list)
    question: str = Field(min_length=10)
    reference_answer: str = Field(min_length=40)
    rubric: list[RubricItem] = Field(min_length=3, max_length=6)
    misconceptions: list[Misconception] = Field(default_factory=list, max_length=4)
    follow_ups: list[FollowUp] = Field(min_length=1, max_length=3)
    hints: list[str] = Field(min_length=1, max_length=4)
    sources: list[str] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _id_format(cls, value: str) -> str:
        if not ID_PATTERN.match(value):
            raise ValueError("ids are lowercase words joined by hyphens, e.g. mlops-deployment-01")
        return value

    @model_validator(mode="after")
    def _rubric_consistency(self) -> BankQuestion:
        ids = [r.id for r in self.rubric]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate rubric ids: {', '.join(dupes)}")
        if not any(r.essential for r in self.rubric):
            raise ValueError("at least one rubric point must be essential")
        unknown = [f.probes for f in self.follow_ups if f.probes and f.probes not in ids]
        if unknown:
            raise ValueError(f"follow_ups probe unknown rubric ids: {', '.join(map(str, unknown))}")
        m_ids = [m.id for m in self.misconceptions]
        if len(set(m_ids)) != len(m_ids):
            dupes = sorted({i for i in m_ids if m_ids.count(i) > 1})
            raise ValueError(f"duplicate misconception ids: {', '.join(dupes)}")
        wrong = [f"{m.id} -> {m.contradicts}" for m in self.misconceptions if m.contradicts not in ids]
        if wrong:
            raise ValueError(f"misconceptions contradict unknown rubric ids: {', '.join(wrong)}")
        points = {r.id: " ".join(r.point.lower().split()) for r in self.rubric}
        same = [m.id for m in self.misconceptions if " ".join(m.statement.lower().split()) == points[m.contradicts]]
        if same:
            raise ValueError(f"a misconception must differ from the point it contradicts: {', '.join(same)}")
        return self

    @property
    def content_hash(self) -> str:
        """Stable hash of everything a candidate could be asked or graded against."""
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def rubric_points(self) -> list[RubricPoint]:
        wrong: dict[str, list[str]] = {}
        for m in self.misconceptions:
            wrong.setdefault(m.contradicts, []).append(m.statement)
        return _points(self.rubric, wrong)

    def deeper_follow_up(self, asked: str) -> FollowUp | None:
        """The ``deeper`` follow-up whose question is ``asked`` (whitespace aside), if any."""
        key = " ".join(asked.split())
        return next((f for f in self.follow_ups if f.deeper and " ".join(f.question.split()) == key), None)

    def follow_up_for(self, point_id: str) -> FollowUp | None:
        return next((f for f in self.follow_ups if f.probes == point_id), None)


TITLE_MAX = 80


class BankFile(_Strict):
    title: str | None = Field(default=None, min_length=1, max_length=TITLE_MAX)
    """The topic's name as people read it ("Monitoring and drift"); without one, pages show the
    file's slug (``monitoring-drift``)."""
    questions: list[BankQuestion] = Field(min_length=1)
