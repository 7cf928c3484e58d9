"""All configuration, from environment variables prefixed ``MOCKINTERVIEW_`` (or a ``.env`` file).

Everything has a default that works on one machine with nothing configured: a SQLite file in
``./data``, the bundled all-MiniLM-L6-v2 embedding model, and no LLM judge. Setting
``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` (as the openai client reads them) and
``MOCKINTERVIEW_JUDGE_MODEL`` switches the rubric judge on.
"""

from __future__ import annotations

import atexit
from contextlib import ExitStack
from functools import lru_cache
from importlib.resources import as_file, files
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The root of a source checkout, for development tools only (the evals' reports, the datasets
in ``../shared``). Nothing the service reads is found through it: in an installed package it is
just ``site-packages``. Shipped data is found with :func:`resource_dir`."""

_RESOURCES = ExitStack()
atexit.register(_RESOURCES.close)


def resource_dir(package: str, *parts: str) -> Path:
    """A folder shipped with ``package`` (``resource_dir("app.web", "static")``), as a real path.

    Read through ``importlib.resources``, so it is found wherever the package is installed: a
    wheel in ``site-packages``, or an editable install of a checkout (where setuptools maps
    ``app.prompts`` onto ``./prompts``). Alembic, jinja2's file loader and the bank loader want
    real folders: for a package installed as plain files (what pip does) ``as_file`` gives the
    folder itself; for one imported from a zip (Python 3.12+), a copy kept until exit.
    """
    return _RESOURCES.enter_context(as_file(files(package).joinpath(*parts)))


BUNDLED_BANK_DIR = resource_dir("app.question_bank")
"""The question bank shipped in the package (``question_bank/`` of the checkout)."""
PROMPTS_DIR = resource_dir("app.prompts")
"""The judge and follow-up prompt templates shipped in the package (``prompts/`` of the checkout)."""


MIN_TOKEN_CHARS = 16
"""Shortest reviewer or grading token accepted at start-up."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MOCKINTERVIEW_",
        env_file=".env",
        extra="ignore",
        validate_default=True,
        populate_by_name=True,
    )

    data_dir: Path = Path("data")
    database_url: str = ""
    """SQLAlchemy URL. Empty means ``sqlite:///<data_dir>/mockinterview.db``."""

    bank_dirs: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    """Extra question-bank folders (comma-separated), validated like the bundled bank."""
    bundled_bank: bool = True
    prompts_dir: Path = PROMPTS_DIR
    """Folder of the versioned judge and follow-up prompts; the shipped ones unless set."""

    embedding_model: str = ""
    """A sentence-transformers model path or name; empty means the bundled all-MiniLM-L6-v2."""
    embedding_cache_dir: Path | None = None
    embedding_bf16: bool | None = None
    """Run the embedding model in bfloat16 (faster on CPUs with native bf16; see
    ``Encoder.bf16`` for the measured figures). Empty means: on where the CPU supports it."""
    embedding_backend: Literal["auto", "onnx", "torch"] = "auto"
    """What runs the embedding model: ``onnx`` (ONNX Runtime, float32, exported once from the
    weights into the cache folder), ``torch`` (PyTorch), or ``auto``: PyTorch in bfloat16 on a
    CPU with native bf16, ONNX Runtime elsewhere (one answer in about half the time of PyTorch
    float32; see ``app.grading.embedding``), PyTorch if ONNX Runtime does not load."""
    embedding_batch_window_ms: float = Field(default=2.0, ge=0, le=100)
    embedding_max_batch: int = Field(default=16, ge=1, le=256)
    """Answers graded in one model call at most. Small batches keep waits even under load
    (p95 close to p50): larger ones grade no faster per answer here (measured by
    bench/bench_answer_path.py)."""
    embedding_threads: int | None = Field(default=None, ge=1, le=256)
    """Threads of the embedding model; empty means PyTorch's default (one per core). With
    several server processes on one machine, give each cores / processes."""

    judge_model: str = ""
    """Model name for the rubric LLM judge; empty turns the judge off."""
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("MOCKINTERVIEW_OPENAI_API_KEY", "OPENAI_API_KEY")
    )
    openai_base_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MOCKINTERVIEW_OPENAI_BASE_URL", "OPENAI_BASE_URL"),
    )
    judge_prompt_version: str = "v3"
    judge_timeout_s: float = Field(default=30.0, gt=0)
    """Timeout of one judge call (each retry gets its own)."""
    judge_deadline_s: float = Field(default=20.0, gt=0, le=600)
    """How long a candidate waits for the judge, retries included. After it, the answer is
    scored by the embedding grader and the interview goes on; the judge's verdict, when it
    comes, updates the turn."""
    judge_max_retries: int = Field(default=3, ge=0, le=10)
    judge_concurrency: int = Field(default=32, ge=1, le=256)
    """Concurrent judge calls (200 gradings at 300 ms each finish in about 2 s at 32)."""
    judge_cache: bool = True
    judge_weight: float = Field(default=0.7, ge=0.0, le=1.0)
    """Weight of the judge score in the blended score (the rest is the embedding score)."""
    disagreement_margin: float = Field(default=1.5, gt=0, le=5)
    """Judge and embedding scores further apart than this flag the turn for review."""

    shadow_judge_model: str = ""
    shadow_prompt_version: str = ""

    reviewer_token: SecretStr | None = None
    """Bearer token of the reviewer API and the console's sign-in (at least 16 characters)."""
    reviewer_session_hours: float = Field(default=12.0, gt=0, le=24 * 14)
    """How long a console sign-in lasts: the cookie is signed with its issue time and refused after."""
    reviewer_signin_attempts: int = Field(default=10, ge=1, le=10_000)
    """Failed sign-ins allowed per client in any 15 minutes (then 429 until the window moves)."""
    max_answer_chars: int = Field(default=8000, ge=100, le=100_000)
    max_request_bytes: int = Field(default=262_144, ge=16_384, le=16_777_216)
    """Largest request body accepted (413 above it, before anything is parsed)."""
    metrics: bool = True
    """Serve Prometheus metrics at ``/metrics`` (turn off where the port is public)."""
    grade_api_token: SecretStr | None = None
    """When set, ``POST /api/grade`` needs it as a Bearer token."""
    grade_rate_per_minute: int = Field(default=60, ge=1, le=100_000)
    """``POST /api/grade`` requests per client (address) per minute."""
    grade_concurrency: int = Field(default=4, ge=1, le=256)
    """``POST /api/grade`` gradings at once per process (429 beyond: candidates come first)."""
    max_follow_ups: int = Field(default=2, ge=0, le=5)
    follow_up_threshold: float = Field(default=0.45, ge=0, le=1)
    """A rubric point whose coverage falls below this counts as missed (follow-up candidate)."""
    transcription_model: str | None = None
    """A speech-to-text model on the OpenAI-compatible endpoint (``whisper-1``, a local
    whisper server's name): the interview page then offers "Record audio", whose transcript lands
    in the answer box. Unset: only the browser's own dictation (where it exists) is offered."""
    max_audio_bytes: int = Field(default=4_194_304, ge=65_536, le=26_214_400)
    """The largest recording accepted for transcription (about four minutes of browser audio)."""
    judge_follow_ups: bool = True
    """With a judge configured, it writes each follow-up from the candidate's own answer (checked:
    one question, on the subject, the point not given away); the bank's follow-up is the fallback."""
    judge_follow_up_timeout_s: float = Field(default=8.0, gt=0, le=120)
    """How long the candidate may wait for a written follow-up (within ``judge_deadline_s``, which
    covers the judging and the follow-up together) before the bank's is asked."""
    default_num_questions: int = Field(default=5, ge=1, le=50)
    recent_sessions_window: int = Field(default=5, ge=0, le=100)
    cookie_secure: bool = False

    db_pool_size: int = Field(default=8, ge=1, le=200)
    """Database connections kept per process; database work runs in a thread pool of the same
    size, so it never blocks the event loop (``/healthz`` answers while the database is busy)."""
    db_busy_timeout_s: float = Field(default=10.0, gt=0, le=300)
    """SQLite: how long a transaction waits for the write lock before it fails."""
    sweep_interval_s: float = Field(default=5.0, ge=0, le=3600)
    """How often each serving process looks for answers to grade (``ungraded``, or scored
    without the judge it should have had) and sessions to move on; 0 turns the sweeper off."""
    answer_lease_s: float = Field(default=15.0, gt=0, le=3600)
    """How long, beyond the judge deadline, an answer being graded by a live process belongs
    to it; after that another process (or request) may grade it and ask the next question."""

    @field_validator("bank_dirs", mode="before")
    @classmethod
    def _split_dirs(cls, value: object) -> object:
        if isinstance(value, str):
            return [Path(p.strip()) for p in value.split(",") if p.strip()]
        return value

    @field_validator("bank_dirs")
    @classmethod
    def _dirs_exist(cls, value: list[Path]) -> list[Path]:
        missing = [str(p) for p in value if not p.is_dir()]
        if missing:
            raise ValueError(f"bank folder(s) not found: {', '.join(missing)}")
        return value

    @field_validator("reviewer_token", "grade_api_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_TOKEN_CHARS:
            raise ValueError(
                f"must be at least {MIN_TOKEN_CHARS} characters (a short token can be guessed); make one with "
                "python -c 'import secrets; print(secrets.token_urlsafe(24))'"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if value and "://" not in value:
            raise ValueError("must be a SQLAlchemy URL such as postgresql+psycopg://host/db")
        if value.startswith("postgresql://") or value.startswith("postgres://"):
            # psycopg 3 is the driver we ship; plain URLs would ask for psycopg2.
            value = "postgresql+psycopg://" + value.split("://", 1)[1]
        return value

    @model_validator(mode="after")
    def _judge_needs_endpoint(self) -> Settings:
        if self.judge_model and not (self.openai_api_key or self.openai_base_url):
            raise ValueError(
                "MOCKINTERVIEW_JUDGE_MODEL is set but neither OPENAI_API_KEY nor "
                "OPENAI_BASE_URL is: the judge has no endpoint to call"
            )
        return self

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'mockinterview.db').as_posix()}"

    @property
    def is_sqlite(self) -> bool:
        return self.sqlalchemy_url.startswith("sqlite")

    @property
    def judge_enabled(self) -> bool:
        return bool(self.judge_model)

    @property
    def cache_dir(self) -> Path:
        return self.embedding_cache_dir or (self.data_dir / "cache")


@lru_cache
def get_settings() -> Settings:
    return Settings()
