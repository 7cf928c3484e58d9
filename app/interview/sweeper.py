"""Background work of a serving process: its heartbeat, and the sweeper that finishes grading.

The sweeper looks, every ``sweep_interval_s``, for answers no live process is working on:

- ``ungraded`` turns (the grader failed, or the process stopped while grading),
- ``judge_pending`` turns (scored without the judge they should have had) once the judge is
  healthy again,
- the last turn of a session that is stuck (active, nothing to answer),

claims a few of them (``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL, so the sweepers of
several processes share the work instead of doing it twice), grades them and moves their sessions
on. ``mockinterview regrade`` does the same once, from the command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import ColumnElement, and_, exists, false, or_, select, true, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, aliased

from app.db import instances
from app.db.base import begin_write, in_thread, utcnow, with_lock_retries
from app.interview.models import InterviewSession, Turn
from app.interview.service import InterviewService
from app.statuses import SessionStatus, TurnGradingStatus, TurnStatus

log = logging.getLogger(__name__)

BATCH = 10


@dataclass
class SweepCounts:
    ungraded: int = 0
    judge_pending: int = 0
    stuck: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.ungraded + self.judge_pending + self.stuck


def claimable(service: InterviewService, *, with_judge: bool, include_all: bool = False) -> ColumnElement[bool]:
    """The SQL condition of turns this process may take: answered, needing work, and not
    claimed by a live process."""
    settings = service.settings
    now = utcnow()
    lease = timedelta(seconds=settings.judge_deadline_s + settings.answer_lease_s)
    later = aliased(Turn)
    # An answered turn with no turn after it, in an active session: nothing is asked.
    stuck = and_(
        InterviewSession.status == SessionStatus.active,
        ~exists(select(later.id).where(later.session_id == Turn.session_id, later.position > Turn.position)),
    )
    needs = or_(
        Turn.grading_status == TurnGradingStatus.ungraded,
        and_(Turn.judge_pending, true_if(with_judge)),
        stuck,
        true_if(include_all),
    )
    unclaimed = or_(
        Turn.claimed_by.is_(None),
        Turn.claimed_at < now - lease,
        ~exists(
            select(instances.AppInstance.id).where(
                instances.AppInstance.id == Turn.claimed_by,
                instances.AppInstance.heartbeat_at > now - timedelta(seconds=instances.DEAD_AFTER_S),
            )
        ),
    )
    return and_(Turn.status == TurnStatus.answered, needs, unclaimed)


def true_if(flag: bool) -> ColumnElement[bool]:
    return true() if flag else false()


class Sweeper:
    def __init__(self, service: InterviewService) -> None:
        if service.runtime is None:
            raise ValueError("the sweeper needs the process's AnswerRuntime")
        self.service = service
        self.runtime = service.runtime

    @property
    def judge_ready(self) -> bool:
        grader = self.service.grader
        return grader is not None and grader.judge is not None and grader.judge.healthy

    def claim(self, limit: int = BATCH, include_all: bool = False, exclude: set[str] | None = None) -> list[str]:
        """Claim up to ``limit`` turns for this process (committed at once)."""
        with self.runtime.session_factory() as db:
            return with_lock_retries(db, self._claim, limit, include_all, exclude)

    def _claim(self, db: Session, limit: int, include_all: bool, exclude: set[str] | None) -> list[str]:
        begin_write(db)
        query = (
            select(Turn.id)
            .join(InterviewSession, InterviewSession.id == Turn.session_id)
            .where(claimable(self.service, with_judge=self.judge_ready, include_all=include_all))
        )
        if exclude:
            query = query.where(Turn.id.not_in(list(exclude)))
        query = query.order_by(Turn.answered_at).limit(limit).with_for_update(skip_locked=True, of=Turn)
        ids = list(db.scalars(query))
        if ids:
            db.execute(
                update(Turn).where(Turn.id.in_(ids)).values(claimed_by=self.runtime.instance_id, claimed_at=utcnow())
            )
        db.commit()
        return ids

    async def work_on(self, turn_id: str, counts: SweepCounts, force: bool = False) -> None:
        """Finish a claimed turn and count what was done."""
        done = await self.service.complete_claimed(turn_id, regrade=force, with_judge=self.judge_ready)
        if done is None:
            return
        kind, ok = done
        if not ok:
            counts.failed += 1
        else:
            setattr(counts, kind, getattr(counts, kind) + 1)

    async def sweep_once(self) -> SweepCounts:
        counts = SweepCounts()
        ids = await in_thread(self.claim)  # claim() retries a refused lock itself
        for turn_id in ids:
            try:
                await self.work_on(turn_id, counts)
            except Exception:
                counts.failed += 1
                log.exception("sweeping turn %s failed", turn_id)
        if counts.total or counts.failed:
            log.info(
                "sweeper: %d ungraded, %d judge-pending, %d stuck sessions done; %d failed",
                counts.ungraded,
                counts.judge_pending,
                counts.stuck,
                counts.failed,
            )
        return counts


class Background:
    """Starts and stops a process's heartbeat and sweeper (the server's lifespan uses it)."""

    def __init__(self, service: InterviewService, kind: str = "server", sweep_interval_s: float | None = None) -> None:
        assert service.runtime is not None
        self.service = service
        self.runtime = service.runtime
        self.kind = kind
        self.interval = service.settings.sweep_interval_s if sweep_interval_s is None else sweep_interval_s
        self._tasks: list[asyncio.Task[None]] = []

    def _register(self) -> None:
        with self.runtime.session_factory() as db:
            instances.register(db, self.runtime.instance_id, self.kind)
            db.commit()

    def _beat(self) -> None:
        with self.runtime.session_factory() as db:
            if not instances.beat(db, self.runtime.instance_id):
                instances.register(db, self.runtime.instance_id, self.kind)
            db.commit()

    def _unregister(self) -> None:
        with self.runtime.session_factory() as db:
            instances.unregister(db, self.runtime.instance_id)
            db.commit()

    async def start(self) -> None:
        """Register this process and start its heartbeat (the sweeper joins once there is a
        grader: :meth:`add_sweeper`)."""
        try:
            await in_thread(self._register)
        except OperationalError as exc:
            # A read-only or unreachable database: serve what can be served (requests that need
            # it get a 503) and keep beating, which registers the process once it works again.
            log.error("cannot register this process (%s); serving on, requests needing the database get 503", exc.orig)
        self._tasks.append(asyncio.create_task(self._heartbeat(), name="heartbeat"))

    def add_sweeper(self, sweeper: Sweeper) -> None:
        if self.interval > 0:
            self._tasks.append(asyncio.create_task(self._sweep(sweeper), name="sweeper"))

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(instances.HEARTBEAT_S)
            try:
                await in_thread(self._beat)
            except Exception:
                log.exception("heartbeat failed")

    async def _sweep(self, sweeper: Sweeper) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await sweeper.sweep_once()
            except Exception:
                log.exception("sweep failed")

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.runtime.drain()
        with contextlib.suppress(Exception):
            await in_thread(self._unregister)
