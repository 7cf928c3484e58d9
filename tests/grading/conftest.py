"""Fixtures for tests of the LLM judge: settings, an audit list, and a :class:`Judge` factory
on the respx-mocked endpoint of :mod:`tests.grading.llm_mock` (waits between retries recorded,
not slept)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import respx

from app.config import Settings
from app.grading.judge import Judge
from app.grading.schemas import LLMCallRecord
from tests.grading.llm_mock import BASE_URL


@pytest.fixture
def judge_settings(tmp_path: Path) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        judge_model="judge-test-model",
        OPENAI_API_KEY="test",
        OPENAI_BASE_URL=BASE_URL,
        data_dir=tmp_path,
        embedding_cache_dir=None,
        judge_max_retries=2,
        judge_timeout_s=2.0,
        judge_concurrency=4,
        judge_cache=False,
    )


@pytest.fixture
def judge_audit() -> list[LLMCallRecord]:
    return []


@pytest.fixture
def judge_sleeps() -> list[float]:
    return []


@pytest.fixture
def make_judge(
    judge_settings: Settings, judge_audit: list[LLMCallRecord], judge_sleeps: list[float]
) -> Callable[..., Judge]:
    def factory(settings: Settings | None = None, **kw: Any) -> Judge:
        kw.setdefault("retry_base_s", 0.001)
        judge = Judge(settings or judge_settings, audit=judge_audit.append, **kw)

        async def no_sleep(delay: float) -> None:
            judge_sleeps.append(delay)

        judge.caller.sleep = no_sleep
        return judge

    return factory


@pytest.fixture
def llm_router() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE_URL, assert_all_called=False) as router:
        yield router
