"""The end-of-session feedback report, built from the stored turns (never from memory)."""

from __future__ import annotations

from collections import defaultdict
from statistics import mean

from app.bank.loader import Bank
from app.grading.schemas import Verdict
from app.reports.schemas import PointNote, RecommendedQuestion, Report, SessionRecord, TranscriptEntry
from app.rubric import PASS_MARK, round_score
from app.statuses import TurnStatus
from app.text import IDK_ANSWER

GAP_VERDICTS = (Verdict.missing.value, Verdict.wrong.value, Verdict.unclear.value)


def answered_summary(answered: int, planned: int, skipped: int, dont_know: int) -> str:
    """ "2 of 3 (1 skipped, counted as 0)": what the report says about how many were answered."""
    extra = [f"{skipped} skipped"] if skipped else []
    extra += [f'{dont_know} "I don\'t know"'] if dont_know else []
    tail = f" ({', '.join(extra)}, counted as 0)" if extra else ""
    return f"{answered} of {planned}{tail}"


def build_report(session: SessionRecord, bank: Bank) -> Report:
    turns = list(session.turns)
    mains = [t for t in turns if not t.is_follow_up]
    follow_ups = {t.id: [f for f in turns if f.parent_turn_id == t.id] for t in mains}

    question_scores: list[float] = []
    per_topic: dict[str, list[float]] = defaultdict(list)
    strengths: list[PointNote] = []
    gaps: list[PointNote] = []
    ungraded: list[str] = []
    statuses: dict[str, int] = defaultdict(int)

    for main in mains:
        if main.status == TurnStatus.unanswered:
            continue
        if main.status == TurnStatus.skipped:
            score: float = 0.0
        elif main.score is None:
            ungraded.append(main.id)
            continue
        else:
            # A follow-up that covers what the main answer missed earns back part of the gap.
            fu_scores = [f.score for f in follow_ups[main.id] if f.score is not None and f.probes_point]
            assert main.score is not None
            score = main.score
            if fu_scores:
                score = main.score + 0.25 * max(0.0, mean(fu_scores) - main.score)
        question_scores.append(score)
        per_topic[main.topic].append(score)

    for t in turns:
        statuses[t.grading_status.value] += 1
        grading = t.grading or {}
        for point in grading.get("points", []):
            note = PointNote(
                turn_id=t.id, question_id=t.question_id, point=point["text"], evidence=point.get("evidence")
            )
            if point["verdict"] == Verdict.covered.value:
                strengths.append(note)
            elif point["verdict"] in GAP_VERDICTS:
                gaps.append(note.model_copy(update={"verdict": point["verdict"]}))

    answered = [m for m in mains if m.status == TurnStatus.answered and m.answer_text != IDK_ANSWER]
    skipped = sum(m.status == TurnStatus.skipped for m in mains)
    dont_know = sum(m.status == TurnStatus.answered and m.answer_text == IDK_ANSWER for m in mains)
    overall = round_score(mean(question_scores)) if question_scores else None
    topic_scores = {k: round_score(mean(v)) for k, v in sorted(per_topic.items())}
    asked = {t.question_id for t in turns}
    weakest = sorted(topic_scores, key=lambda k: topic_scores[k])
    focus = weakest[:2] or list(session.topics) or bank.topics(session.track)
    recommended = [
        RecommendedQuestion(question_id=q.id, topic=q.topic, difficulty=q.difficulty.value, question=q.question)
        for q in sorted(
            bank.for_track(session.track), key=lambda q: (focus.index(q.topic) if q.topic in focus else 99, q.id)
        )
        if q.id not in asked and q.topic in focus
    ][:3]

    transcript = [
        TranscriptEntry(
            turn_id=t.id,
            question_id=t.question_id,
            question=t.question_text,
            topic=t.topic,
            is_follow_up=t.is_follow_up,
            status=t.status,
            answer=t.answer_text,
            grading_status=t.grading_status,
            score=t.score,
            grading=t.grading,
        )
        for t in turns
    ]
    return Report(
        session_id=session.id,
        track=session.track,
        mode=session.mode,
        overall_score=overall,
        passed=None if overall is None else overall >= PASS_MARK,
        questions_answered=len(answered),
        questions_skipped=skipped,
        questions_dont_know=dont_know,
        questions_scored=len(question_scores),
        questions_planned=session.num_questions,
        answered_summary=answered_summary(len(answered), session.num_questions, skipped, dont_know),
        topic_scores=topic_scores,
        topic_titles={
            t: bank.topic_title(t)
            for t in sorted({*topic_scores, *(r.topic for r in recommended), *(x.topic for x in turns)})
        },
        strengths=strengths,
        gaps=gaps,
        recommended=recommended,
        ungraded_turns=ungraded,
        grading_statuses=dict(statuses),
        transcript=transcript,
    )
