"""What the candidate reads about a grading: the status message, strengths, gaps and one
improvement, from the point verdicts (the judge's where it read the answer).

Kept apart from the scoring in :mod:`app.grading.service`: this module decides words, never
numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.grading.claims import MSG_KEYWORD_LIST
from app.grading.schemas import JudgeVerdict, PointResult, Verdict

MSG_EMBEDDING_ONLY_OFF = (
    "Scored by embedding similarity only: no LLM judge is configured, so the rubric points "
    "were matched by meaning, not read by a judge."
)
MSG_JUDGE_FAILED = (
    "Scored by embedding similarity only: the LLM judge {why}, so this score did not get a "
    "judge's reading. It can be regraded later."
)
MSG_JUDGE_LATE = (
    "Scored by embedding similarity for now: the LLM judge had not replied within {s} s, so the "
    "interview went on. The judge's reading replaces this score when it arrives."
)
MSG_NON_ANSWER = "No substantive answer was given, so it scores 0 (no model was asked)."
MSG_INJECTION = (
    "Part of the answer spoke to the grader instead of answering the question; it was set aside, "
    "earned nothing, and the turn is flagged for a reviewer."
)
MSG_OFF_TOPIC = "The answer shares no term with the question or its rubric: it seems to be about something else."
MSG_HYBRID = "Scored by the rubric LLM judge and embedding similarity together."
MSG_UNCLEAR = (
    "{n} rubric point{s} could not be confirmed from the embedding evidence (shown as not "
    "confirmed, not as missing): an LLM judge or a reviewer would settle them."
)
CAP_MESSAGES = {
    "keyword_list": MSG_KEYWORD_LIST,
    "wrong_essential": "The answer states a known misconception about an essential point, so it cannot pass.",
    "wrong_point": "The answer states a known misconception about a rubric point, so it cannot pass.",
}


def merge_judge_points(points: Sequence[PointResult], verdict: JudgeVerdict | None) -> list[PointResult]:
    """The embedding's point results, with the judge's verdict and quote where it gave one."""
    merged = [p.model_copy() for p in points]
    if verdict is None:
        return merged
    by_id = {p.id: p for p in verdict.points}
    for p in merged:
        jp = by_id.get(p.id)
        if jp is not None:
            p.judge_verdict = jp.verdict
            p.judge_quote = jp.quote or None
            p.verdict = jp.verdict
            if jp.quote:
                p.evidence = jp.quote
            elif jp.verdict is Verdict.missing:
                p.evidence = None  # nothing in the answer supports a point the judge found missing
    return merged


def status_message(
    message: str, points: Sequence[PointResult], caps: Sequence[str], *, injection: bool, off_topic: bool
) -> str:
    """How the score was made (``message``), then why it is what it is: the caps that held, a
    set-aside instruction, points not confirmed, an answer about something else."""
    notes = [CAP_MESSAGES[c] for c in caps] + ([MSG_INJECTION] if injection else [])
    unclear = sum(p.verdict is Verdict.unclear for p in points)
    if unclear:
        notes.append(MSG_UNCLEAR.format(n=unclear, s="" if unclear == 1 else "s"))
    if off_topic:
        notes.append(MSG_OFF_TOPIC)
    return " ".join([message, *notes])


@dataclass(frozen=True)
class Feedback:
    strengths: list[str]
    gaps: list[str]
    improvement: str


def build_feedback(points: Sequence[PointResult], verdict: JudgeVerdict | None) -> Feedback:
    """Strengths and gaps name points (each point's evidence is quoted once, on the point); a
    judge's own lists and improvement win where it wrote them."""
    strengths = [p.text for p in points if p.verdict is Verdict.covered]
    gaps = (
        [_gap(p) for p in points if p.verdict in (Verdict.missing, Verdict.wrong)]
        + [f"{p.text} (only partly made)" for p in points if p.verdict is Verdict.partial]
        + [f"{p.text} (not confirmed)" for p in points if p.verdict is Verdict.unclear]
    )
    if verdict is not None:
        strengths = verdict.strengths or strengths
        gaps = verdict.gaps or gaps
    improvement = (verdict.improvement if verdict is not None else "") or _improvement(points)
    return Feedback(strengths=strengths, gaps=gaps, improvement=improvement)


def _gap(p: PointResult) -> str:
    return f"{p.text} (incorrect)" if p.verdict is Verdict.wrong else f"{p.text} (not addressed)"


def _improvement(points: Sequence[PointResult]) -> str:
    """One concrete next step: the most important rubric point the answer missed."""
    order = {Verdict.wrong: 0, Verdict.missing: 1, Verdict.partial: 2, Verdict.unclear: 3}
    missed = [p for p in points if p.verdict in order]
    if not missed:
        return "All rubric points were covered; tighten the answer with a concrete example."
    worst = min(missed, key=lambda p: (order[p.verdict], p.coverage))
    if worst.verdict is Verdict.wrong:
        return f"Correct this point: {worst.text}"
    if worst.verdict is Verdict.unclear:
        return f"State this point in a sentence of its own, so that it can be confirmed: {worst.text}"
    if worst.verdict is Verdict.partial:
        return f"Make this point explicitly and completely: {worst.text}"
    return f"Add the point you left out: {worst.text}"
