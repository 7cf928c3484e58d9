"""The feedback report (as built by :func:`app.reports.service.build_report`) as Markdown, JSON
and PDF files.

Candidate text (answers, quoted evidence) is untrusted: in Markdown it goes inside fenced
blocks or has its markup characters escaped, so a Markdown viewer shows it as text.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from app.grading.schemas import Verdict
from app.reports.schemas import PointNote, Report, TranscriptEntry
from app.rubric import PASS_MARK
from app.statuses import TurnGradingStatus

REPORT_TITLE = "Mock interview report"


def turn_headings(transcript: Sequence[TranscriptEntry], titles: Mapping[str, str] | None = None) -> list[str]:
    """ "Question 2 (topic)" or "Follow-up to question 1 (topic)": numbered as the page numbers
    them, by main question, not by turn."""
    titles = titles or {}
    out, number = [], 0
    for t in transcript:
        if not t.is_follow_up:
            number += 1
            out.append(f"Question {number} ({titles.get(t.topic, t.topic)})")
        else:
            out.append(f"Follow-up to question {max(number, 1)} ({titles.get(t.topic, t.topic)})")
    return out


def _bare(text: object, followed_by: str) -> str:
    """``text`` without its closing full stop when more follows ("Point: evidence", not "Point.:")."""
    value = "" if text is None else str(text)
    return value.rstrip().rstrip(".") if followed_by else value


def _score(value: object) -> str:
    return f"{float(value):.1f} / 5" if isinstance(value, int | float) else "not scored"


def band(score: float | None) -> str:
    """A plain word for a 0-5 score (3.0 passes)."""
    if score is None:
        return "not scored"
    if score >= 4.0:
        return "strong"
    if score >= PASS_MARK:
        return "pass"
    if score >= 1.5:
        return "partial"
    return "weak"


def verdict_label(verdict: object) -> str:
    """A verdict as the candidate reads it: ``unclear`` is "not confirmed", never "missing"."""
    return "not confirmed" if verdict == "unclear" else str(verdict or "")


STATUS_LABELS: dict[str, str] = {
    TurnGradingStatus.graded: "graded",
    TurnGradingStatus.embedding_only: "embedding-only grading",
    TurnGradingStatus.ungraded: "not graded yet",
    TurnGradingStatus.skipped: "skipped",
    TurnGradingStatus.pending: "not answered",
}


def status_label(grading_status: str | None) -> str:
    """A turn's grading status, said plainly."""
    return STATUS_LABELS.get(grading_status or "", grading_status or "")


def rubric_summary(report: Report) -> tuple[list[PointNote], list[PointNote]]:
    """Strengths and gaps by rubric point, one entry per (question, point).

    The report lists the points of every turn, so a point covered in the main answer but
    missed in a follow-up shows up twice. Here a point covered in any turn of its question is
    a strength, and a gap only when no turn of that question covered it.
    """
    strengths: dict[tuple[str, str], PointNote] = {}
    for item in report.strengths:
        strengths.setdefault((item.question_id, item.point), item)
    gaps: dict[tuple[str, str], PointNote] = {}
    for item in report.gaps:
        key = (item.question_id, item.point)
        if key in strengths:
            continue
        if key not in gaps or item.verdict == Verdict.wrong.value:
            gaps[key] = item
    return list(strengths.values()), list(gaps.values())


# ---------------------------------------------------------------------------------- JSON
def report_json(report: Report) -> str:
    return json.dumps(report.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"


# ------------------------------------------------------------------------------ Markdown
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]|<>&~])")
_MD_LINE_START = re.compile(r"^(\d*)([#+\-=.)])")


def md_inline(text: object) -> str:
    """Untrusted text on one Markdown line: markup characters escaped, line breaks folded."""
    flat = " ".join(str(text or "").split())
    return _MD_LINE_START.sub(r"\1\\\2", _MD_SPECIAL.sub(r"\\\1", flat))


def md_block(text: str) -> str:
    """Untrusted multi-line text as a fenced block (longer fence than any run inside it)."""
    longest = max((len(m) for m in re.findall(r"`+|~+", text)), default=0)
    fence = "~" * max(3, longest + 1)
    return f"{fence}text\n{text.rstrip()}\n{fence}"


