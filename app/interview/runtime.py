"""What one process knows about the answers it is handling right now.

The database says which answers exist and who claimed them; this says which of this process's
claims are still being worked on (an answer being graded by a request, or a judge verdict still
on its way), so a retry of the same answer can wait for the first request instead of grading
twice, and a claim this process holds but no longer works on is known to be abandoned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.db.base import new_id

log = logging.getLogger(__name__)


class AnswerRuntime:
    def __init__(self, session_factory: sessionmaker[Session], instance_id: str | None = None) -> None:
        self.session_factory = session_factory
        self.instance_id = instance_id or new_id()
        self._flights: dict[str, asyncio.Event] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ answers in flight
    def begin(self, turn_id: str) -> None:
        self._flights[turn_id] = asyncio.Event()

    def end(self, turn_id: str) -> None:
        event = self._flights.pop(turn_id, None)
        if event is not None:
            event.set()

    def in_flight(self, turn_id: str) -> bool:
        return turn_id in self._flights

    async def wait(self, turn_id: str, timeout_s: float) -> None:
        """Wait (at most ``timeout_s``) until this process is done with ``turn_id``."""
        event = self._flights.get(turn_id)
        if event is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout_s)

    # ------------------------------------------------------------------ background work
    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run ``coro`` in the background, logging (never losing) its failure."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    @property
    def background(self) -> int:
        return len(self._tasks)

    async def drain(self, timeout_s: float = 5.0) -> None:
        """Let background work finish (up to ``timeout_s``), then cancel what is left.

        A cancelled judge verdict is not lost: its turn stays ``judge_pending`` and the sweeper
        of whichever process runs next regrades it."""
        tasks = list(self._tasks)
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=1.0)
