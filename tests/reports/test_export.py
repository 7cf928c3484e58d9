"""The report exports number turns as the page does and read cleanly."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from app.reports.export import report_markdown, report_pdf, turn_headings
from app.reports.schemas import PointNote, Report, TranscriptEntry

TRANSCRIPT = [
    TranscriptEntry(
        turn_id=f"t{i}",
        question_id=f"q{i}",
        question=q,
        topic=topic,
        is_follow_up=fu,
        status=status,
        answer=answer,
        grading_status="graded" if answer else "skipped",
    )
    for i, (fu, topic, q, answer, status) in enumerate(
        [
            (False, "deployment", "Q1?", "a", "answered"),
            (True, "deployment", "F1?", None, "skipped"),
            (False, "monitoring", "Q2?", "b", "answered"),
        ]
    )
]


def report_of(transcript: list[TranscriptEntry], summary: str, strengths: list[PointNote] | None = None) -> Report:
    return Report(
        session_id="s",
        track="mlops",
        mode="practice",
        questions_answered=len(transcript),
        questions_skipped=0,
        questions_dont_know=0,
        questions_scored=0,
        questions_planned=len(transcript),
        answered_summary=summary,
        transcript=transcript,
        strengths=strengths or [],
    )


def test_turns_are_numbered_by_main_question() -> None:
    assert turn_headings(TRANSCRIPT) == [
        "Question 1 (deployment)",
        "Follow-up to question 1 (deployment)",
        "Question 2 (monitoring)",
    ]


def test_markdown_has_no_full_stop_before_a_colon() -> None:
    point = {"text": "Sends a small share of traffic first.", "verdict": "covered", "evidence": "ten percent"}
    graded = TRANSCRIPT[0].model_copy(update={"grading": {"points": [point]}, "score": 3.0})
    strength = PointNote(point=point["text"], evidence="ten percent", turn_id="t", question_id="q")
    md = report_markdown(report_of([graded], "1 of 1", [strength]))
    assert ".:" not in md and "Sends a small share of traffic first: \u201cten percent\u201d" in md
    assert "### Question 1 (deployment)" in md and "Questions answered: 1 of 1" in md


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs pdftotext (poppler-utils) to read the PDF")
def test_pdf_numbers_turns_like_the_page(tmp_path: Path) -> None:
    path = tmp_path / "r.pdf"
    path.write_bytes(report_pdf(report_of(TRANSCRIPT, "2 of 2")))
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    assert "Follow-up to question 1" in text and "Question 2 (monitoring)" in text and "3. " not in text
