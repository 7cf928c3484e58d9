"""The asyncio micro-batcher groups concurrent requests into few grade_batch calls."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import anyio
import pytest

from app.grading.batching import MicroBatcher
from app.grading.embedding_grader import EmbeddingGrader
from app.grading.schemas import EmbeddingEvidence, GradeInput


class SpyGrader:
    """Stands in for EmbeddingGrader: records batch sizes, echoes each item back."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[int] = []
        self.fail = fail
        self.lock = threading.Lock()

    def grade_batch(self, items: Sequence[GradeInput]) -> list[EmbeddingEvidence]:
        with self.lock:
            self.calls.append(len(items))
        if self.fail:
            raise RuntimeError("model exploded")
        return [
            EmbeddingEvidence(
                score=float(int(it.answer)) / 10,
                reference_similarity=0.0,
                points=[],
                model=it.answer,
                calibration_version="spy",
            )
            for it in items
        ]


def make(i: int) -> GradeInput:
    return GradeInput(question="q", reference_answer="r", answer=str(i))


@pytest.mark.anyio
async def test_concurrent_requests_share_a_batch_and_get_their_own_result() -> None:
    spy = SpyGrader()
    batcher = MicroBatcher(spy, window_ms=5.0, max_batch=64)  # type: ignore[arg-type]
    results = await asyncio.gather(*(batcher.grade(make(i)) for i in range(32)))
    await batcher.close()
    assert len(spy.calls) <= 2 and sum(spy.calls) == 32
    assert [r.model for r in results] == [str(i) for i in range(32)]


@pytest.mark.anyio
async def test_max_batch_is_respected_and_later_requests_still_served() -> None:
    spy = SpyGrader()
    batcher = MicroBatcher(spy, window_ms=1.0, max_batch=8)  # type: ignore[arg-type]
    out = await asyncio.gather(*(batcher.grade(make(i)) for i in range(20)))
    assert [r.model for r in out] == [str(i) for i in range(20)]
    single = await batcher.grade(make(7))
    assert single.model == "7"
    await batcher.close()
    assert max(spy.calls) <= 8 and sum(spy.calls) == 21


@pytest.mark.anyio
async def test_errors_reach_every_caller_and_the_worker_survives() -> None:
    spy = SpyGrader(fail=True)
    batcher = MicroBatcher(spy, window_ms=1.0)  # type: ignore[arg-type]
    results = await asyncio.gather(*(batcher.grade(make(i)) for i in range(4)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    spy.fail = False
    assert (await batcher.grade(make(3))).model == "3"
    await batcher.close()


def test_works_across_event_loops() -> None:
    """One batcher, used from one event loop after another (this test runs each loop itself)."""
    spy = SpyGrader()
    batcher = MicroBatcher(spy, window_ms=0.0)  # type: ignore[arg-type]
    for i in range(2):
        assert anyio.run(batcher.grade, make(i)).model == str(i)


@pytest.mark.anyio
async def test_real_grader_through_the_batcher(embedding_grader: EmbeddingGrader) -> None:
    grader = embedding_grader
    items = [
        GradeInput(
            question="Why would you use a feature store?",
            reference_answer="It keeps training and serving features consistent, avoiding "
            "training-serving skew, and serves fresh features online with low latency.",
            answer=answer,
        )
        for answer in [
            "So training and serving compute features the same way and there is no skew.",
            "Pizza with basil.",
            "I don't know",
            "It serves features online with low latency.",
        ]
        * 8
    ]
    expected = grader.grade_batch(items)
    calls_before = grader.encoder.encode_calls

    batcher = MicroBatcher(grader, window_ms=2.0)
    results = await asyncio.gather(*(batcher.grade(it) for it in items))
    batches = batcher.batches
    await batcher.close()
    assert batches <= 2
    assert grader.encoder.encode_calls - calls_before <= 2
    assert [r.score for r in results] == [e.score for e in expected]
    assert results[2].non_answer and not results[0].non_answer


def test_rejects_bad_max_batch() -> None:
    with pytest.raises(ValueError):
        MicroBatcher(SpyGrader(), max_batch=0)  # type: ignore[arg-type]
