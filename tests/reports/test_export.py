"""The report exports number turns as the page does and read cleanly."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from app.reports.export import report_markdown, report_pdf, turn_headings

TRANSCRIPT = [
    {"is_follow_up": False, "topic": "deployment", "question": "Q1?", "answer": "a", "status": "answered"},
    {"is_follow_up": True, "topic": "deployment", "question": "F1?", "answer": None, "status": "skipped"},
    {"is_follow_up": False, "topic": "monitoring", "question": "Q2?", "answer": "b", "status": "answered"},
]


def test_turns_are_numbered_by_main_question() -> None:
    assert turn_headings(TRANSCRIPT) == [
        "Question 1 (deployment)",
        "Follow-up to question 1 (deployment)",
        "Question 2 (monitoring)",
    ]


def test_markdown_has_no_full_stop_before_a_colon() -> None:
    point = {"text": "Sends a small share of traffic first.", "verdict": "covered", "evidence": "ten percent"}
    transcript = [TRANSCRIPT[0] | {"grading": {"points": [point]}, "score": 3.0, "grading_status": "graded"}]
    report = {
        "transcript": transcript,
        "answered_summary": "1 of 1",
        "strengths": [{"point": point["text"], "evidence": "ten percent", "turn_id": "t", "question_id": "q"}],
        "gaps": [],
    }
    md = report_markdown(report)
    assert ".:" not in md and "Sends a small share of traffic first: \u201cten percent\u201d" in md
    assert "### Question 1 (deployment)" in md and "Questions answered: 1 of 1" in md


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs pdftotext (poppler-utils) to read the PDF")
def test_pdf_numbers_turns_like_the_page(tmp_path: Path) -> None:
    path = tmp_path / "r.pdf"
    path.write_bytes(report_pdf({"transcript": TRANSCRIPT, "answered_summary": "2 of 2", "strengths": [], "gaps": []}))
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    assert "Follow-up to question 1" in text and "Question 2 (monitoring)" in text and "3. " not in text
