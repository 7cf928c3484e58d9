"""Throughput of the LLM judge against a local stub OpenAI-compatible server.

    python bench/bench_judge.py [--n 200] [--delay 0.3] [--concurrency 32]

Starts a stub chat-completions server (starlette + uvicorn, in a child process so it does not
share the judge's event loop or GIL) that answers every request with a valid judge JSON after
``--delay`` seconds, then runs ``--n`` judgings through :class:`Judge` with the cache off and
prints wall time, throughput and per-call latency p50/p95. Target: 200 judgings <= 5 s.

With a 300 ms server the floor is ``ceil(n / concurrency) * 0.3`` s: the settings default
``judge_concurrency=8`` gives 7.5 s for 200, so the target needs ``judge_concurrency >= 16``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from app.config import Settings  # noqa: E402
from app.grading.judge import Judge  # noqa: E402
from app.grading.schemas import GradeInput, LLMCallRecord, RubricPoint  # noqa: E402

MODEL = "stub-judge"
ANSWER = (
    "Overfitting is when a model memorises the noise in the training data, so it does well on "
    "training data but poorly on new data. Regularisation, more data or early stopping help."
)
VERDICT = {
    "reasoning": "Defines overfitting and names remedies.",
    "points": [
        {"id": "noise", "quote": "memorises the noise in the training data", "reasoning": "", "verdict": "covered"},
        {"id": "generalise", "quote": "poorly on new data", "reasoning": "", "verdict": "covered"},
        {"id": "remedy", "quote": "Regularisation, more data or early stopping", "reasoning": "", "verdict": "covered"},
    ],
    "score": 4.5,
    "strengths": ["precise definition"],
    "gaps": ["no detection method"],
    "improvement": "Say how you would detect it with a validation curve.",
    "follow_up": "How would you detect overfitting while training?",
    "injection_attempt": False,
}


# ------------------------------------------------------------------------------ the stub server


def serve(port: int, delay: float) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    body = json.dumps(VERDICT)

    async def chat(request: Request) -> JSONResponse:
        payload = await request.json()
        await asyncio.sleep(delay)
        return JSONResponse(
            {
                "id": "chatcmpl-stub",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": payload.get("model", MODEL),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": body}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 900, "completion_tokens": 250, "total_tokens": 1150},
            }
        )

    async def models(request: Request) -> JSONResponse:
        return JSONResponse({"object": "list", "data": [{"id": MODEL, "object": "model"}]})

    app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"]), Route("/v1/models", models)])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, backlog=2048)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_stub(delay: float) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), "--delay", str(delay)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"stub server exited with {proc.returncode}")
        try:
            if httpx.get(f"{base_url}/models", timeout=1).status_code == 200:
                return proc, base_url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("stub server did not start within 30 s")


# ------------------------------------------------------------------------------ the benchmark


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = max(0, math.ceil(q / 100 * len(ordered)) - 1)
    return ordered[index]


async def run_bench(base_url: str, n: int, concurrency: int) -> dict[str, float]:
    settings = Settings(
        _env_file=None,
        judge_model=MODEL,
        OPENAI_API_KEY="bench",
        OPENAI_BASE_URL=base_url,
        judge_cache=False,
        judge_concurrency=concurrency,
        judge_timeout_s=30,
    )
    records: list[LLMCallRecord] = []
    inputs = [
        GradeInput(
            question="What is overfitting and how do you reduce it?",
            reference_answer="The model fits noise and generalises poorly; regularise or add data.",
            answer=f"{ANSWER} (variant {i})",
            rubric=[
                RubricPoint(id="noise", text="Fits noise in the training data", essential=True),
                RubricPoint(id="generalise", text="Generalises poorly"),
                RubricPoint(id="remedy", text="Regularisation, more data, early stopping"),
            ],
            question_id=f"q{i}",
        )
        for i in range(n)
    ]
    async with Judge(settings, audit=records.append, cache_mode="off") as judge:
        await judge.judge(inputs[0])  # warm up: connection, prompt templates
        records.clear()
        ends: list[float] = []

        async def one(inp: GradeInput) -> str:
            t0 = time.perf_counter()
            outcome = await judge.judge(inp)
            ends.append(time.perf_counter() - t0)
            return outcome.status

        started = time.perf_counter()
        statuses = await asyncio.gather(*(one(i) for i in inputs))
        wall = time.perf_counter() - started
    calls = [r.latency_ms for r in records if r.outcome == "ok"]
    return {
        "n": n,
        "concurrency": concurrency,
        "ok": sum(s == "ok" for s in statuses),
        "wall_s": wall,
        "throughput": n / wall,
        "call_p50_ms": statistics.median(calls),
        "call_p95_ms": percentile(calls, 95),
        "judging_p50_ms": statistics.median(ends) * 1000,
        "judging_p95_ms": percentile(ends, 95) * 1000,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="judgings to run (default 200)")
    parser.add_argument("--delay", type=float, default=0.3, help="stub server latency in seconds")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[32], help="judge_concurrency value(s)")
    parser.add_argument("--target", type=float, default=5.0, help="wall-time target in seconds")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.delay)
        return 0

    proc, base_url = start_stub(args.delay)
    failed = False
    try:
        for concurrency in args.concurrency:
            r = asyncio.run(run_bench(base_url, args.n, concurrency))
            verdict = "PASS" if r["wall_s"] <= args.target and r["ok"] == args.n else "MISS"
            failed |= verdict == "MISS"
            print(
                f"judge bench: n={r['n']:.0f} concurrency={r['concurrency']:.0f} ok={r['ok']:.0f} "
                f"wall={r['wall_s']:.2f}s throughput={r['throughput']:.1f}/s "
                f"call p50={r['call_p50_ms']:.0f}ms p95={r['call_p95_ms']:.0f}ms "
                f"judging p50={r['judging_p50_ms']:.0f}ms p95={r['judging_p95_ms']:.0f}ms "
                f"[{verdict} target {args.target:.1f}s, server delay {args.delay * 1000:.0f}ms]"
            )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