def report_markdown(report: Report, *, created_at: datetime | None = None) -> str:
    lines: list[str] = [f"# {REPORT_TITLE}", ""]
    lines.append(f"- Track: {md_inline(report.track)}")
    lines.append(f"- Mode: {md_inline(report.mode)}")
    if created_at is not None:
        lines.append(f"- Date: {created_at:%Y-%m-%d %H:%M} UTC")
    overall = report.overall_score
    verdict = "" if overall is None else (" (pass)" if report.passed else " (below the pass mark)")
    lines.append(f"- Overall score: **{_score(overall)}**{verdict}")
    lines.append(f"- Questions answered: {report.answered_summary}")
    if report.ungraded_turns:
        lines.append(f"- Answers not graded yet: {len(report.ungraded_turns)}")
    lines.append("")

    topic_scores: Mapping[str, float] = report.topic_scores
    lines += ["## Score per topic", ""]
    if topic_scores:
        lines += ["| Topic | Score | Band |", "|---|---|---|"]
        lines += [f"| {md_inline(report.topic(t))} | {s:.1f} | {band(s)} |" for t, s in topic_scores.items()]
    else:
        lines.append("No scored answers yet.")
    lines.append("")

    strengths, gaps = rubric_summary(report)
    for title, items in (("Strengths", strengths), ("Gaps", gaps)):
        lines += [f"## {title}", ""]
        if not items:
            lines.append("None recorded.")
        for item in items:
            extra = f" ({md_inline(verdict_label(item.verdict))})" if item.verdict else ""
            evidence = f": \u201c{md_inline(item.evidence)}\u201d" if item.evidence else ""
            lines.append(f"- {md_inline(_bare(item.point, extra + evidence))}{extra}{evidence}")
        lines.append("")

    lines += ["## Practise next", ""]
    recommended = report.recommended
    if not recommended:
        lines.append("No recommendation: every question of these topics was asked.")
    for r in recommended:
        lines.append(f"- {md_inline(r.question)} ({md_inline(report.topic(r.topic))}, {md_inline(r.difficulty)})")
    lines.append("")

    lines += ["## Transcript", ""]
    transcript = report.transcript
    for heading_text, t in zip(turn_headings(transcript, report.topic_titles), transcript, strict=True):
        lines += [f"### {md_inline(heading_text)}", "", md_inline(t.question), ""]
        if t.answer:
            lines += ["Answer:", "", md_block(t.answer), ""]
        else:
            lines += [f"_{md_inline(t.status)}_", ""]
        grading = t.grading or {}
        lines.append(f"Score: {_score(t.score)} ({status_label(t.grading_status)})")
        for p in grading.get("points") or []:
            evidence = f": \u201c{md_inline(p['evidence'])}\u201d" if p.get("evidence") else ""
            text = md_inline(_bare(p.get("text"), evidence))
            lines.append(f"- {md_inline(verdict_label(p.get('verdict')))}: {text}{evidence}")
        if grading.get("improvement"):
            lines.append(f"- Improve: {md_inline(grading['improvement'])}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


# ----------------------------------------------------------------------------------- PDF
_FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),  # Debian, Ubuntu: fonts-dejavu-core
    Path("/usr/share/fonts/dejavu-sans-fonts"),  # Fedora, RHEL: dejavu-sans-fonts
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/share/fonts/TTF"),  # Arch: ttf-dejavu
    Path("/usr/local/share/fonts/dejavu"),  # FreeBSD: dejavu
    Path("/Library/Fonts"),
)


def _unicode_fonts() -> tuple[Path, Path] | None:
    """DejaVu Sans (regular, bold) if the system has it; the PDF then shows any script.

    The font comes from the operating system's own package (the Docker image installs Debian's
    fonts-dejavu-core): it is kept up to date and licensed with the system, and no Python
    package is needed just to carry a font (fpdf2 ships none; matplotlib, which has one, is not
    a serving dependency). Without it the report falls back to the PDF core font Helvetica,
    with the text folded to Latin-1 (accents dropped, other scripts replaced by "?"): readable,
    but lossy, so the fallback is logged.
    """
    for d in _FONT_DIRS:
        regular, bold = d / "DejaVuSans.ttf", d / "DejaVuSans-Bold.ttf"
        if regular.is_file() and bold.is_file():
            return regular, bold
    import logging

    logging.getLogger(__name__).warning(
        "DejaVu Sans not found in %s: PDF reports use Helvetica with Latin-1 text only "
        "(install fonts-dejavu-core or your system's DejaVu package)",
        ", ".join(str(d) for d in _FONT_DIRS),
    )
    return None


def _latin1(text: str) -> str:
    """For the built-in PDF fonts (Latin-1 only): fold accents, replace what is left."""
    swaps = {"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'", "\u2013": "-", "\u2014": "-", "\u2026": "..."}
    text = "".join(swaps.get(c, c) for c in text)
    folded = unicodedata.normalize("NFKD", text)
    out = "".join(c for c in folded if not unicodedata.combining(c))
    return out.encode("latin-1", "replace").decode("latin-1")


