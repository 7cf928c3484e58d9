"""The interview engine: start a session, ask, take answers, grade, follow up, finish.

All state lives in the database, so any process can continue any session. Services never
commit: the caller (an API route or the CLI) commits, and commits the answer *before* it
calls :meth:`InterviewService.grade_turn`, so an answer is never lost to a grading failure.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.bank.loader import Bank
from app.bank.schemas import BankQuestion
from app.bank.selection import SelectionContext, choose_next
from app.config import Settings
from app.db.base import utcnow
from app.errors import Conflict, InvalidInput, NotFound
from app.grading.schemas import GradeInput, GradeResult, RubricPoint, Verdict
from app.grading.service import Grader, current_turn_id
from app.interview.models import Candidate, InterviewSession, Turn
from app.interview.schemas import QuestionOut, SessionStart
from app.observability import GRADING_FAILURES
from app.reports.service import build_report

log = logging.getLogger(__name__)

IDK_ANSWER = "I don't know."


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str, token_hash: str) -> bool:
    return hmac.compare_digest(hash_token(token), token_hash)


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


class InterviewService:
    def __init__(self, settings: Settings, bank: Bank, grader: Grader | None, shadow: Grader | None = None) -> None:
        self.settings = settings
        self.bank = bank
        self.grader = grader
        self.shadow = shadow

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
        session = db.get(InterviewSession, session_id)
        if session is None:
            raise NotFound("session not found")
        return session

    def authenticate(self, db: Session, session_id: str, token: str) -> InterviewSession:
        """The session, if ``token`` is its token; a wrong token looks like an unknown id."""
        session = db.get(InterviewSession, session_id)
        if session is None or not token_matches(token, session.token_hash):
            raise NotFound("session not found")
        return session

    # ---------------------------------------------------------------------------- turns
    def current_turn(self, session: InterviewSession) -> Turn | None:
        waiting = [t for t in session.turns if t.status == "asked"]
        return waiting[-1] if waiting else None

    def _turn_for(self, session: InterviewSession, turn_id: str) -> Turn:
        turn = next((t for t in session.turns if t.id == turn_id), None)
        if turn is None:
            raise NotFound(f"turn {turn_id!r} is not part of this session")
        return turn

    def _require_current(self, session: InterviewSession, turn: Turn) -> None:
        if session.status != "active":
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
        question = self.bank.get(turn.question_id)
        hints = len(question.hints) if question is not None and not turn.is_follow_up else 0
        return QuestionOut(
            turn_id=turn.id,
            text=turn.question_text,
            question_id=turn.question_id,
            topic=turn.topic,
            difficulty=turn.difficulty,
            is_follow_up=turn.is_follow_up,
            parent_turn_id=turn.parent_turn_id,
            number=number,
            total=session.num_questions,
            hints_available=max(0, hints - turn.hints_used),
        )

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

    def record_answer(
        self, db: Session, session: InterviewSession, turn_id: str, answer: str, key: str | None = None
    ) -> Recorded:
        """Keep the answer (status ``ungraded``). Retrying the same answer is a no-op."""
        turn = self._turn_for(session, turn_id)
        if turn.status == "answered":
            if turn.answer_text == answer or (key is not None and key == turn.idempotency_key):
                return Recorded(turn, replay=True)
            raise Conflict("this question was already answered with a different answer")
        self._require_current(session, turn)
        if len(answer) > self.settings.max_answer_chars:
            raise InvalidInput(f"answer is {len(answer)} characters; the limit is {self.settings.max_answer_chars}")
        # Guarded update: of two processes racing on the same turn, exactly one wins.
        result = db.execute(
            update(Turn)
            .where(Turn.id == turn.id, Turn.status == "asked")
            .values(
                status="answered",
                answer_text=answer,
                idempotency_key=key,
                answered_at=utcnow(),
                grading_status="ungraded",
            )
            .execution_options(synchronize_session="fetch")
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            db.refresh(turn)
            if turn.answer_text == answer:
                return Recorded(turn, replay=True)
            raise Conflict("this question was already answered with a different answer")
        db.refresh(turn)
        return Recorded(turn, replay=False)

    def grade_input(self, session: InterviewSession, turn: Turn) -> GradeInput:
        question = self.bank.get(turn.question_id)
        if question is None:
            raise NotFound(f"question {turn.question_id!r} is no longer in the bank")
        rubric = question.rubric_points()
        reference = question.reference_answer
        if turn.is_follow_up and turn.probes_point:
            probed = [p for p in rubric if p.id == turn.probes_point]
            if probed:
                rubric = [RubricPoint(id=p.id, text=p.text, weight=p.weight, essential=True) for p in probed]
                reference = f"{probed[0].text} {question.reference_answer}"
        return GradeInput(
            question=turn.question_text,
            reference_answer=reference,
            answer=turn.answer_text or "",
            rubric=rubric,
            question_id=question.id,
            bank_hash=f"{turn.bank_hash}:{turn.probes_point or ''}",
        )

    async def grade_turn(self, db: Session, session: InterviewSession, turn: Turn) -> GradeResult | None:
        """Grade an answered turn. On failure the turn stays ``ungraded`` and ``None`` returns."""
        if self.grader is None:
            turn.grading_error = "no grader is loaded"
            return None
        token = current_turn_id.set(turn.id)
        try:
            inp = self.grade_input(session, turn)
            result = await self.grader.grade(inp)
        except Exception as exc:
            log.exception("grading turn %s failed", turn.id)
            GRADING_FAILURES.inc()
            turn.grading_status = "ungraded"
            turn.grading_error = f"{type(exc).__name__}: {exc}"
            current_turn_id.reset(token)
            return None
        self.store_grading(turn, result)
        try:
            if self.shadow is not None:
                await self._shadow_grade(turn, inp)
        finally:
            current_turn_id.reset(token)
        return result

    async def _shadow_grade(self, turn: Turn, inp: GradeInput) -> None:
        """Grade with the shadow configuration too; stored, never shown, never fatal."""
        assert self.shadow is not None
        try:
            shadow = await self.shadow.grade(inp)
        except Exception as exc:
            log.warning("shadow grading of turn %s failed: %s", turn.id, exc)
            turn.shadow_grading = {"error": f"{type(exc).__name__}: {exc}", "score": None}
            return
        versions = shadow.versions.model_dump() if shadow.versions else {}
        turn.shadow_grading = {
            "score": shadow.score,
            "status": shadow.status.value,
            "config": versions,
            "result": shadow.model_dump(mode="json"),
        }

    def store_grading(self, turn: Turn, result: GradeResult) -> None:
        turn.grading = result.model_dump(mode="json")
        turn.grading_status = result.status.value
        turn.score = result.score
        turn.flagged = bool(result.flags)
        turn.grading_error = None
        turn.graded_at = utcnow()

    def grading_of(self, turn: Turn) -> GradeResult | None:
        return GradeResult.model_validate(turn.grading) if turn.grading else None

    # ------------------------------------------------------------------------ progress
    def advance(self, db: Session, session: InterviewSession, turn: Turn, result: GradeResult | None) -> Turn | None:
        """Ask the next turn (a follow-up or the next main question), or finish the session."""
        follow_up = self._follow_up(db, session, turn, result)
        if follow_up is not None:
            return follow_up
        mains = [t for t in session.turns if not t.is_follow_up]
        if len(mains) < session.num_questions:
            question = self._next_main_question(db, session)
            if question is not None:
                return self._ask(db, session, question, question.question)
        self.finish(db, session)
        return None

    def _follow_up(self, db: Session, session: InterviewSession, turn: Turn, result: GradeResult | None) -> Turn | None:
        if result is None or not result.score or self.settings.max_follow_ups == 0:
            return None  # ungraded, or a non-answer: nothing to probe, move on
        main = turn if not turn.is_follow_up else self._turn_for(session, turn.parent_turn_id or "")
        chain = [t for t in session.turns if t.parent_turn_id == main.id]
        if len(chain) >= self.settings.max_follow_ups:
            return None
        question = self.bank.get(main.question_id)
        main_result = self.grading_of(main)
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
            return self._ask(db, session, question, fu.question, parent=main, probes=missed[0].id)
        if not chain and not turn.is_follow_up and (result.score or 0) >= 4.0:
            deeper = next((f for f in question.follow_ups if f.deeper), None)
            if deeper is not None:
                return self._ask(db, session, question, deeper.question, parent=main)
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
            main_scores=[(t.difficulty, t.score) for t in mains if t.status in ("answered", "skipped")],
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
                if q is not None and t.score < 3.0:
                    for tag in q.tags:
                        tag_misses[tag] += 1
        topic_scores = {k: sum(v) / len(v) for k, v in per_topic.items()}
        weak_tags = [tag for tag, _ in sorted(tag_misses.items(), key=lambda kv: (-kv[1], kv[0]))[:5]]
        return self._History(recent_ids, topic_scores, weak_tags)

    def skip(self, db: Session, session: InterviewSession, turn_id: str) -> Turn | None:
        turn = self._turn_for(session, turn_id)
        self._require_current(session, turn)
        turn.status = "skipped"
        turn.grading_status = "skipped"
        turn.score = 0.0
        turn.answered_at = utcnow()
        db.flush()
        return self.advance(db, session, turn, None)

    def hint(self, db: Session, session: InterviewSession, turn_id: str) -> tuple[Turn, str, int]:
        turn = self._turn_for(session, turn_id)
        self._require_current(session, turn)
        question = self.bank.get(turn.question_id)
        hints = question.hints if question is not None and not turn.is_follow_up else []
        if turn.is_follow_up and question is not None and turn.probes_point:
            point = next((r for r in question.rubric if r.id == turn.probes_point), None)
            hints = [f"Think about this aspect: {point.point.split(',')[0]}"] if point else []
        if turn.hints_used >= len(hints):
            raise Conflict("no more hints for this question")
        hint = hints[turn.hints_used]
        turn.hints_used += 1
        db.flush()
        return turn, hint, len(hints) - turn.hints_used

    def finish(self, db: Session, session: InterviewSession) -> dict[str, object]:
        if session.status != "finished":
            for t in session.turns:
                if t.status == "asked":
                    t.status = "unanswered"
                    t.grading_status = "skipped"
            session.status = "finished"
            session.finished_at = utcnow()
        session.report = build_report(session, self.bank)
        db.flush()
        return session.report

    def finished_report(self, db: Session, session: InterviewSession) -> dict[str, object]:
        """The report of a finished session (built now if it was never stored)."""
        if session.status != "finished":
            raise Conflict("the report is ready once the session is finished (POST .../finish)")
        if session.report is None:
            self.finish(db, session)
        return dict(session.report or {})

    async def regrade(self, db: Session, turn: Turn) -> GradeResult | None:
        """Grade a kept answer again (for ``ungraded`` turns after a failure)."""
        if turn.status != "answered":
            raise Conflict("only answered turns can be graded")
        session = turn.session
        result = await self.grade_turn(db, session, turn)
        if result is not None and session.status == "finished":
            session.report = build_report(session, self.bank)
        return result
