"""What a running process holds: settings, database, bank, grader and the interview engine.

One :class:`AppContext` is built per process (the API server or a CLI command). It holds no
session state, so any number of processes can serve the same database.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.bank.loader import Bank, bank_folders, load_bank
from app.config import Settings
from app.db.base import make_engine, make_sessionmaker
from app.db.migrate import upgrade
from app.grading.embedding_grader import EmbeddingGrader
from app.grading.service import Grader
from app.interview.runtime import AnswerRuntime
from app.interview.service import InterviewService
from app.limits import GradeGate, SlidingWindow

if TYPE_CHECKING:
    from app.grading.judge_transcription import Transcriber

log = logging.getLogger(__name__)


SIGNIN_WINDOW_S = 15 * 60


@dataclass
class AppContext:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    bank: Bank
    grader: Grader | None = None
    shadow: Grader | None = None
    grader_error: str | None = None
    loaded: threading.Event = field(default_factory=threading.Event)
    runtime: AnswerRuntime = field(init=False)
    """This process's id, its answers in flight and its background work."""

    grade_gate: GradeGate = field(init=False)
    signin_failures: SlidingWindow = field(init=False)
    """Failed reviewer sign-ins per client (the console's brute-force brake)."""
    """Admission of the stateless grading endpoint (rate and concurrency limits)."""

    _transcriber: Transcriber | None = field(default=None, init=False, repr=False)
    _transcriber_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def transcriber(self) -> Transcriber | None:
        """Speech to text for recorded answers, when a transcription model is configured (built
        on first use, once: route dependencies run in worker threads)."""
        if self._transcriber is None and self.settings.transcription_model:
            from app.grading.audit import DatabaseAudit
            from app.grading.judge_transcription import Transcriber

            with self._transcriber_lock:
                if self._transcriber is None:
                    self._transcriber = Transcriber(self.settings, audit=DatabaseAudit(self.session_factory))
        return self._transcriber

    def __post_init__(self) -> None:
        self.runtime = AnswerRuntime(self.session_factory)
        self.grade_gate = GradeGate(self.settings.grade_rate_per_minute, self.settings.grade_concurrency)
        self.signin_failures = SlidingWindow(self.settings.reviewer_signin_attempts, SIGNIN_WINDOW_S)

    @property
    def interviews(self) -> InterviewService:
        return InterviewService(self.settings, self.bank, self.grader, self.shadow, self.runtime)

    def load_grader(self, preload: bool = True) -> None:
        """Load the embedding model (seconds), embed the bank's texts (from the disk cache
        after the first start) and wire the judge; sets ``loaded`` when done."""
        try:
            grader = build_grader(self.settings, self.session_factory)
            if preload:
                started = time.perf_counter()
                # On the grader's own thread, which every later grading uses too.
                inputs = self.interviews.bank_inputs()
                if grader.batcher is not None:
                    held = grader.batcher.executor.submit(grader.embedding.preload, inputs).result()
                else:
                    held = grader.embedding.preload(inputs)
                log.info("bank embeddings ready: %d texts in %.1f s", held, time.perf_counter() - started)
                # The bank's embeddings are many long-lived objects: move them out of the
                # collector's way, or its first full pass stalls a candidate's answer.
                gc.collect()
                gc.freeze()
            self.grader = grader
            shadow = shadow_settings(self.settings)
            if shadow is not None:
                self.shadow = build_grader(shadow, self.session_factory, embedding=self.grader.embedding)
        except Exception as exc:  # reported by /readyz and by every grading as ungraded
            log.exception("could not load the grader")
            self.grader_error = f"{type(exc).__name__}: {exc}"
        finally:
            self.loaded.set()


def shadow_settings(settings: Settings) -> Settings | None:
    """Settings of the shadow grader, if one is configured (same endpoint, other model/prompt)."""
    if not (settings.shadow_judge_model or settings.shadow_prompt_version):
        return None
    return settings.model_copy(
        update={
            "judge_model": settings.shadow_judge_model or settings.judge_model,
            "judge_prompt_version": settings.shadow_prompt_version or settings.judge_prompt_version,
        }
    )


def build_grader(
    settings: Settings, session_factory: sessionmaker[Session] | None, embedding: EmbeddingGrader | None = None
) -> Grader:
    from app.grading.audit import DatabaseAudit
    from app.grading.batching import MicroBatcher
    from app.grading.embedding import Encoder

    if embedding is None:
        embedding = EmbeddingGrader(Encoder.from_settings(settings))
    batcher = MicroBatcher(
        embedding, window_ms=settings.embedding_batch_window_ms, max_batch=settings.embedding_max_batch
    )
    judge = None
    if settings.judge_enabled:
        from app.grading.judge import Judge

        audit = DatabaseAudit(session_factory) if session_factory is not None else None
        judge = Judge(settings, audit=audit)
    return Grader(settings, embedding, judge, batcher)


def build_context(settings: Settings, *, migrate: bool | None = None) -> AppContext:
    """Open the database (migrating the embedded SQLite default) and load the bank."""
    bank, _ = load_bank(bank_folders(settings.bank_dirs, settings.bundled_bank))
    engine = make_engine(
        settings.sqlalchemy_url, pool_size=settings.db_pool_size, busy_timeout_s=settings.db_busy_timeout_s
    )
    if migrate if migrate is not None else settings.is_sqlite:
        upgrade(settings.sqlalchemy_url)
    return AppContext(settings, engine, make_sessionmaker(engine), bank)


def get_context(request: Request) -> AppContext:
    """The whole process context, for the pages (``app.web``) that use most of it."""
    ctx: AppContext = request.app.state.ctx
    return ctx


ContextDep = Annotated[AppContext, Depends(get_context)]
