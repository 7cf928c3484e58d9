"""The interview engine: start a session, ask, take answers, grade, follow up, finish.

All state lives in the database, so any process can continue any session. Services flush and
leave the commit to the caller (the request's database dependency, or the CLI), with one
deliberate exception in the answer flow (:meth:`InterviewService.answer`): the answer is
committed *before* it is graded, so it is never lost to a grading failure and no transaction
is held open while the grader works.

Every step that changes a session first locks its row (``SELECT ... FOR UPDATE`` on
PostgreSQL; on SQLite every transaction takes the write lock up front) and re-reads its turns,
so two requests, processes or sweepers acting on one session take turns instead of racing.
Blocking database work runs in worker threads (:func:`app.db.base.in_thread`), never on the
event loop.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import defaultdict
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from app.bank.loader import Bank
from app.bank.schemas import BankQuestion
from app.bank.selection import ADAPTIVE, SelectionContext, choose_next
from app.config import Settings
from app.db import instances
from app.db.base import (
    as_utc,
    begin_write,
    finish_in_thread,
    in_thread,
    in_thread_retrying,
    utcnow,
    with_lock_retries,
)
from app.errors import Conflict, InvalidInput, NotFound
from app.grading.schemas import GradeFlag, GradeInput, GradeResult, Verdict
from app.grading.service import Grader
from app.interview.models import Candidate, InterviewSession, Turn
from app.interview.reporting import stored_report, write_report
from app.interview.runtime import AnswerRuntime
from app.interview.schemas import QuestionOut, SessionStart
from app.observability import GRADING_FAILURES
from app.reports.schemas import Report
from app.rubric import PASS_MARK
from app.security import hash_token, token_matches
from app.statuses import SessionStatus, TurnGradingStatus, TurnStatus
from app.text import IDK_ANSWER, is_id

log = logging.getLogger(__name__)

__all__ = ["IDK_ANSWER", "InterviewService"]


@dataclass
class Started:
    session: InterviewSession
    token: str
    candidate_token: str
    turn: Turn


@dataclass
class Recorded:
    turn: Turn
    replay: bool
    """True when this exact answer was already recorded (a retry or a double click)."""


@dataclass
class Answered:
    """What became of an answer: its turn, its grading and the turn asked next."""

    turn: Turn
    result: GradeResult | None
    next_turn: Turn | None
    replay: bool = False
    """This exact answer had been recorded before (a retry, a double click)."""
    in_progress: bool = False
    """A replay whose first request is still grading it (in another process)."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds spent per step (``record``, ``grade``, ``settle``), for the Server-Timing header."""


@dataclass
class _Graded:
    result: GradeResult | None
    late: Awaitable[GradeResult] | None = None
    """The judge's final result, when it missed the candidate's deadline."""
    error: str | None = None
    written: WrittenFollowUp | None = None
    """A follow-up the judge wrote for this answer (asked if the point is still the one to probe)."""


@dataclass(frozen=True)
class WrittenFollowUp:
    """A follow-up question the judge model wrote for one missed rubric point (already checked)."""

    probes: str
    question: str


@dataclass(frozen=True)
class _FollowUpPlan:
    """What the next follow-up would be: a probe of a missed point, or a deeper question."""

    question: BankQuestion
    main: Turn
    text: str
    """The bank's wording (the fallback for a written one)."""
    probes: str | None


