"""Micro-batching of concurrent grading requests.

``await batcher.grade(item)`` queues the item; a single worker task takes whatever has queued
up (waiting ``window_ms`` after the first arrival for more, up to ``max_batch``) and grades
it with one :meth:`EmbeddingGrader.grade_batch` call in the grader's own thread. Requests
arriving while a batch is being graded form the next batch, so under load batches grow by
themselves and 32 concurrent requests become one or two model calls.

Every model call runs on that one thread (:attr:`MicroBatcher.executor`): the model's
per-thread state (its OpenMP team, autocast) is set up once, at start-up (warmed by the
bank preload), not by a candidate's first answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from app.grading.schemas import EmbeddingEvidence, GradeInput

if TYPE_CHECKING:
    from app.grading.embedding_grader import EmbeddingGrader

log = logging.getLogger(__name__)

_Pending = tuple[GradeInput, "asyncio.Future[EmbeddingEvidence]"]


class MicroBatcher:
    """Groups concurrent :meth:`grade` calls into :meth:`EmbeddingGrader.grade_batch` calls."""

    def __init__(self, grader: EmbeddingGrader, window_ms: float = 2.0, max_batch: int = 64) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.grader = grader
        self.window_s = max(0.0, float(window_ms)) / 1000.0
        self.max_batch = int(max_batch)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="grader")
        self.batches = 0
        """How many ``grade_batch`` calls were made (for metrics and tests)."""
        self._queue: asyncio.Queue[_Pending] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def grade(self, item: GradeInput) -> EmbeddingEvidence:
        """Grade one item, batched with whatever other requests arrive together."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._queue is None or self._worker is None or (self._worker.done()):
            # First use, or a new event loop (tests, CLI runs): start a fresh worker.
            self._loop = loop
            self._queue = asyncio.Queue()
            self._worker = loop.create_task(self._run(self._queue), name="embedding-batcher")
        future: asyncio.Future[EmbeddingEvidence] = loop.create_future()
        self._queue.put_nowait((item, future))
        return await future

    async def _run(self, queue: asyncio.Queue[_Pending]) -> None:
        while True:
            first = await queue.get()
            batch = [first]
            if self.window_s > 0 and queue.qsize() < self.max_batch - 1:
                await asyncio.sleep(self.window_s)
            while len(batch) < self.max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            live = [(item, fut) for item, fut in batch if not fut.done()]  # drop cancelled
            if not live:
                continue
            try:
                results = await asyncio.get_running_loop().run_in_executor(
                    self.executor, self.grader.grade_batch, [item for item, _ in live]
                )
                if len(results) != len(live):
                    raise RuntimeError(f"grade_batch returned {len(results)} results for {len(live)} items")
            except asyncio.CancelledError:
                for _, fut in live:
                    if not fut.done():
                        fut.cancel()
                raise
            except Exception as exc:  # every waiting caller gets the error
                log.exception("embedding batch of %d failed", len(live))
                for _, fut in live:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            self.batches += 1
            for (_, fut), result in zip(live, results, strict=True):
                if not fut.done():
                    fut.set_result(result)

    async def close(self) -> None:
        """Stop the worker (pending callers are cancelled)."""
        worker, self._worker = self._worker, None
        if worker is not None and not worker.done():
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await worker
        if self._queue is not None:
            while not self._queue.empty():
                _, fut = self._queue.get_nowait()
                if not fut.done():
                    fut.cancel()
