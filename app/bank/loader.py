"""Load question-bank folders and report every problem with its file and field."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import ValidationError

from app.bank.schemas import TITLE_MAX, BankFile, BankQuestion
from app.config import BUNDLED_BANK_DIR

BUNDLED_BANK = BUNDLED_BANK_DIR
"""The bank shipped with the package (``app.question_bank``, the top-level ``question_bank/``)."""


@dataclass(frozen=True)
class Problem:
    file: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.message}" if self.field else f"{self.file}: {self.message}"


class BankError(Exception):
    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems[:20])
        more = f"\n  ... and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
        super().__init__(f"question bank has {len(self.problems)} problem(s):\n{lines}{more}")


@dataclass
class Bank:
    """All questions, indexed by id, with where each came from."""

    questions: dict[str, BankQuestion] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)
    """Topic slug -> the title its file declares."""

    def topic_title(self, topic: str) -> str:
        """The topic as people read it: its declared title, else its slug."""
        return self.titles.get(topic, topic)

    def get(self, question_id: str) -> BankQuestion | None:
        return self.questions.get(question_id)

    def tracks(self) -> list[str]:
        return sorted({q.track for q in self.questions.values()})

    def topics(self, track: str) -> list[str]:
        return sorted({q.topic for q in self.questions.values() if q.track == track})

    def for_track(self, track: str) -> list[BankQuestion]:
        return [q for q in self.questions.values() if q.track == track]

    @property
    def version(self) -> str:
        digest = hashlib.sha256()
        for qid in sorted(self.questions):
            digest.update(f"{qid}:{self.questions[qid].content_hash}\n".encode())
        return digest.hexdigest()[:16]


def _loc(loc: Iterable[object]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _yaml_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.y*ml") if p.suffix in {".yaml", ".yml"})


def load_file(path: Path, root: Path) -> tuple[list[tuple[int, BankQuestion]], str | None, list[Problem]]:
    """Parse and validate one YAML file; the folder is the track, the file stem the topic.

    Each question is validated on its own, so one bad question does not hide the others.
    Returns the questions (with their index in the file), the topic's title and the problems.
    """
    name = str(path.relative_to(root.parent)) if path.is_relative_to(root.parent) else str(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        return [], None, [Problem(name, "", f"not valid YAML: {exc}")]
    if not isinstance(raw, dict) or not isinstance(raw.get("questions"), list) or not raw["questions"]:
        return [], None, [Problem(name, "questions", "the file must hold a non-empty list under `questions:`")]
    extra = sorted(set(raw) - set(BankFile.model_fields))
    problems = [Problem(name, key, "unknown top-level field") for key in extra]
    title = raw.get("title")
    if title is not None and (not isinstance(title, str) or not 0 < len(title.strip()) <= TITLE_MAX):
        problems.append(Problem(name, "title", f"must be a non-empty line of at most {TITLE_MAX} characters"))
        title = None
    questions: list[tuple[int, BankQuestion]] = []
    track, topic = path.parent.name, path.stem
    for i, item in enumerate(raw["questions"]):
        try:
            q = BankQuestion.model_validate(item)
        except ValidationError as exc:
            problems += [
                Problem(name, _loc(["questions", i, *e["loc"]]), str(e["msg"]).removeprefix("Value error, "))
                for e in exc.errors()
            ]
            continue
        if q.track != track:
            problems.append(Problem(name, f"questions[{i}].track", f"is {q.track!r} but the folder is {track!r}"))
        if q.topic != topic:
            problems.append(Problem(name, f"questions[{i}].topic", f"is {q.topic!r} but the file is {topic!r}"))
        questions.append((i, q))
    return questions, " ".join(title.split()) if title else None, problems


def load_bank(folders: Sequence[Path], *, strict: bool = True) -> tuple[Bank, list[Problem]]:
    """Load every YAML file under ``folders`` (each folder holds ``<track>/<topic>.yaml``).

    With ``strict`` a bank with problems raises :class:`BankError`; otherwise the problems are
    returned beside whatever loaded cleanly (``bank validate`` wants all of them at once).
    """
    bank = Bank()
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for folder in folders:
        if not folder.is_dir():
            problems.append(Problem(str(folder), "", "bank folder not found"))
            continue
        files = _yaml_files(folder)
        if not files:
            problems.append(Problem(str(folder), "", "no .yaml files found"))
        for path in files:
            questions, title, file_problems = load_file(path, folder)
            problems.extend(file_problems)
            if title:
                bank.titles[path.stem] = title
            for i, q in questions:
                where = str(path.relative_to(folder.parent))
                if q.id in seen:
                    problems.append(
                        Problem(where, f"questions[{i}].id", f"duplicate id {q.id!r} (also in {seen[q.id]})")
                    )
                    continue
                seen[q.id] = where
                bank.questions[q.id] = q
                bank.files[q.id] = where
    if strict and problems:
        raise BankError(problems)
    return bank, problems


def bank_folders(extra: Sequence[Path] = (), bundled: bool = True) -> list[Path]:
    return ([BUNDLED_BANK] if bundled else []) + list(extra)


def stats(bank: Bank) -> dict[str, object]:
    qs = list(bank.questions.values())
    by_topic: dict[str, Counter[str]] = {}
    for q in qs:
        by_topic.setdefault(q.track, Counter())[q.topic] += 1
    return {
        "total": len(qs),
        "version": bank.version,
        "by_track": dict(Counter(q.track for q in qs)),
        "by_topic": {t: dict(sorted(c.items())) for t, c in sorted(by_topic.items())},
        "by_difficulty": dict(Counter(q.difficulty.value for q in qs)),
        "by_type": dict(Counter(q.type.value for q in qs)),
    }
