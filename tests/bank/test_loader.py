"""Schema validation of bank files, the CLI around it, and the bundled bank itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.bank.loader import BankError, bank_folders, load_bank, stats
from app.cli import app as cli_app
from tests.conftest import FIXTURES

GOOD = FIXTURES / "bank" / "good"
BROKEN = FIXTURES / "bank" / "broken"


def test_good_fixture_loads() -> None:
    bank, problems = load_bank([GOOD])
    assert problems == []
    assert len(bank.questions) == 18 and bank.topics("demo") == ["alpha", "beta", "gamma"]
    q = bank.questions["demo-alpha-01"]
    assert len(q.content_hash) == 16 and q.follow_up_for("r2") is not None


def test_broken_fixture_reports_file_and_field() -> None:
    _, problems = load_bank([BROKEN], strict=False)
    text = [str(p) for p in problems]
    assert any("alpha.yaml" in t and "questions[1].rubric[1].weight" in t for t in text), text
    assert any("alpha.yaml" in t and "unknown rubric ids: r9" in t for t in text), text
    assert any("alpha.yaml" in t and "questions[2].reference_answer" in t and "Field required" in t for t in text)
    assert any("beta.yaml" in t and "questions[1].id" in t and "duplicate id 'demo-beta-01'" in t for t in text), text
    assert any("beta.yaml" in t and "questions[2].topic" in t for t in text), text
    assert any("gamma.yaml" in t and "not valid YAML" in t for t in text), text
    with pytest.raises(BankError, match="problem"):
        load_bank([BROKEN])


def test_content_hash_changes_with_content() -> None:
    bank, _ = load_bank([GOOD])
    q = bank.questions["demo-alpha-01"]
    edited = q.model_copy(update={"question": q.question + " Explain."})
    assert edited.content_hash != q.content_hash
    assert q.model_copy().content_hash == q.content_hash


def test_bank_cli_validate_and_stats(tmp_path: Path) -> None:
    runner = CliRunner()
    bad = runner.invoke(cli_app, ["bank", "validate", "--no-similarity", str(BROKEN)])
    assert bad.exit_code == 2 and "weight" in bad.output
    good = runner.invoke(cli_app, ["bank", "validate", "--no-similarity", str(GOOD)])
    assert good.exit_code == 0, good.output
    result = runner.invoke(cli_app, ["bank", "stats", "--json"])
    assert result.exit_code == 0
    figures = json.loads(result.output)
    assert figures["by_track"]["mlops"] >= 80 and figures["total"] >= 110


def test_user_bank_folder_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    monkeypatch.setenv("MOCKINTERVIEW_BANK_DIRS", str(GOOD))
    result = runner.invoke(cli_app, ["bank", "stats", "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["by_track"]["demo"] == 18
    monkeypatch.setenv("MOCKINTERVIEW_BANK_DIRS", "/no/such/folder")
    result = runner.invoke(cli_app, ["bank", "stats"])
    assert result.exit_code == 2 and "bank folder(s) not found" in result.output


def test_bundled_bank_is_valid_and_large_enough() -> None:
    bank, problems = load_bank(bank_folders(), strict=False)
    assert problems == [], "\n".join(map(str, problems))
    figures = stats(bank)
    assert figures["total"] >= 110  # type: ignore[operator]
    assert figures["by_track"]["mlops"] >= 80  # type: ignore[index]
    assert set(bank.tracks()) == {"mlops", "ml-fundamentals"}
    for q in bank.questions.values():
        words = len(q.reference_answer.split())
        assert 60 <= words <= 200, f"{q.id}: reference answer has {words} words"


def test_topic_titles_come_from_the_bank_files(tmp_path: Path) -> None:
    bundled, _ = load_bank(bank_folders())
    assert {q.topic for q in bundled.questions.values()} <= set(bundled.titles)
    assert bundled.topic_title("monitoring-drift") == "Monitoring and drift"

    src = (GOOD / "demo" / "alpha.yaml").read_text(encoding="utf-8")
    folder = tmp_path / "bank" / "demo"
    folder.mkdir(parents=True)
    (folder / "alpha.yaml").write_text("title: The   alpha topic\n" + src, encoding="utf-8")
    (folder / "beta.yaml").write_text('title: ""\n' + src.replace("alpha", "beta"), encoding="utf-8")
    bank, problems = load_bank([tmp_path / "bank"], strict=False)
    assert bank.topic_title("alpha") == "The alpha topic"
    assert bank.topic_title("beta") == "beta"  # no usable title: the slug is shown
    assert [(p.file.endswith("beta.yaml"), p.field) for p in problems] == [(True, "title")]


def test_bundled_hints_lead_from_a_nudge_to_a_near_answer_without_giving_it_away() -> None:
    from app.bank.validation import hints_that_give_it_away

    bundled, _ = load_bank(bank_folders())
    assert all(len(q.hints) == 3 for q in bundled.questions.values())  # nudge, pointer, near-answer
    assert hints_that_give_it_away(bundled) == []

    q = bundled.questions["ml-fundamentals-metrics-01"]
    leaky = q.model_copy(update={"hints": [*q.hints[:2], f"Remember: {q.rubric[0].point}"]})
    problems = hints_that_give_it_away(
        type(bundled)(questions={q.id: leaky}, files={q.id: "ml-fundamentals/metrics.yaml"})
    )
    assert [p.field for p in problems] == [f"{q.id}.hints[2]"] and "own words" in problems[0].message
