"""The wheel carries everything the service reads, so a normal (non-editable) install serves.

Builds the wheel from a copy of the sources (the working tree gets no ``build/``) with the
installed setuptools, offline, and checks it against the checkout: every package, every prompt,
bank file, template, static file, grading artifact, migration and eval dataset is inside, at the
path ``importlib.resources`` looks for it, and the eval-only libraries are no runtime dependency.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SOURCES = ("pyproject.toml", "README.md", "app", "prompts", "question_bank", "evals")
DATA = {
    # folder in the checkout -> where it lives in the wheel, and the files that must ship
    "prompts": ("app/prompts", ("**/*.j2", "**/*.yaml")),
    "question_bank": ("app/question_bank", ("**/*.yaml",)),
    "app/web/templates": ("app/web/templates", ("**/*.html",)),
    "app/web/static": ("app/web/static", ("*",)),
    "app/grading/artifacts": ("app/grading/artifacts", ("*.json", "*.npz")),
    "app/migrations": ("app/migrations", ("env.py", "script.py.mako", "versions/*.py")),
    "evals": ("evals", ("thresholds.yaml", "datasets/*")),
}
EVAL_ONLY = ("scikit-learn", "scipy", "matplotlib", "markdown-it-py")


def _build_wheel(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, src / name)
    out = tmp_path / "wheel"
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q"]
    done = subprocess.run([*cmd, str(src), "-w", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = out.glob("mockinterview-*.whl")
    return wheel


def _on_disk(folder: Path, patterns: tuple[str, ...]) -> set[str]:
    return {
        p.relative_to(folder).as_posix()
        for pattern in patterns
        for p in folder.glob(pattern)
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_wheel_ships_packages_and_data(tmp_path: Path) -> None:
    with zipfile.ZipFile(_build_wheel(tmp_path)) as whl:
        names = set(whl.namelist())
        (metadata,) = (n for n in names if n.endswith(".dist-info/METADATA"))
        requires = [line for line in whl.read(metadata).decode().splitlines() if line.startswith("Requires-Dist:")]

    # Every package of the checkout (pyproject lists them by hand), mapped ones included.
    packages = {"app/prompts/__init__.py", "app/question_bank/__init__.py"}
    for top in ("app", "evals"):
        packages |= {p.relative_to(ROOT).as_posix() for p in (ROOT / top).rglob("__init__.py")}
    assert packages - names == set(), "packages missing from the wheel (add them to [tool.setuptools] packages)"

    for folder, (inside, patterns) in DATA.items():
        expected = _on_disk(ROOT / folder, patterns)
        assert expected, f"nothing found in {folder}: the test looks in the wrong place"
        missing = {f"{inside}/{name}" for name in expected} - names
        assert missing == set(), f"{folder} files missing from the wheel"

    # The service's dependencies exclude the eval-only libraries, which the eval extra has.
    for dist in EVAL_ONLY:
        lines = [r for r in requires if r.split(":", 1)[1].strip().lower().startswith(dist)]
        assert lines, f"{dist} is no dependency at all"
        assert all('extra == "eval"' in r for r in lines), f"{dist} is a runtime dependency: {lines}"