class InterviewService:
    def __init__(
        self,
        settings: Settings,
        bank: Bank,
        grader: Grader | None,
        shadow: Grader | None = None,
        runtime: AnswerRuntime | None = None,
    ) -> None:
        self.settings = settings
        self.bank = bank
        self.grader = grader
        self.shadow = shadow
        self.runtime = runtime
        """This process's answers in flight and background work; without one (some tests),
        the judge is awaited without a deadline."""

    # ----------------------------------------------------------------- candidates, sessions
    def candidate_for(self, db: Session, candidate_token: str | None, name: str | None) -> tuple[Candidate, str]:
        if candidate_token:
            found = db.scalar(select(Candidate).where(Candidate.token_hash == hash_token(candidate_token)))
            if found is not None:
                return found, candidate_token
        token = secrets.token_urlsafe(24)
        candidate = Candidate(token_hash=hash_token(token), display_name=name)
        db.add(candidate)
        db.flush()
        return candidate, token

    def start(self, db: Session, params: SessionStart, candidate_token: str | None = None) -> Started:
        tracks = self.bank.tracks()
        if params.track not in tracks:
            raise InvalidInput(f"unknown track {params.track!r}; choose one of: {', '.join(tracks)}")
        known = self.bank.topics(params.track)
        unknown = [t for t in params.topics if t not in known]
        if unknown:
            raise InvalidInput(f"unknown topic(s) for {params.track}: {', '.join(unknown)}; known: {', '.join(known)}")
        begin_write(db)
        candidate, candidate_token = self.candidate_for(db, candidate_token, params.candidate_name)
        token = secrets.token_urlsafe(32)
        session = InterviewSession(
            candidate_id=candidate.id,
            token_hash=hash_token(token),
            track=params.track,
            topics=list(dict.fromkeys(params.topics)),
            difficulty=params.difficulty,
            num_questions=params.num_questions,
            mode=params.mode,
            seed=params.seed if params.seed is not None else secrets.randbelow(2**31),
            bank_version=self.bank.version,
        )
        db.add(session)
        db.flush()
        question = self._next_main_question(db, session)
        if question is None:
            raise InvalidInput("the bank has no questions for this track and these topics")
        turn = self._ask(db, session, question, question.question)
        return Started(session, token, candidate_token, turn)

    def get_session(self, db: Session, session_id: str) -> InterviewSession:
        session = db.get(InterviewSession, session_id) if is_id(session_id) else None
        if session is None:
            raise NotFound("session not found")
        return session

    def authenticate(self, db: Session, session_id: str, token: str) -> InterviewSession:
        """The session with its turns, if ``token`` is its token (a wrong token looks like an
        unknown id). Ends its read-only transaction: the request's next step, in another
        thread, must not find SQLite's lock held by this one."""
        if not is_id(session_id):  # never sent to the database (a NUL, say, would be an error there)
            raise NotFound("session not found")
        session = db.get(InterviewSession, session_id, options=[selectinload(InterviewSession.turns)])
        db.commit()
        if session is None or not token_matches(token, session.token_hash):
            raise NotFound("session not found")
        return session

    # ---------------------------------------------------------------------------- turns
    def current_turn(self, session: InterviewSession) -> Turn | None:
        waiting = [t for t in session.turns if t.status == TurnStatus.asked]
        return waiting[-1] if waiting else None

    def _turn_for(self, session: InterviewSession, turn_id: str) -> Turn:
        turn = next((t for t in session.turns if t.id == turn_id), None)
        if turn is None:
            raise NotFound(f"turn {turn_id!r} is not part of this session")
        return turn

    def _require_current(self, session: InterviewSession, turn: Turn) -> None:
        if session.status != SessionStatus.active:
            raise Conflict("this session is finished; start a new one")
        current = self.current_turn(session)
        if current is None or current.id != turn.id:
            raise Conflict(
                "this is not the current question"
                + (f"; the current turn is {current.id}" if current is not None else "")
            )

    def question_out(self, session: InterviewSession, turn: Turn) -> QuestionOut:
        mains = [t for t in session.turns if not t.is_follow_up]
        main_id = turn.parent_turn_id or turn.id
        number = next((i + 1 for i, t in enumerate(mains) if t.id == main_id), len(mains))
        hints = len(self._hints_for(session, turn))
        return QuestionOut(
            turn_id=turn.id,
            text=turn.question_text,
            question_id=turn.question_id,
            topic=turn.topic,
            topic_title=self.bank.topic_title(turn.topic),
            difficulty=turn.difficulty,
            is_follow_up=turn.is_follow_up,
            parent_turn_id=turn.parent_turn_id,
            number=number,
            total=session.num_questions,
            hints_available=max(0, hints - turn.hints_used),
            difficulty_note=self._difficulty_note(session, turn),
        )

    @staticmethod
    def _difficulty_note(session: InterviewSession, turn: Turn) -> str | None:
        if turn.is_follow_up or session.difficulty in (ADAPTIVE, turn.difficulty):
            return None
        return f"No {session.difficulty} question is left in the chosen topics, so this one is {turn.difficulty}."

    def _ask(
        self,
        db: Session,
        session: InterviewSession,
        question: BankQuestion,
        text: str,
        parent: Turn | None = None,
        probes: str | None = None,
    ) -> Turn:
        turn = Turn(
            session_id=session.id,
            position=len(session.turns),
            question_id=question.id,
            bank_hash=question.content_hash,
            question_text=text,
            topic=question.topic,
            difficulty=question.difficulty.value,
            is_follow_up=parent is not None,
            parent_turn_id=parent.id if parent is not None else None,
            probes_point=probes,
        )
        session.turns.append(turn)
        db.flush()
        return turn

    def _lock(self, db: Session, session: InterviewSession) -> None:
        """Lock the session's row for this transaction and re-read it and its turns."""
        begin_write(db)
        db.refresh(session, with_for_update=True)
        self._reload_turns(db, session)

    def _reload_turns(self, db: Session, session: InterviewSession) -> None:
        turns = db.scalars(
            select(Turn)
            .where(Turn.session_id == session.id)
            .order_by(Turn.position)
            .execution_options(populate_existing=True)
        ).all()
        set_committed_value(session, "turns", list(turns))

    def record_answer(
        self, db: Session, session: InterviewSession, turn_id: str, answer: str, key: str | None = None
    ) -> Recorded:
        """Keep the answer (status ``ungraded``, claimed by this process). Retrying the same
        answer is a no-op; a different answer to an answered turn is a conflict."""
        if len(answer) > self.settings.max_answer_chars:
            raise InvalidInput(f"answer is {len(answer)} characters; the limit is {self.settings.max_answer_chars}")
        self._lock(db, session)
        turn = self._turn_for(session, turn_id)
        if turn.status == TurnStatus.answered:
            if turn.answer_text == answer or (key is not None and key == turn.idempotency_key):
                return Recorded(turn, replay=True)
            raise Conflict("this question was already answered with a different answer")
        self._require_current(session, turn)
        now = utcnow()
        # Guarded update: even without the row lock, of two writers exactly one would win.
        result = db.execute(
            update(Turn)
            .where(Turn.id == turn.id, Turn.status == TurnStatus.asked)
            .values(
                status=TurnStatus.answered,
                answer_text=answer,
                idempotency_key=key,
                answered_at=now,
                grading_status=TurnGradingStatus.ungraded,
                claimed_by=self.runtime.instance_id if self.runtime else None,
                claimed_at=now,
            )
            .execution_options(synchronize_session="fetch")
        )
        db.refresh(turn)
        if result.rowcount != 1:  # type: ignore[attr-defined]
            if turn.answer_text == answer:
                return Recorded(turn, replay=True)
            raise Conflict("this question was already answered with a different answer")
        return Recorded(turn, replay=False)

    # ------------------------------------------------------------------ the answer flow
    async def answer(
        self, db: Session, session: InterviewSession, turn_id: str, answer: str, key: str | None = None
    ) -> Answered:
        """The one answer flow, for the API, the pages and the terminal: keep the answer,
        grade it (waiting at most ``judge_deadline_s`` for the judge), ask the follow-up or the
        next question. The caller's database dependency commits the last step.

        Any number of identical submits give one answered turn and the same reply: a retry
        waits for the first request and answers with its result."""
        started = time.perf_counter()
        recorded = await in_thread_retrying(db, self._record, session, turn_id, answer, key)
        recorded_at = time.perf_counter()
        if recorded.replay:
            answered = await self._replayed(db, session, recorded.turn)
        else:
            answered = await self._grade_and_advance(db, session, recorded.turn)
        answered.timings = {"record": recorded_at - started, **answered.timings}
        return answered

    def _record(self, db: Session, session: InterviewSession, turn_id: str, answer: str, key: str | None) -> Recorded:
        try:
            recorded = self.record_answer(db, session, turn_id, answer, key)
        except Exception:
            db.rollback()
            raise
        # The one deliberate commit inside a request: the answer is kept before grading starts,
        # and no transaction (nor SQLite's write lock) is held while the grader works.
        db.commit()
        return recorded

    async def _grade_and_advance(self, db: Session, session: InterviewSession, turn: Turn) -> Answered:
        graded, next_turn, timings = await self._grade_and_settle(db, session, turn, grade=True)
        return Answered(turn, graded.result, next_turn, timings=timings)

    async def _grade_and_settle(
        self, db: Session, session: InterviewSession, turn: Turn, *, grade: bool, bounded: bool = True
    ) -> tuple[_Graded, Turn | None, dict[str, float]]:
        """Grade ``turn`` (if ``grade``; else keep its stored grading) and settle it
        (:meth:`_settle`), marked in flight in this process meanwhile. A judge verdict that
        missed the deadline is stored in the background when it comes. Also returns the
        seconds each step took."""
        runtime = self.runtime
        if runtime is not None:
            runtime.begin(turn.id)
        try:
            started = time.perf_counter()
            if grade:
                graded, fresh = await self._grade(session, turn, bounded=bounded and runtime is not None), True
            else:
                graded, fresh = _Graded(self.grading_of(turn)), False
            grading_done = time.perf_counter()
            next_turn = await in_thread_retrying(db, self._settle, session, turn, graded, fresh)
        finally:
            if runtime is not None:
                runtime.end(turn.id)
        if graded.late is not None and runtime is not None:
            runtime.spawn(self._finish_late(turn.id, graded.late), name=f"late-judge-{turn.id}")
        timings = {"grade": grading_done - started, "settle": time.perf_counter() - grading_done}
        return graded, next_turn, timings

    async def _grade(self, session: InterviewSession, turn: Turn, *, bounded: bool) -> _Graded:
        """Grade ``turn``'s answer; never raises (a failure leaves it ``ungraded``)."""
        if self.grader is None:
            return _Graded(None, error="no grader is loaded")
        started = time.perf_counter()
        try:
            inp = self.grade_input(session, turn)
            if bounded:
                result, late = await self.grader.grade_within(inp, self.settings.judge_deadline_s)
            else:
                result, late = await self.grader.grade(inp), None
        except Exception as exc:
            log.exception("grading turn %s failed", turn.id)
            GRADING_FAILURES.inc()
            return _Graded(None, error=f"{type(exc).__name__}: {exc}")
        if self.shadow is not None:
            if self.runtime is not None:  # off the candidate's path
                self.runtime.spawn(self._shadow_grade(turn.id, inp), name=f"shadow-{turn.id}")
            else:
                turn.shadow_grading = await self._shadow_result(turn.id, inp)
        written = None
        if bounded and late is None:  # within the candidate's one deadline for judge and follow-up
            budget = min(
                self.settings.judge_follow_up_timeout_s,
                self.settings.judge_deadline_s - (time.perf_counter() - started),
            )
            written = await self._written_follow_up(session, turn, result, budget) if budget > 0 else None
        return _Graded(result, late, written=written)

    async def _written_follow_up(
        self, session: InterviewSession, turn: Turn, result: GradeResult, budget_s: float
    ) -> WrittenFollowUp | None:
        """Ask the judge to write the follow-up that :meth:`_plan_follow_up` would ask from the
        bank, from the candidate's own answer. ``None`` (the bank's question is asked) without a
        judge, after ``budget_s`` (what is left of the judge deadline, at most
        ``judge_follow_up_timeout_s``), or when the judge's question is refused."""
        judge = self.grader.judge if self.grader is not None else None
        if judge is None or not self.settings.judge_follow_ups:
            return None
        try:
            plan = self._plan_follow_up(session, turn, result)
            if plan is None or plan.probes is None:
                return None  # nothing to probe, or a deeper question (the bank's own material)
            main = self.input_for(plan.question, plan.question.question, None, turn.answer_text or "")
            main = main.model_copy(update={"turn_id": turn.id})
            text = await asyncio.wait_for(judge.follow_up(main, [plan.probes]), timeout=budget_s)
        except TimeoutError:
            log.info("the judge did not write a follow-up for turn %s in time; the bank's is asked", turn.id)
            return None
        except Exception:
            log.exception("the judge failed to write a follow-up for turn %s; the bank's is asked", turn.id)
            return None
        return WrittenFollowUp(plan.probes, text) if text else None

    def _settle(self, db: Session, session: InterviewSession, turn: Turn, graded: _Graded, fresh: bool) -> Turn | None:
        """Store the grading, release the claim, and ask the next turn unless someone already
        did (or the session is over). Returns the turn now waiting for an answer."""
        self._lock(db, session)
        turn = self._turn_for(session, turn.id)
        if graded.result is not None and fresh:
            self.store_grading(turn, graded.result)
            if session.status == SessionStatus.finished:
                write_report(session, self.bank)
        elif graded.error is not None and turn.grading_status == TurnGradingStatus.ungraded:
            turn.grading_error = graded.error
        turn.claimed_by = None
        turn.claimed_at = None
        db.flush()
        if session.status != SessionStatus.active or self._successor(session, turn) is not None:
            return self.current_turn(session)
        result = graded.result if graded.result is not None else self.grading_of(turn)
        return self.advance(db, session, turn, result, written=graded.written)

    @staticmethod
    def _successor(session: InterviewSession, turn: Turn) -> Turn | None:
        return next((t for t in session.turns if t.position > turn.position), None)

    async def _finish_late(self, turn_id: str, late: Awaitable[GradeResult]) -> None:
        """Store the judge's verdict that missed the deadline, once it arrives."""
        try:
            result = await late
        except Exception:
            log.exception("late judge verdict for turn %s failed; the sweeper will regrade it", turn_id)
            return
        await in_thread(self._store_late, turn_id, result)

    def _store_late(self, turn_id: str, result: GradeResult) -> None:
        assert self.runtime is not None
        with self.runtime.session_factory() as db:
            with_lock_retries(db, self._store_late_in, turn_id, result)

    def _store_late_in(self, db: Session, turn_id: str, result: GradeResult) -> None:
        begin_write(db)
        turn = db.get(Turn, turn_id)
        if turn is None:
            return
        session = turn.session
        self._lock(db, session)
        turn = self._turn_for(session, turn_id)
        if not turn.judge_pending:  # regraded meanwhile (a reviewer, the sweeper)
            return
        self.store_grading(turn, result)
        if session.status == SessionStatus.finished:
            write_report(session, self.bank)
        db.commit()

    async def complete_claimed(
        self, turn_id: str, *, regrade: bool = False, with_judge: bool = True
    ) -> tuple[str, bool] | None:
        """Finish a turn this process has claimed (the sweeper, ``mockinterview regrade``):
        grade it if it is ``ungraded`` (or ``judge_pending`` and ``with_judge``, or always
        with ``regrade``), then ask its session's next turn if the session was stuck behind it.

        Returns (what it was: ``ungraded``, ``judge_pending`` or ``stuck``; whether it is now
        graded), or ``None`` if the turn is gone or no longer claimed by this process."""
        assert self.runtime is not None
        runtime = self.runtime
        with runtime.session_factory() as db:
            loaded = await in_thread(self._load_claimed, db, turn_id)
            if loaded is None:
                return None
            session, turn = loaded
            if turn.grading_status == TurnGradingStatus.ungraded:
                kind = "ungraded"
            elif turn.judge_pending and with_judge:
                kind = "judge_pending"
            else:
                kind = "stuck"
            await self._grade_and_settle(db, session, turn, grade=kind != "stuck" or regrade, bounded=False)
            await finish_in_thread(db.commit)
            return kind, turn.grading_status != TurnGradingStatus.ungraded

    def _load_claimed(self, db: Session, turn_id: str) -> tuple[InterviewSession, Turn] | None:
        turn = db.get(Turn, turn_id)
        mine = turn is not None and self.runtime is not None and turn.claimed_by == self.runtime.instance_id
        session = turn.session if turn is not None and mine else None
        if session is not None:
            self._reload_turns(db, session)
        db.commit()
        return (session, turn) if session is not None and turn is not None else None

    # ------------------------------------------------------------------ retries and recovery
    async def _replayed(self, db: Session, session: InterviewSession, turn: Turn) -> Answered:
        """The reply to an answer that was already recorded: the first request's, once it is
        done; if the process that took the answer died, this request finishes its work."""
        patience = self.settings.judge_deadline_s + self.settings.answer_lease_s
        limit = time.monotonic() + patience
        if self.runtime is not None:
            await self.runtime.wait(turn.id, patience)
        while True:
            stuck, live = await in_thread_retrying(db, self._look, session)
            turn = self._turn_for(session, turn.id)
            if not stuck:
                return Answered(turn, self.grading_of(turn), self.current_turn(session), replay=True)
            last = session.turns[-1]
            if not live:
                next_turn = await self._recover(db, session, last)
                turn = self._turn_for(session, turn.id)
                return Answered(turn, self.grading_of(turn), next_turn, replay=True)
            if time.monotonic() > limit:
                return Answered(turn, self.grading_of(turn), None, replay=True, in_progress=True)
            await asyncio.sleep(0.05)

    def _look(self, db: Session, session: InterviewSession) -> tuple[bool, bool]:
        """Re-read the session: (is it stuck, is the claim on its last turn live)."""
        db.refresh(session)
        self._reload_turns(db, session)
        stuck = self.is_stuck(session)
        live = stuck and self._claim_live(db, session.turns[-1])
        db.commit()
        return stuck, live

    def is_stuck(self, session: InterviewSession) -> bool:
        """Active, with nothing to answer: the last answer is being graded, or the process
        grading it stopped before it asked the next question."""
        return session.status == SessionStatus.active and bool(session.turns) and self.current_turn(session) is None

    def _claim_live(self, db: Session, turn: Turn) -> bool:
        """Whether a live process is still working on ``turn`` (so nobody else should)."""
        if turn.claimed_by is None:
            return False
        if self.runtime is not None and turn.claimed_by == self.runtime.instance_id:
            return self.runtime.in_flight(turn.id)
        lease = timedelta(seconds=self.settings.judge_deadline_s + self.settings.answer_lease_s)
        if turn.claimed_at is not None and as_utc(turn.claimed_at) < utcnow() - lease:
            return False
        return instances.alive(db, turn.claimed_by)

    async def resume(self, db: Session, session: InterviewSession) -> Turn | None:
        """Move on a stuck session (see :meth:`is_stuck`) whose grader is gone: grade the last
        answer if it still needs it and ask the next turn. Returns the turn waiting for an
        answer (``None`` while a live process is still grading, or when finished)."""
        if not self.is_stuck(session):
            return self.current_turn(session)
        stuck, live = await in_thread_retrying(db, self._look, session)
        if not stuck or live:
            return self.current_turn(session)
        turn = await self._recover(db, session, session.turns[-1])
        # A recovery commits its own work: the caller's next step may be another thread.
        await finish_in_thread(db.commit)
        return turn

    async def _recover(self, db: Session, session: InterviewSession, last: Turn) -> Turn | None:
        claimed = await in_thread_retrying(db, self._claim_stuck, session, last.id)
        if not claimed:
            return self.current_turn(session)
        turn = self._turn_for(session, last.id)
        needs_grading = turn.status == TurnStatus.answered and turn.grading_status == TurnGradingStatus.ungraded
        _, next_turn, _ = await self._grade_and_settle(db, session, turn, grade=needs_grading)
        return next_turn

    def _claim_stuck(self, db: Session, session: InterviewSession, turn_id: str) -> bool:
        """Claim the last turn of a stuck session for this process, if nobody live holds it."""
        self._lock(db, session)
        turn = self._turn_for(session, turn_id)
        if not self.is_stuck(session) or session.turns[-1].id != turn.id or self._claim_live(db, turn):
            db.commit()
            return False
        turn.claimed_by = self.runtime.instance_id if self.runtime else None
        turn.claimed_at = utcnow()
        # Committed before grading, like an answer: other processes see the claim at once.
        db.commit()
        return True

    def grade_input(self, session: InterviewSession, turn: Turn) -> GradeInput:
        question = self.bank.get(turn.question_id)
        if question is None:
            raise NotFound(f"question {turn.question_id!r} is no longer in the bank")
        probes = turn.probes_point if turn.is_follow_up else None
        inp = self.input_for(question, turn.question_text, probes, turn.answer_text or "", turn.bank_hash)
        return inp.model_copy(update={"turn_id": turn.id})

    @staticmethod
    def input_for(
        question: BankQuestion, asked: str, probes: str | None, answer: str, bank_hash: str | None = None
    ) -> GradeInput:
        """What the grader reads for an answer to ``asked`` (the question, or one of its
        follow-ups). A follow-up that probes a rubric point is graded against that point; a
        deeper follow-up against its own reference answer and rubric, never the question's
        (its answer is about something the question did not ask)."""
        rubric = question.rubric_points()
        reference = question.reference_answer
        variant = probes or ""
        probed = [p for p in rubric if p.id == probes] if probes else []
        deeper = None if probes else question.deeper_follow_up(asked)
        if probed:
            rubric = [probed[0].model_copy(update={"essential": True})]
            reference = f"{probed[0].text} {question.reference_answer}"
        elif deeper is not None and deeper.reference_answer:
            rubric = deeper.rubric_points()
            reference = deeper.reference_answer
            variant = "deeper"
        return GradeInput(
            question=asked,
            reference_answer=reference,
            answer=answer,
            rubric=rubric,
            question_id=question.id,
            bank_hash=f"{bank_hash or question.content_hash}:{variant}",
        )

    def bank_inputs(self) -> list[GradeInput]:
        """A grading input (with an empty answer) for every turn the bank can ask: each
        question and each of its follow-ups. What the grader embeds before the first answer."""
        inputs = []
        for q in self.bank.questions.values():
            inputs.append(self.input_for(q, q.question, None, ""))
            for fu in q.follow_ups:
                inputs.append(self.input_for(q, fu.question, fu.probes, ""))
        return inputs

    async def grade_turn(self, db: Session, session: InterviewSession, turn: Turn) -> GradeResult | None:
        """Grade an answered turn now, waiting for the judge however long it takes (regrades:
        a reviewer or the sweeper, not a candidate, waits). Call it with no transaction open.
        On failure the turn stays ``ungraded`` and ``None`` returns."""
        graded = await self._grade(session, turn, bounded=False)
        if graded.result is None:
            turn.grading_status = TurnGradingStatus.ungraded
            turn.grading_error = graded.error
            return None
        self.store_grading(turn, graded.result)
        return graded.result

    async def _shadow_grade(self, turn_id: str, inp: GradeInput) -> None:
        """Grade with the shadow configuration too, in the background; stored, never shown."""
        await in_thread(self._store_shadow, turn_id, await self._shadow_result(turn_id, inp))

    async def _shadow_result(self, turn_id: str, inp: GradeInput) -> dict[str, object]:
        """The shadow configuration's grading, as stored (never fatal: a failure is stored)."""
        assert self.shadow is not None
        try:
            shadow = await self.shadow.grade(inp)
            stored: dict[str, object] = {
                "score": shadow.score,
                "status": shadow.status.value,
                "config": shadow.versions.model_dump() if shadow.versions else {},
                "result": shadow.model_dump(mode="json"),
            }
        except Exception as exc:
            log.warning("shadow grading of turn %s failed: %s", turn_id, exc)
            stored = {"error": f"{type(exc).__name__}: {exc}", "score": None}
        return stored

    def _store_shadow(self, turn_id: str, stored: dict[str, object]) -> None:
        assert self.runtime is not None
        with self.runtime.session_factory() as db:
            db.execute(update(Turn).where(Turn.id == turn_id).values(shadow_grading=stored))
            db.commit()

    def store_grading(self, turn: Turn, result: GradeResult) -> None:
        turn.grading = result.model_dump(mode="json")
        turn.grading_status = TurnGradingStatus(result.status.value)
        turn.judge_pending = self.grader is not None and self.grader.needs_judge(result)
        turn.score = result.score
        turn.flagged = bool(result.flags)
        turn.grading_error = None
        turn.graded_at = utcnow()

    def grading_of(self, turn: Turn) -> GradeResult | None:
        return GradeResult.model_validate(turn.grading) if turn.grading else None

    # ------------------------------------------------------------------------ progress
    def advance(
        self,
        db: Session,
        session: InterviewSession,
        turn: Turn,
        result: GradeResult | None,
        written: WrittenFollowUp | None = None,
    ) -> Turn | None:
        """Ask the next turn (a follow-up or the next main question), or finish the session.
        A follow-up the judge wrote (``written``) replaces the bank's wording of the same probe."""
        plan = self._plan_follow_up(session, turn, result)
        if plan is not None:
            text = written.question if written is not None and written.probes == plan.probes else plan.text
            return self._ask(db, session, plan.question, text, parent=plan.main, probes=plan.probes)
        mains = [t for t in session.turns if not t.is_follow_up]
        if len(mains) < session.num_questions:
            question = self._next_main_question(db, session)
            if question is not None:
                return self._ask(db, session, question, question.question)
        self.finish(db, session)
        return None

    def _plan_follow_up(
        self, session: InterviewSession, turn: Turn, result: GradeResult | None
    ) -> _FollowUpPlan | None:
        """The follow-up to ask after ``turn`` was graded ``result``, if any: the most important
        missed point with a bank follow-up, else (after a strong first answer) a deeper one."""
        if result is None or not result.score or self.settings.max_follow_ups == 0:
            return None  # ungraded, or a non-answer: nothing to probe, move on
        if GradeFlag.off_topic in result.flags:
            return None  # an answer about something else: probing its gaps would be absurd
        main = turn if not turn.is_follow_up else self._turn_for(session, turn.parent_turn_id or "")
        chain = [t for t in session.turns if t.parent_turn_id == main.id]
        if len(chain) >= self.settings.max_follow_ups:
            return None
        question = self.bank.get(main.question_id)
        main_result = result if main.id == turn.id else self.grading_of(main)
        if question is None or main_result is None:
            return None
        probed = {t.probes_point for t in chain}
        threshold = self.settings.follow_up_threshold
        weights = {r.id: (r.essential, r.weight) for r in question.rubric}
        missed = [
            p
            for p in main_result.points
            if p.id not in probed
            and (p.verdict in (Verdict.missing, Verdict.wrong, Verdict.unclear) or p.coverage < threshold)
            and question.follow_up_for(p.id) is not None
        ]
        missed.sort(key=lambda p: (not weights.get(p.id, (False, 1.0))[0], -weights.get(p.id, (False, 1.0))[1]))
        if missed:
            fu = question.follow_up_for(missed[0].id)
            assert fu is not None
            return _FollowUpPlan(question, main, fu.question, missed[0].id)
        if not chain and not turn.is_follow_up and (result.score or 0) >= 4.0:
            deeper = next((f for f in question.follow_ups if f.deeper), None)
            if deeper is not None:
                return _FollowUpPlan(question, main, deeper.question, None)
        return None

    def _next_main_question(self, db: Session, session: InterviewSession) -> BankQuestion | None:
        mains = [t for t in session.turns if not t.is_follow_up]
        history = self._history(db, session)
        ctx = SelectionContext(
            track=session.track,
            topics=session.topics,
            difficulty=session.difficulty,
            seed=session.seed,
            asked_ids=[t.question_id for t in mains],
            recent_ids=history.recent_ids,
            main_scores=[
                (t.difficulty, t.score) for t in mains if t.status in (TurnStatus.answered, TurnStatus.skipped)
            ],
            topic_scores=history.topic_scores,
            weak_tags=history.weak_tags,
        )
        return choose_next(self.bank, ctx)

    @dataclass
    class _History:
        recent_ids: list[str]
        topic_scores: dict[str, float]
        weak_tags: list[str]

    def _history(self, db: Session, session: InterviewSession) -> InterviewService._History:
        """What the candidate's earlier sessions say: questions seen, weak topics and tags."""
        earlier = db.scalars(
            select(InterviewSession)
            .where(InterviewSession.candidate_id == session.candidate_id, InterviewSession.id != session.id)
            .order_by(InterviewSession.created_at.desc())
        ).all()
        recent_ids = [t.question_id for s in earlier[: self.settings.recent_sessions_window] for t in s.turns]
        per_topic: dict[str, list[float]] = defaultdict(list)
        tag_misses: dict[str, int] = defaultdict(int)
        for s in earlier:
            for t in s.turns:
                if t.is_follow_up or t.score is None:
                    continue
                per_topic[t.topic].append(t.score)
                q = self.bank.get(t.question_id)
                if q is not None and t.score < PASS_MARK:
                    for tag in q.tags:
                        tag_misses[tag] += 1
        topic_scores = {k: sum(v) / len(v) for k, v in per_topic.items()}
        weak_tags = [tag for tag, _ in sorted(tag_misses.items(), key=lambda kv: (-kv[1], kv[0]))[:5]]
        return self._History(recent_ids, topic_scores, weak_tags)

    def skip(self, db: Session, session: InterviewSession, turn_id: str) -> Turn | None:
        self._lock(db, session)
        turn = self._turn_for(session, turn_id)
        self._require_current(session, turn)
        done = db.execute(
            update(Turn)
            .where(Turn.id == turn.id, Turn.status == TurnStatus.asked)
            .values(
                status=TurnStatus.skipped, grading_status=TurnGradingStatus.skipped, score=0.0, answered_at=utcnow()
            )
            .execution_options(synchronize_session="fetch")
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict("this question was answered meanwhile; it can no longer be skipped")
        db.refresh(turn)
        return self.advance(db, session, turn, None)

    def _hints_for(self, session: InterviewSession, turn: Turn) -> list[str]:
        """The bank's hints this turn can give: a main question's own; for a follow-up, those of
        its question the candidate has not seen yet (never the rubric point, which is the answer).
        The same list counts ``hints_available`` and serves ``hint``, so they always agree."""
        question = self.bank.get(turn.question_id)
        if question is None:
            return []
        if not turn.is_follow_up:
            return list(question.hints)
        parent = next((t for t in session.turns if t.id == turn.parent_turn_id), None)
        return list(question.hints[parent.hints_used if parent is not None else 0 :])

    def revealed_hints(self, session: InterviewSession, turn: Turn) -> list[str]:
        """The hints already shown for ``turn``, in order."""
        return self._hints_for(session, turn)[: turn.hints_used]

    def hint(self, db: Session, session: InterviewSession, turn_id: str) -> tuple[Turn, str, int]:
        self._lock(db, session)
        turn = self._turn_for(session, turn_id)
        self._require_current(session, turn)
        hints = self._hints_for(session, turn)
        if turn.hints_used >= len(hints):
            raise Conflict("no more hints for this question")
        hint = hints[turn.hints_used]
        turn.hints_used += 1
        db.flush()
        return turn, hint, len(hints) - turn.hints_used

    def finish(self, db: Session, session: InterviewSession) -> Report:
        self._lock(db, session)
        if session.status != SessionStatus.finished:
            for t in session.turns:
                if t.status == TurnStatus.asked:
                    t.status = TurnStatus.unanswered
                    t.grading_status = TurnGradingStatus.skipped
            session.status = SessionStatus.finished
            session.finished_at = utcnow()
        report = write_report(session, self.bank)
        db.flush()
        return report

    def finished_report(self, db: Session, session: InterviewSession) -> Report:
        """The report of a finished session (built now if it was never stored)."""
        if session.status != SessionStatus.finished:
            raise Conflict("the report is ready once the session is finished (POST .../finish)")
        stored = stored_report(session)
        return stored if stored is not None else self.finish(db, session)

    async def regrade(self, db: Session, turn_id: str) -> GradeResult | None:
        """Grade a kept answer again (a reviewer's regrade) and, if its session was stuck
        behind it, ask the next turn."""
        session, turn = await in_thread(self._load_turn, db, turn_id)
        graded = await self._grade(session, turn, bounded=False)
        await in_thread_retrying(db, self._after_regrade, session, turn, graded)
        return graded.result

    def _load_turn(self, db: Session, turn_id: str) -> tuple[InterviewSession, Turn]:
        turn = db.get(Turn, turn_id) if is_id(turn_id) else None
        if turn is None:
            raise NotFound("turn not found")
        if turn.status != TurnStatus.answered:
            raise Conflict("only answered turns can be graded")
        session = turn.session
        self._reload_turns(db, session)
        # No transaction may stay open while grading: SQLite's write lock would keep the
        # judge's audit rows (their own transactions) waiting.
        db.commit()
        return session, self._turn_for(session, turn_id)

    def _after_regrade(self, db: Session, session: InterviewSession, turn: Turn, graded: _Graded) -> None:
        self._lock(db, session)
        turn = self._turn_for(session, turn.id)
        if graded.result is None:
            turn.grading_error = graded.error
            db.flush()
            return
        self.store_grading(turn, graded.result)
        if session.status == SessionStatus.finished:
            write_report(session, self.bank)
        elif self.is_stuck(session) and session.turns[-1].id == turn.id and not self._claim_live(db, turn):
            turn.claimed_by = None
            self.advance(db, session, turn, graded.result)
        db.flush()
