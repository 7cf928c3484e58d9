"""What the candidate pages show, computed from the stored session (never from memory)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from app.bank.loader import Bank
from app.db.base import as_utc
from app.grading.schemas import GradeResult, GradeStatus, PointResult, Verdict
from app.interview.models import InterviewSession, Turn
from app.interview.service import IDK_ANSWER, InterviewService
from app.statuses import SessionMode, SessionStatus, TurnGradingStatus, TurnStatus


def grader_label(result: GradeResult) -> str:
    """The grader status, said plainly."""
    # (Gradings stored before ``non_answer`` existed say it by being graded with no judge score.)
    if result.non_answer or (result.status is GradeStatus.graded and result.judge_score is None):
        return "Graded without a model: no substantive answer was given"
    if result.status is GradeStatus.embedding_only:
        return "Embedding-only grading: no LLM judge read this answer"
    return "Hybrid grading: an LLM judge and embedding similarity together"


@dataclass
class Feedback:
    result: GradeResult
    covered: list[PointResult]
    missed: list[PointResult]
    grader: str
    model_answer: str | None
    unconfirmed: list[PointResult] = field(default_factory=list)
    """Points the embedding evidence could not decide: shown as "not confirmed", never missed."""
    partial: list[PointResult] = field(default_factory=list)
    """Points only partly made: neither covered nor missed."""

    @property
    def score(self) -> float | None:
        return self.result.score


def feedback_of(result: GradeResult, model_answer: str | None) -> Feedback:
    covered = [p for p in result.points if p.verdict is Verdict.covered]
    partial = [p for p in result.points if p.verdict is Verdict.partial]
    missed = [p for p in result.points if p.verdict in (Verdict.missing, Verdict.wrong)]
    unconfirmed = [p for p in result.points if p.verdict is Verdict.unclear]
    return Feedback(result, covered, missed, grader_label(result), model_answer, unconfirmed, partial)


def model_answer(bank: Bank, turn: Turn) -> str | None:
    question = bank.get(turn.question_id)
    if question is None:
        return None
    if turn.is_follow_up and turn.probes_point:
        point = next((r for r in question.rubric if r.id == turn.probes_point), None)
        if point is not None:
            return f"{point.point} {question.reference_answer}"
    return question.reference_answer


@dataclass
class TurnView:
    turn: Turn
    label: str
    answer: str | None
    kind: str
    """``answer``, ``idk``, ``skipped`` or ``unanswered``."""
    feedback: Feedback | None
    pending: bool
    """Answered, but no grading stored yet (being graded, or grading failed for now)."""
    hints: list[str]

    @property
    def id(self) -> str:
        return self.turn.id


@dataclass
class QuestionView:
    turn: Turn
    label: str
    text: str
    topic: str
    difficulty: str
    hints: list[str]
    hints_left: int
    elapsed_s: int
    is_follow_up: bool
    difficulty_note: str | None = None

    @property
    def turn_id(self) -> str:
        return self.turn.id


@dataclass
class SessionView:
    session: InterviewSession
    turns: list[TurnView]
    current: QuestionView | None
    practice: bool
    max_chars: int
    main_done: int
    grading_stalled: bool = False
    """Active, nothing to answer: the last answer is still being graded (or the server stopped
    before the next question was asked)."""

    @property
    def finished(self) -> bool:
        return self.session.status == SessionStatus.finished


def _label(session: InterviewSession, turn: Turn) -> str:
    mains = [t for t in session.turns if not t.is_follow_up]
    main_id = turn.parent_turn_id or turn.id
    number = next((i + 1 for i, t in enumerate(mains) if t.id == main_id), len(mains))
    if turn.is_follow_up:
        return f"Follow-up to question {number}"
    return f"Question {number} of {session.num_questions}"


def turn_view(interviews: InterviewService, session: InterviewSession, turn: Turn, *, practice: bool) -> TurnView:
    result = interviews.grading_of(turn) if practice or session.status == SessionStatus.finished else None
    kind = {TurnStatus.skipped: "skipped", TurnStatus.unanswered: "unanswered"}.get(turn.status, "answer")
    if kind == "answer" and turn.answer_text == IDK_ANSWER:
        kind = "idk"
    return TurnView(
        turn=turn,
        label=_label(session, turn),
        answer=turn.answer_text,
        kind=kind,
        feedback=feedback_of(result, model_answer(interviews.bank, turn)) if result is not None else None,
        pending=turn.status == TurnStatus.answered and turn.grading_status == TurnGradingStatus.ungraded,
        hints=interviews.revealed_hints(session, turn),
    )


def question_view(interviews: InterviewService, session: InterviewSession, turn: Turn) -> QuestionView:
    out = interviews.question_out(session, turn)
    elapsed = (datetime.now(UTC) - as_utc(turn.asked_at)).total_seconds()
    return QuestionView(
        turn=turn,
        label=_label(session, turn),
        text=out.text,
        topic=out.topic,
        difficulty=out.difficulty,
        hints=interviews.revealed_hints(session, turn),
        hints_left=out.hints_available,
        elapsed_s=max(0, int(elapsed)),
        is_follow_up=turn.is_follow_up,
        difficulty_note=out.difficulty_note,
    )


def session_view(interviews: InterviewService, session: InterviewSession) -> SessionView:
    practice = session.mode == SessionMode.practice
    current = interviews.current_turn(session)
    turns = [turn_view(interviews, session, t, practice=practice) for t in session.turns if t is not current]
    last = session.turns[-1] if session.turns else None
    # Active with nothing to answer: the last answer is being graded right now, or the server
    # stopped between keeping the answer and asking the next question.
    stalled = (
        session.status == SessionStatus.active
        and current is None
        and last is not None
        and last.status == TurnStatus.answered
    )
    return SessionView(
        session=session,
        turns=turns,
        current=question_view(interviews, session, current) if current is not None else None,
        practice=practice,
        max_chars=interviews.settings.max_answer_chars,
        main_done=sum(1 for t in session.turns if not t.is_follow_up and t.status != TurnStatus.asked),
        grading_stalled=stalled,
    )
