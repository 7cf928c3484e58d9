"""Live agreement between the served grader and the shadow configuration.

When ``MOCKINTERVIEW_SHADOW_JUDGE_MODEL`` or ``MOCKINTERVIEW_SHADOW_PROMPT_VERSION`` is set, every
live answer is also graded by the shadow configuration (never shown to the candidate) and the
result is stored on the turn. This reads those pairs back.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.interview.models import Turn
from evals.metrics import all_metrics


def shadow_agreement(db: Session) -> dict[str, Any]:
    turns = db.scalars(select(Turn).where(Turn.shadow_grading.is_not(None), Turn.score.is_not(None))).all()
    pairs = [
        (float(t.score), float(t.shadow_grading["score"]))
        for t in turns
        if t.score is not None and t.shadow_grading and t.shadow_grading.get("score") is not None
    ]
    configs = sorted({str((t.shadow_grading or {}).get("config")) for t in turns})
    if len(pairs) < 2:
        return {"n": len(pairs), "configs": configs, "message": "fewer than two live answers have a shadow grading"}
    served = [p[0] for p in pairs]
    shadow = [p[1] for p in pairs]
    # Agreement of the shadow with the served grader (the served score plays the reference).
    return {"n": len(pairs), "configs": configs, **all_metrics(shadow, served)}
