"""Reviewer overrides as lines of the eval gold set (``evals/datasets/gold-*.jsonl``).

Each line is one human-scored answer to a bank question::

    {"id": "override-<override id>", "question_id": ..., "answer": ..., "human_score": ...,
     "rationale": <note>, "category": "reviewer-override", "source_turn_id": ...,
     "grader_score": <the grader's original score>}

so that human corrections flow back into the rubric regression evals. The gold set grades
an answer against its bank question and full rubric, so answers to follow-up questions (which
were asked something else) are not exported; :func:`gold_lines` says how many it left out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.interview.models import Turn
from app.review.models import ReviewOverride

CATEGORY = "reviewer-override"


@dataclass
class GoldExport:
    lines: list[dict[str, Any]] = field(default_factory=list)
    left_out: dict[str, str] = field(default_factory=dict)
    """Override id -> why it is not exported."""

    def jsonl(self) -> str:
        return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in self.lines)


def gold_line(override: ReviewOverride, turn: Turn) -> dict[str, Any]:
    return {
        "id": f"override-{override.id}",
        "question_id": turn.question_id,
        "answer": turn.answer_text or "",
        "human_score": override.score,
        "rationale": override.note,
        "category": CATEGORY,
        "source_turn_id": turn.id,
        "grader_score": override.original_score,
    }


def gold_lines(db: Session, *, history: bool = False) -> GoldExport:
    """Overrides as gold-set lines, oldest first. By default only each turn's latest override
    (a later correction supersedes an earlier one); ``history`` exports every override."""
    rows = db.execute(
        select(ReviewOverride, Turn)
        .join(Turn, Turn.id == ReviewOverride.turn_id)
        .order_by(ReviewOverride.created_at, ReviewOverride.id)
    ).all()
    out = GoldExport()
    chosen: dict[str, tuple[ReviewOverride, Turn]] = {}
    for override, turn in rows:
        if turn.is_follow_up:
            out.left_out[override.id] = "answer to a follow-up question (the gold set grades main questions)"
            continue
        if not (turn.answer_text or "").strip():
            out.left_out[override.id] = "no answer text"
            continue
        key = override.id if history else turn.id
        if key in chosen:
            out.left_out[chosen[key][0].id] = "superseded by a later override of the same turn"
        chosen[key] = (override, turn)
    out.lines = [gold_line(o, t) for o, t in sorted(chosen.values(), key=lambda ot: (ot[0].created_at, ot[0].id))]
    return out
