"""The eval runner: figures, reports, the threshold gate, judge cache replay, compare, shadow."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import respx
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.bank.loader import Bank
from app.cli import app as cli_app
from app.config import REPO_ROOT, Settings
from app.grading.judge import Judge
from app.grading.service import Grader
from app.interview.schemas import SessionStart
from app.interview.service import InterviewService
from evals.cli import compare_markdown
from evals.gold import GoldItem, load_gold, load_pairs
from evals.report import write_report
from evals.runner import GraderConfig, check_thresholds, compare, run_eval
from evals.schemas import EvalSummary
from evals.shadow import shadow_agreement
from tests.grading.llm_mock import BASE_URL, CHAT, completion

THRESHOLDS = {
    "embedding": {"scopes": {"overall": {"min": {"pearson": 0.5}, "max": {"mae": 1.0}}}, "invariance": ["injection"]},
    "judge": {"scopes": {"overall": {"min": {"pearson": -1.0}}}, "invariance": False},
}


@pytest.fixture(scope="module")
def small() -> tuple[list[GoldItem], list[Any]]:
    gold = load_gold()
    qids = sorted({g.question_id for g in gold})[:3]
    items = [g for g in gold if g.question_id in qids]
    pairs = [p for p in load_pairs() if p.question_id in qids][:3]
    return items, pairs


def judge_reply(request: Any) -> Any:
    """A judge that scores by answer length, so the figures are not degenerate."""
    body = json.loads(request.content)
    text = body["messages"][-1]["content"]
    answer = text.split("<candidate_answer>")[-1]
    score = min(5.0, len(answer.split()) / 40)
    return completion(
        json.dumps(
            {
                "reasoning": "r",
                "points": [],
                "score": round(score, 1),
                "strengths": [],
                "gaps": [],
                "improvement": "i",
                "follow_up": "f",
                "injection_attempt": False,
            }
        )
    )


def test_embedding_eval_figures_report_and_gate(
    small: Any, grader: Grader, test_settings: Settings, bank: Bank, tmp_path: Path
) -> None:
    items, pairs = small
    run = run_eval(
        GraderConfig("embedding"), test_settings, grader.embedding, bank, items, pairs, {items[0].question_id}
    )
    f = run.figures
    assert f.n_items == len(items) and f.overall.n == len(items)
    assert set(f.by_split) == {"train", "test"} and f.by_split["test"].n > 0
    assert all(f.overall.metric(m) is not None for m in ("pearson", "spearman", "qwk", "mae", "band_accuracy"))
    assert set(f.invariance) == {"paraphrase", "padding", "injection"}
    assert sum(c.n for c in f.by_category.values()) == len(items)
    assert f.latency_ms.p95 >= f.latency_ms.p50 > 0

    assert check_thresholds(f, THRESHOLDS) == [] or all("invariance" not in x for x in check_thresholds(f, THRESHOLDS))
    strict = {"embedding": {"scopes": {"overall": {"min": {"pearson": 0.999}}, "test": {"max": {"mae": 0.0}}}}}
    failures = check_thresholds(f, strict)
    assert any("pearson" in x and "below the minimum" in x for x in failures)
    assert any("test mae" in x for x in failures)

    out = write_report(run, tmp_path / "report", failures)
    for name in ("report.md", "report.html", "figures.json", "scatter.png", "bands.png", "categories.png"):
        assert (out / name).stat().st_size > 0
    assert "FAILED" in (out / "report.md").read_text() and "<table>" in (out / "report.html").read_text()
    # figures.json is the summary's model_dump: it reads back into the same summary.
    written = json.loads((out / "figures.json").read_text())
    assert written.pop("threshold_failures") == failures
    assert EvalSummary.model_validate(written) == f
    assert set(written["by_split"]["test"]) == {"n", "pearson", "spearman", "qwk", "mae", "rmse", "band_accuracy"}


def test_cli_gate_exits_non_zero_below_threshold(tmp_path: Path) -> None:
    gold = load_gold()
    tiny = tmp_path / "tiny.jsonl"
    # Human scores inverted: agreement collapses and the real thresholds must fail.
    tiny.write_text(
        "".join(json.dumps(g.model_dump() | {"human_score": 5.0 - g.human_score}) + "\n" for g in gold[:12])
    )
    result = CliRunner().invoke(cli_app, ["eval", "gold", "--dataset", str(tiny), "--report", str(tmp_path / "r")])
    assert result.exit_code == 1, result.output
    assert "threshold failed" in result.output
    ok = CliRunner().invoke(
        cli_app, ["eval", "gold", "--dataset", str(tiny), "--report", str(tmp_path / "r"), "--no-gate"]
    )
    assert ok.exit_code == 0
    bad = CliRunner().invoke(cli_app, ["eval", "gold", "--grader", "nonsense"])
    assert bad.exit_code == 2 and "unknown grader configuration" in bad.output
    assert "choose embedding, judge, hybrid" in bad.output and "one of: \n" not in bad.output


def test_a_bad_grader_name_fails_before_the_model_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    import evals.cli

    def no_model(settings: object) -> None:
        raise AssertionError("the embedding model was loaded for a configuration that does not exist")

    monkeypatch.setattr(evals.cli, "_embedding", no_model)
    bad = CliRunner().invoke(cli_app, ["eval", "gold", "--compare", "embedding", "nonsense"])
    assert bad.exit_code == 2 and "nonsense" in bad.output


@respx.mock
def test_judge_cache_replay_and_changed_prompt(
    small: Any, grader: Grader, test_settings: Settings, bank: Bank, tmp_path: Path
) -> None:
    """A live judge run records its replies in the judge's cache (``settings.cache_dir``), which
    ``--replay`` then reads without any network."""
    items, _ = small
    items = items[:6]
    route = respx.post(BASE_URL + CHAT).mock(side_effect=judge_reply)
    cached = test_settings.model_copy(update={"embedding_cache_dir": tmp_path / "cache", "judge_model": "judge-test"})
    settings = cached.model_copy(update={"openai_base_url": BASE_URL})
    live = run_eval(
        GraderConfig("judge", "judge", cache="readwrite"), settings, grader.embedding, bank, items, [], set()
    )
    calls = route.call_count
    assert calls > 0 and live.figures.judge.cache_misses == 0
    assert (tmp_path / "cache").is_dir()

    # Nothing recorded in another cache folder: every call misses, and the gate says so.
    empty = cached.model_copy(update={"embedding_cache_dir": tmp_path / "empty"})
    nothing = run_eval(GraderConfig.load("judge", replay=True), empty, grader.embedding, bank, items, [], set())
    assert route.call_count == calls and nothing.figures.judge.cache_hits == 0
    assert nothing.figures.judge.cache_misses > 0

    replay = run_eval(GraderConfig.load("judge", replay=True), cached, grader.embedding, bank, items, [], set())
    assert route.call_count == calls  # no network at all in replay
    assert [r.score for r in replay.results] == [r.score for r in live.results]
    assert replay.figures.judge.cache_hits > 0 and check_thresholds(replay.figures, THRESHOLDS) == []

    # A changed prompt misses the cache and says so, instead of passing silently.
    prompts = tmp_path / "prompts"
    shutil.copytree(REPO_ROOT / "prompts", prompts)
    user = prompts / "judge" / cached.judge_prompt_version / "user.j2"
    user.write_text(user.read_text() + "\nBe strict.\n")
    changed = cached.model_copy(update={"prompts_dir": prompts})
    missed = run_eval(GraderConfig("judge", "judge", cache="replay"), changed, grader.embedding, bank, items, [], set())
    assert route.call_count == calls
    assert missed.figures.judge.cache_misses > 0
    assert any("missed the replay cache" in f for f in check_thresholds(missed.figures, THRESHOLDS))

    report = compare(
        live, run_eval(GraderConfig("embedding"), test_settings, grader.embedding, bank, items, [], set()), n_boot=50
    )
    assert report.a == "judge" and report.b == "embedding" and report.n_common == len(items)
    assert set(report.metrics) == {"pearson", "spearman", "qwk", "mae", "rmse", "band_accuracy"}
    for m in report.metrics.values():
        lo, hi = m.ci95
        assert lo <= m.diff <= hi or m.diff != m.diff
    assert "| pearson |" in compare_markdown(report)


@pytest.mark.anyio
@respx.mock
async def test_shadow_grades_every_live_answer_without_showing_it(
    db: Session, bank: Bank, grader: Grader, test_settings: Settings, tmp_path: Path
) -> None:
    respx.post(BASE_URL + CHAT).mock(side_effect=judge_reply)
    shadow_settings = test_settings.model_copy(
        update={"judge_model": "shadow-model", "openai_base_url": BASE_URL, "judge_cache": False, "data_dir": tmp_path}
    )
    shadow = Grader(shadow_settings, grader.embedding, Judge(shadow_settings, retry_base_s=0.001))
    service = InterviewService(test_settings, bank, grader, shadow)
    started = service.start(db, SessionStart(track="mlops", num_questions=3, seed=5))
    session, turn = started.session, started.turn
    for answer in (bank.questions[turn.question_id].reference_answer, "Canary releases limit the blast radius."):
        current = service.current_turn(session)
        assert current is not None
        recorded = service.record_answer(db, session, current.id, answer)
        served = await service.grade_turn(db, session, recorded.turn)
        assert served is not None and served.status.value == "embedding_only"  # the served grader
        assert recorded.turn.shadow_grading is not None
        assert recorded.turn.shadow_grading["config"]["judge_model"] == "shadow-model"
        service.advance(db, session, recorded.turn, served)
    db.flush()
    figures = shadow_agreement(db)
    assert figures["n"] >= 2 and "pearson" in figures and figures["configs"]
