"""The judge's prompts: versioned jinja2 folders, their hash, and the messages built from them.

A prompt folder holds ``system.j2``, ``user.j2`` and optionally ``meta.yaml``; the sha256 of all
its files is part of every cache key, so editing a prompt invalidates its cached replies. The
candidate's answer reaches the templates normalised and screened (:mod:`app.grading.injection`):
instructions to the grader replaced by a marker, fence-like tags neutralised, so it can only be
read as the data inside ``<candidate_answer>``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template

from app.grading.injection import Screening, screen
from app.grading.schemas import GradeInput, RubricPoint

_FENCE_TAG_RE = re.compile(
    r"<\s*(/?)\s*(candidate_answer|answer|question|reference_answer|rubric|missed_points|system|"
    r"instructions?)\b[^<>]*>",
    re.IGNORECASE,
)


def neutralise_tags(text: str) -> str:
    """Make fence-like tags in untrusted text inert: ``</candidate_answer>`` loses its brackets."""
    return _FENCE_TAG_RE.sub(lambda m: f"\u2039{m.group(1)}{m.group(2)}\u203a", text)


def prepare_answer(answer: str) -> tuple[str, Screening]:
    """The answer text the judge sees and its screening: normalised, each instruction to the
    grader replaced by a visible marker, fence-like tags neutralised."""
    screening = screen(answer)
    return neutralise_tags(screening.marked), screening


def sha_files(folder: Path) -> str:
    """sha256 over the names and contents of the files in ``folder`` (sorted by name)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        digest.update(path.name.encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


@dataclass
class Prompt:
    """One loaded prompt folder."""

    folder: Path
    system: Template
    user: Template
    sha: str
    meta: dict[str, Any] = field(default_factory=dict)

    def render(self, values: dict[str, object]) -> tuple[str, str]:
        """(system, user) text for ``values``."""
        return self.system.render(**values).strip(), self.user.render(**values).strip()


def load_prompt(folder: Path) -> Prompt:
    if not (folder / "system.j2").is_file() or not (folder / "user.j2").is_file():
        raise FileNotFoundError(f"prompt folder {folder} needs system.j2 and user.j2")
    env = Environment(
        loader=FileSystemLoader(str(folder)),
        autoescape=False,
        undefined=StrictUndefined,
        keep_trailing_newline=False,
    )
    meta: dict[str, Any] = {}
    if (folder / "meta.yaml").is_file():
        loaded = yaml.safe_load((folder / "meta.yaml").read_text(encoding="utf-8"))
        if isinstance(loaded, dict):
            meta = loaded
    return Prompt(
        folder=folder,
        system=env.get_template("system.j2"),
        user=env.get_template("user.j2"),
        sha=sha_files(folder),
        meta=meta,
    )


def judge_prompt(prompts_dir: Path, version: str) -> Prompt:
    """``prompts_dir/judge/<version>``."""
    return load_prompt(prompts_dir / "judge" / version)


def followup_prompt(prompts_dir: Path, version: str) -> Prompt:
    """``prompts_dir/followup/<version>``, or ``v1`` when that version has no follow-up prompt."""
    folder = prompts_dir / "followup" / version
    return load_prompt(folder if folder.is_dir() else prompts_dir / "followup" / "v1")


def messages(system: str, user: str, *, system_role: bool = True) -> list[dict[str, str]]:
    """Chat messages; without ``system_role`` the system text leads the user message (for chat
    templates with no system role, such as Gemma's)."""
    if system_role:
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]
    return [{"role": "user", "content": f"{system}\n\n{user}"}]


def _rubric_vars(rubric: list[RubricPoint]) -> list[dict[str, object]]:
    return [
        {
            "id": p.id,
            "text": p.text,
            "weight": f"{p.weight:g}",
            "essential": p.essential,
            "variants": p.variants,
            "misconceptions": p.misconceptions,
        }
        for p in rubric
    ]


def judge_values(inp: GradeInput, answer: str, screening: Screening) -> dict[str, object]:
    """The template values for judging ``inp``; ``answer`` is the prepared answer."""
    return {
        "question": inp.question,
        "reference_answer": inp.reference_answer,
        "rubric": _rubric_vars(inp.rubric),
        "answer": answer,
        "screening": screening.summary(),
    }


def followup_values(inp: GradeInput, missed: list[RubricPoint], answer: str) -> dict[str, object]:
    """The template values for a follow-up question on the ``missed`` points."""
    return {
        "question": inp.question,
        "reference_answer": inp.reference_answer,
        "missed": [{"id": p.id, "text": p.text, "essential": p.essential} for p in missed],
        "answer": answer,
    }