def report_pdf(report: Report, *, created_at: datetime | None = None) -> bytes:
    """The report as a PDF (title, scores with a bar chart per topic, strengths, gaps,
    recommendations and the full transcript)."""
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_title(REPORT_TITLE)
    pdf.set_creator("mockinterview")
    fonts = _unicode_fonts()
    if fonts is not None:
        pdf.add_font("Body", "", str(fonts[0]))
        pdf.add_font("Body", "B", str(fonts[1]))
        family = "Body"

        def clean(text: object) -> str:
            return str(text or "")
    else:
        family = "Helvetica"

        def clean(text: object) -> str:
            return _latin1(str(text or ""))

    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin

    def para(text: object, size: float = 10, style: str = "", gap: float = 1.5) -> None:
        pdf.set_font(family, style, size)
        pdf.multi_cell(width, size * 0.5, clean(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(gap)

    def heading(text: str, size: float = 14) -> None:
        pdf.ln(2)
        para(text, size=size, style="B", gap=1)

    para(REPORT_TITLE, size=20, style="B", gap=3)
    meta = f"Track: {report.track}   Mode: {report.mode}"
    if created_at is not None:
        meta += f"   Date: {created_at:%Y-%m-%d %H:%M} UTC"
    para(meta)
    overall = report.overall_score
    verdict = "" if overall is None else (" - pass" if report.passed else " - below the pass mark")
    para(f"Overall score: {_score(overall)}{verdict}", size=14, style="B")
    para(f"Questions answered: {report.answered_summary}")

    topic_scores: Mapping[str, float] = report.topic_scores
    heading("Score per topic")
    if topic_scores:
        label_w, bar_w, row_h = 55.0, width - 75.0, 7.0
        pdf.set_font(family, "", 9)
        for topic, score in topic_scores.items():
            if pdf.get_y() + row_h > pdf.h - pdf.b_margin:
                pdf.add_page()
            y = pdf.get_y()
            pdf.set_xy(pdf.l_margin, y)
            pdf.cell(label_w, row_h, clean(report.topic(topic))[:34])
            x0 = pdf.l_margin + label_w
            pdf.set_fill_color(230, 230, 230)
            pdf.rect(x0, y + 1.2, bar_w, row_h - 2.4, style="F")
            fill = (46, 125, 50) if score >= PASS_MARK else (198, 40, 40)
            pdf.set_fill_color(*fill)
            pdf.rect(x0, y + 1.2, bar_w * max(0.0, min(5.0, score)) / 5.0, row_h - 2.4, style="F")
            pdf.set_draw_color(60, 60, 60)
            mark = x0 + bar_w * PASS_MARK / 5.0
            pdf.line(mark, y + 0.5, mark, y + row_h - 0.5)
            pdf.set_xy(x0 + bar_w + 3, y)
            pdf.cell(17, row_h, f"{score:.1f}")
            pdf.set_y(y + row_h)
        pdf.ln(1)
        para(f"The line marks the pass mark ({PASS_MARK:.1f}).", size=8)
    else:
        para("No scored answers yet.")

    strengths, gaps = rubric_summary(report)
    for title, items in (("Strengths", strengths), ("Gaps", gaps)):
        heading(title)
        if not items:
            para("None recorded.")
        for item in items:
            extra = f" ({verdict_label(item.verdict)})" if item.verdict else ""
            evidence = f': "{item.evidence}"' if item.evidence else ""
            para(f"- {_bare(item.point, extra + evidence)}{extra}{evidence}", gap=0.5)

    heading("Practise next")
    recommended = report.recommended
    if not recommended:
        para("No recommendation: every question of these topics was asked.")
    for r in recommended:
        para(f"- {r.question} ({report.topic(r.topic)}, {r.difficulty})", gap=0.5)

    heading("Transcript")
    transcript = report.transcript
    for heading_text, t in zip(turn_headings(transcript, report.topic_titles), transcript, strict=True):
        para(heading_text, size=11, style="B", gap=0.5)
        para(t.question)
        para(f"Answer: {t.answer}" if t.answer else f"({t.status})")
        para(f"Score: {_score(t.score)} ({status_label(t.grading_status)})", style="B", gap=0.5)
        grading = t.grading or {}
        for p in grading.get("points") or []:
            evidence = f': "{p["evidence"]}"' if p.get("evidence") else ""
            para(f"- {verdict_label(p.get('verdict'))}: {_bare(p.get('text'), evidence)}{evidence}", size=9, gap=0.3)
        if grading.get("improvement"):
            para(f"Improve: {grading['improvement']}", size=9)
        pdf.ln(2)
    return bytes(pdf.output())
