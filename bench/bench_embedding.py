"""Embedding grader benchmark on this machine.

Prints, for typical MLOps interview answers (32 distinct ones):

* the raw ``model.encode`` throughput (sentences/s and whole answers/s, batches of 32, and
  32 answers in the small length-sorted passes the grader uses): the limit any grader built
  on this model can reach here;
* warm single-grading latency p50/p95 over ~200 gradings (target p95 <= 40 ms);
* throughput of 32 concurrent requests through :class:`MicroBatcher`
  (target >= 150 gradings/s).

Raw and graded rounds are interleaved and reported as medians: other processes sharing the
cores then weigh on the limit and on the grader alike.

    python -m bench.bench_embedding [--n 200] [--rounds 8] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

from app.grading.schemas import GradeInput, RubricPoint

QUESTIONS: list[dict[str, Any]] = [
    {
        "question": "What is data drift, and how would you detect it for a model in production?",
        "reference": (
            "Data drift is a change in the distribution of the model's input features in "
            "production compared with the training data. Detect it by logging live inputs and "
            "comparing their distributions with a training baseline, per feature, using "
            "statistics such as the population stability index or a Kolmogorov-Smirnov test, "
            "and alert when the shift crosses a threshold. Distinguish it from concept drift, "
            "where the relationship between inputs and labels changes."
        ),
        "rubric": [
            ("Defines data drift as a shift of the input distribution vs training", True),
            ("Compares live feature distributions with a training baseline", False),
            ("Names a statistic such as PSI or a KS test, with a threshold/alert", False),
            ("Distinguishes data drift from concept drift", False),
        ],
        "answers": [
            "Data drift happens when the inputs the model sees in production stop looking like "
            "the training data, for example a new customer segment shows up. I would log the "
            "features at serving time and compare them every day against a baseline from the "
            "training set, feature by feature, with PSI or a KS test. If the PSI goes above "
            "0.2 we raise an alert and look at whether we need to retrain. That is different "
            "from concept drift, where the mapping from features to the label changes.",
            "It is when the model gets worse over time. You can see it in the accuracy "
            "dashboards and then retrain the model.",
            "Drift means the statistical properties of production data change. We monitored it "
            "with Evidently, comparing histograms of each feature with the reference window and "
            "paging the on-call when too many features drifted.",
            "Data drift is a covariate shift: P(x) changes while P(y|x) stays the same. Track "
            "summary statistics and histograms of every input in a monitoring job, compute a "
            "divergence against the training distribution, and alert on a threshold.",
            "When accuracy drops you retrain. We retrained every week anyway, so drift was never a problem for us.",
        ],
    },
    {
        "question": "Why would you use a feature store in an ML platform?",
        "reference": (
            "A feature store keeps feature definitions and values in one place so that "
            "training and serving compute features the same way, which avoids training-serving "
            "skew. It serves fresh features with low latency online, keeps point-in-time "
            "correct history offline for building training sets without leakage, and lets "
            "teams discover and reuse features instead of rebuilding them."
        ),
        "rubric": [
            ("Same feature logic for training and serving, avoiding training-serving skew", True),
            ("Low-latency online serving of fresh features", False),
            ("Point-in-time correct offline history for training without leakage", False),
            ("Discovery and reuse of features across teams", False),
        ],
        "answers": [
            "The main reason is consistency: the same feature code produces the values for "
            "training and for online inference, so you do not get training-serving skew. It "
            "also has an online store for low-latency lookups and an offline store with "
            "point-in-time joins, so training sets do not leak future data. And other teams "
            "can find and reuse features.",
            "A feature store is a database for features. It makes things faster.",
            "Reuse, mostly. Teams publish features and others pick them up, and the online "
            "store serves them quickly at inference time.",
            "Without one, the training pipeline computes features in Spark and the service "
            "recomputes them in Java, and the two drift apart. A feature store defines them "
            "once. It also gives point-in-time lookups so the training data has no leakage.",
            "To store embeddings so that search is fast.",
        ],
    },
    {
        "question": "How would you roll out a new model version safely?",
        "reference": (
            "Validate the new version offline against the current one, then release it "
            "gradually: shadow it on live traffic without acting on its predictions, then a "
            "canary on a small share of traffic or an A/B test, watching latency, errors and "
            "business metrics. Keep the previous version deployed so that rollback is one "
            "switch, and automate the rollback when guardrail metrics degrade."
        ),
        "rubric": [
            ("Offline validation against the current model before release", False),
            ("Gradual release: shadow, canary or A/B on a share of traffic", True),
            ("Monitors latency, errors and business metrics during rollout", False),
            ("Fast or automatic rollback to the previous version", False),
        ],
        "answers": [
            "First I compare it offline with the production model on a recent holdout. Then I "
            "deploy it in shadow mode so it scores live requests but nobody uses the output, "
            "and after that a canary with five percent of traffic while we watch p99 latency, "
            "error rate and conversion. The old model stays deployed and the router can switch "
            "back in one step if a guardrail metric drops.",
            "Test it well and deploy it on a Friday evening when traffic is low.",
            "Use blue green deployment with Kubernetes and keep the old pods around.",
            "Run an A/B test: send ten percent of users to the new model, compare the business "
            "metric with a significance test, and ramp up only if it wins. Alerts on latency "
            "and errors trigger an automatic rollback.",
            "Replace the model file on the server and restart it during the night.",
        ],
    },
    {
        "question": "What should you version to make a training run reproducible?",
        "reference": (
            "Version the code, the exact training data snapshot, the configuration and "
            "hyperparameters, the random seeds, and the environment (library versions, "
            "container image), and record them with the resulting model artifact and its "
            "metrics in an experiment tracker or model registry."
        ),
        "rubric": [
            ("Code and configuration / hyperparameters", True),
            ("The exact data snapshot used for training", True),
            ("Seeds and the software environment (dependencies, image)", False),
            ("Links them to the model artifact and metrics in a tracker/registry", False),
        ],
        "answers": [
            "You need the git commit of the code, a pointer to an immutable snapshot of the "
            "dataset, say with DVC, the config file with the hyperparameters and seeds, and "
            "the docker image digest. We log all of that in MLflow together with the model "
            "and its metrics.",
            "Save the model file and the notebook.",
            "The data and the code. Also pin your pip requirements.",
            "Everything that can change the result: code version, data version, feature "
            "definitions, hyperparameters, random seeds, library versions and the hardware "
            "type. Store them as run metadata next to the model in the registry.",
            "Use a fixed random seed.",
        ],
    },
]


def items() -> list[GradeInput]:
    out = []
    for qi, q in enumerate(QUESTIONS):
        rubric = [
            RubricPoint(id=f"p{i + 1}", text=text, essential=essential)
            for i, (text, essential) in enumerate(q["rubric"])
        ]
        for answer in q["answers"]:
            out.append(
                GradeInput(
                    question=q["question"],
                    reference_answer=q["reference"],
                    answer=answer,
                    rubric=rubric,
                    question_id=f"bench-{qi}",
                )
            )
    return out


def distinct_items(n: int) -> list[GradeInput]:
    """``n`` gradings with distinct answer texts: the answers above, then partial answers
    (their leading sentences), so that nothing is deduplicated away inside a batch."""
    from app.grading.injection import split_sentences

    base = items()
    out, seen = list(base), {it.answer for it in base}
    for keep in (2, 1, 3):
        for it in base:
            sentences = split_sentences(it.answer)
            if len(sentences) > keep:
                text = " ".join(sentences[:keep])
                if text not in seen:
                    seen.add(text)
                    out.append(it.model_copy(update={"answer": text}))
    if len(out) < n:
        raise ValueError(f"only {len(out)} distinct answers available")
    return out[:n]


def bank_items(n: int) -> list[GradeInput]:
    """``n`` gold-set answers to bank questions, graded against the question's full rubric (its
    points' variants and misconceptions included): what the interview's answer path grades."""
    from app.bank.loader import bank_folders, load_bank
    from evals.gold import grade_input, load_gold

    bank, _ = load_bank(bank_folders())
    golds = [g for g in load_gold() if g.category in ("excellent", "good", "partial", "paraphrase")]
    out = [grade_input(bank, g.question_id, g.answer) for g in golds[:n]]
    if len(out) < n:
        raise ValueError(f"only {len(out)} gold answers available")
    return out


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def run(n: int = 200, rounds: int = 8, source: str = "bank") -> dict[str, Any]:
    """All figures are measured interleaved (raw encode, batched grading, raw encode, ...)
    and reported as medians, so that other processes on the same cores weigh on the limit
    and on the grader alike."""
    import torch

    from app.grading.batching import MicroBatcher
    from app.grading.embedding import Encoder
    from app.grading.embedding_grader import EmbeddingGrader
    from app.grading.injection import split_sentences

    t0 = time.perf_counter()
    encoder = Encoder()
    grader = EmbeddingGrader(encoder)
    load_s = time.perf_counter() - t0
    pool = bank_items(32) if source == "bank" else distinct_items(32)
    answers = [it.answer for it in pool]
    sentences = list(dict.fromkeys(s for a in answers for s in split_sentences(a)))[:32]
    model = encoder._model  # the raw SentenceTransformer, for the limit figures

    def raw(texts: list[str], batch_size: int = 32) -> Any:
        def call() -> Any:
            with encoder._precision():  # the same precision the grader runs the model in
                return model.encode(texts, batch_size=batch_size, show_progress_bar=False)

        return call

    def load() -> float:
        return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")

    load_before = load()
    grader.grade_batch(pool)  # warm: bank texts cached, code paths hot
    raw(sentences)()

    # Throughput: 32 concurrent requests through the batcher, between raw-encode rounds.
    sent_rates, ans_rates, small_rates, graded_rates, calls = [], [], [], [], []

    async def concurrent_rounds() -> None:
        batcher = MicroBatcher(grader, window_ms=2.0, max_batch=64)
        await asyncio.gather(*(batcher.grade(it) for it in pool))  # start the worker
        for _ in range(rounds):
            sent_rates.append(len(sentences) / _timed(raw(sentences)))
            ans_rates.append(len(answers) / _timed(raw(answers)))
            small_rates.append(len(answers) / _timed(raw(answers, encoder.batch_size)))
            b0 = batcher.batches
            start = time.perf_counter()
            await asyncio.gather(*(batcher.grade(it) for it in pool))
            graded_rates.append(len(pool) / (time.perf_counter() - start))
            calls.append(batcher.batches - b0)
        await batcher.close()

    asyncio.run(concurrent_rounds())

    # Latency: single gradings, each next to a raw single-answer encode of the same text.
    lat, raw_lat = [], []
    for i in range(n):
        it = pool[i % len(pool)]
        lat.append(_timed(lambda it=it: grader.grade(it)) * 1000)
        raw_lat.append(_timed(raw([it.answer])) * 1000)

    words = [len(a.split()) for a in answers]
    return {
        "precision": "bfloat16 autocast" if encoder.bf16 else "float32",
        "machine": {
            "nproc": os.cpu_count(),
            "cpu": _cpu_model(),
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
        },
        "load_average_1m": {"before": round(load_before, 2), "after": round(load(), 2)},
        "model": encoder.name,
        "model_load_s": round(load_s, 2),
        "answers": {"count": len(answers), "mean_words": round(statistics.mean(words), 1)},
        "raw_encode": {
            "rounds": rounds,
            "sentences_per_s": round(statistics.median(sent_rates), 1),
            "answers_per_s": round(statistics.median(ans_rates), 1),
            "batch": 32,
            "answers_per_s_in_passes_of": encoder.batch_size,
            "answers_per_s_small_passes": round(statistics.median(small_rates), 1),
            "single_answer_ms_p50": round(_pct(raw_lat, 0.5), 1),
            "single_answer_ms_p95": round(_pct(raw_lat, 0.95), 1),
        },
        "single_latency_ms": {
            "n": n,
            "p50": round(_pct(lat, 0.5), 1),
            "p95": round(_pct(lat, 0.95), 1),
            "target_p95": 40.0,
        },
        "batched_32_concurrent": {
            "gradings_per_s": round(statistics.median(graded_rates), 1),
            "best_round_per_s": round(max(graded_rates), 1),
            "grade_batch_calls_per_32": round(statistics.mean(calls), 2),
            "target": 150.0,
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.bench_embedding")
    parser.add_argument("--n", type=int, default=200, help="single gradings to time")
    parser.add_argument("--rounds", type=int, default=8, help="rounds of 32 concurrent requests")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--items",
        choices=("bank", "builtin"),
        default="bank",
        help="bank: gold answers against bank rubrics (variants, misconceptions); builtin: the answers above",
    )
    args = parser.parse_args(list(argv) if argv is not None else None)
    res = run(args.n, args.rounds, args.items)
    if args.json:
        print(json.dumps(res, indent=1))
        return 0
    m, r = res["machine"], res["raw_encode"]
    s, b = res["single_latency_ms"], res["batched_32_concurrent"]
    la = res["load_average_1m"]
    print(
        f"machine: {m['nproc']} CPU cores ({m['cpu']}), torch threads {m['torch_threads']}; "
        f"load average {la['before']} -> {la['after']} (other processes share these cores)"
    )
    print(
        f"model: {res['model']} ({res['precision']}, load {res['model_load_s']} s); {res['answers']['count']} "
        f"distinct answers, {res['answers']['mean_words']} words on average"
    )
    print(
        f"raw model.encode, batch of 32 (median of {r['rounds']} rounds): "
        f"{r['sentences_per_s']:.1f} sentences/s, {r['answers_per_s']:.1f} answers/s"
    )
    print(
        f"raw model.encode, 32 answers in passes of {r['answers_per_s_in_passes_of']} "
        f"(as the grader runs it): {r['answers_per_s_small_passes']:.1f} answers/s  <- the limit"
    )
    print(
        f"raw model.encode, one answer: p50 {r['single_answer_ms_p50']:.1f} ms, p95 {r['single_answer_ms_p95']:.1f} ms"
    )
    print(
        f"single grading (warm), n={s['n']}: p50 {s['p50']:.1f} ms, p95 {s['p95']:.1f} ms "
        f"(target p95 <= {s['target_p95']:.0f} ms)"
    )
    print(
        f"32 concurrent via MicroBatcher: {b['gradings_per_s']:.1f} gradings/s median "
        f"(best round {b['best_round_per_s']:.1f}), {b['grade_batch_calls_per_32']} "
        f"grade_batch call(s) per 32 requests (target >= {b['target']:.0f}/s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
