"""What the judge keeps and what it reports: its reply cache and its audit trail, in one place.

Cache keys are sha256 digests of everything that determines a reply (purpose, model, prompt
version and the prompt files' content, the question's bank hash or its reference and rubric, the
answer, for follow-ups the missed points). The model's *raw* reply is stored, not the parsed
verdict, so parser fixes apply to cached entries. The cache is a :class:`KVCache` table in
``cache_dir / judge_cache.sqlite``; ``replay`` opens it read-only and never calls the network
(CI eval replays use it to prove that no prompt or input changed since the recorded run).

Every attempt yields one :class:`LLMCallRecord` for the audit callback: each failed attempt,
the attempt whose reply was used or rejected, each cache hit and each replay miss.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from app.grading.judge_call import CallFailed, Reply
from app.grading.kv_cache import KVCache
from app.grading.schemas import LLMCallRecord

log = logging.getLogger(__name__)

AuditFn = Callable[[LLMCallRecord], Awaitable[None] | None]
CacheMode = Literal["off", "readwrite", "replay"]
CACHE_FILE = "judge_cache.sqlite"
CACHE_TABLE = "replies_v2"
"""v2: ``key -> JSON`` in a :class:`KVCache` table (the v1 ``judge_cache`` table is ignored)."""
REPLAY_MISS = "cache miss: prompt or input changed"
_MEMORY_ITEMS = 2048


def cache_key(**parts: object) -> str:
    """sha256 of the canonical JSON of ``parts``."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CachedReply:
    content: str
    """The model's message content, verbatim."""
    response: str | None
    """The raw HTTP response body it came in."""
    prompt_tokens: int | None
    completion_tokens: int | None
    purpose: str = ""
    model: str = ""
    prompt_version: str = ""
    created_at: float = 0.0

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_bytes(cls, blob: bytes) -> CachedReply | None:
        data = json.loads(blob)
        if not isinstance(data, dict) or not isinstance(data.get("content"), str):
            return None
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class CallContext:
    """What one judging or follow-up call is about, for its cache entry and audit records."""

    purpose: str
    key: str
    question_id: str | None = None
    turn_id: str | None = None


class JudgeStore:
    """The judge's reply cache (``mode``: off, readwrite or replay) and its audit callback."""

    def __init__(
        self,
        *,
        audit: AuditFn | None,
        model: str,
        prompt_version: str,
        base_url: str,
        cache_path: Path,
        mode: CacheMode,
    ) -> None:
        self.model = model
        self.prompt_version = prompt_version
        self.base_url = base_url
        self.mode: CacheMode = mode
        self._audit = audit
        self._cache: KVCache[CachedReply] | None = None
        if mode != "off":
            self._cache = KVCache(
                cache_path,
                CACHE_TABLE,
                encode=CachedReply.to_bytes,
                decode=CachedReply.from_bytes,
                max_items=_MEMORY_ITEMS,
                readonly=mode == "replay",
            )

    @property
    def caching(self) -> bool:
        return self._cache is not None

    @property
    def replay(self) -> bool:
        return self.mode == "replay"

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()

    # ------------------------------------------------------------------ cache

    def lookup(self, key: str) -> tuple[CachedReply | None, float]:
        """The cached reply for ``key`` (or ``None``) and the lookup's time in ms."""
        if self._cache is None:
            return None, 0.0
        started = time.perf_counter()
        hit = self._cache.get(key)
        return hit, round((time.perf_counter() - started) * 1000, 2)

    # ------------------------------------------------------------------ audit

    def record(self, ctx: CallContext, **fields: Any) -> LLMCallRecord:
        return LLMCallRecord(
            purpose=ctx.purpose,
            prompt_version=self.prompt_version,
            model=self.model,
            base_url=self.base_url,
            cache_key=ctx.key,
            question_id=ctx.question_id,
            turn_id=ctx.turn_id,
            **fields,
        )

    async def emit(self, record: LLMCallRecord) -> None:
        log.debug(
            "llm call %s %s attempt=%s outcome=%s %.0fms",
            record.purpose,
            record.model,
            record.attempt,
            record.outcome,
            record.latency_ms,
        )
        if self._audit is None:
            return
        try:
            result = self._audit(record)
            if inspect.isawaitable(result):
                await result
        except Exception:  # the audit must not break grading, but must be loud
            log.exception("LLM audit callback failed for %s", record.model_dump_json())

    async def failed(self, ctx: CallContext, failure: CallFailed) -> None:
        """Audit one failed attempt (the call layer's ``on_failure`` hook)."""
        await self.emit(
            self.record(
                ctx,
                request=failure.request,
                response=failure.body,
                latency_ms=round(failure.latency_ms, 1),
                outcome=failure.outcome,
                error=failure.error,
                attempt=failure.attempt,
            )
        )

    async def cached(
        self,
        ctx: CallContext,
        request: dict[str, object],
        hit: CachedReply | None,
        latency_ms: float,
        error: str | None,
    ) -> None:
        """Audit a cache hit (``hit``) or, in replay, a miss (``hit=None``)."""
        await self.emit(
            self.record(
                ctx,
                request=request,
                response=hit.content if hit is not None else None,
                latency_ms=latency_ms,
                outcome="cached" if hit is not None else "cache_miss",
                error=error,
                attempt=0,
            )
        )

    async def settle(self, ctx: CallContext, reply: Reply, outcome: str, error: str | None, *, store: bool) -> None:
        """Audit the attempt that produced ``reply`` and, when ``store``, cache its content."""
        await self.emit(
            self.record(
                ctx,
                request=reply.request,
                response=reply.body,
                prompt_tokens=reply.prompt_tokens,
                completion_tokens=reply.completion_tokens,
                latency_ms=round(reply.latency_ms, 1),
                outcome=outcome,
                error=error,
                attempt=reply.attempt,
            )
        )
        if store and self._cache is not None and not self.replay and reply.content is not None:
            self._cache.put(
                ctx.key,
                CachedReply(
                    content=reply.content,
                    response=reply.body,
                    prompt_tokens=reply.prompt_tokens,
                    completion_tokens=reply.completion_tokens,
                    purpose=ctx.purpose,
                    model=self.model,
                    prompt_version=self.prompt_version,
                    created_at=time.time(),
                ),
            )
