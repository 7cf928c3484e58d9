"""The rubric LLM judge: one OpenAI-compatible chat call per answer, audited and cached.

Only ``app/grading/judge*`` modules talk to the LLM. What this module guarantees:

* the candidate's answer reaches the model fenced as untrusted data, with sentences that try to
  normalised and screened first (:mod:`app.grading.injection`): instructions to the grader are
  replaced by a marker, so injected text can never raise the judge's score, fence-like tags are
  neutralised, and the prompt tells the judge what the screening found;
* the reply is requested as strict JSON schema output, falling back to ``json_object`` (first
  with the schema attached, which llama.cpp-style servers enforce as a grammar, then bare) and
  then to plain text when the server rejects that (remembered per :class:`Judge`), and parsed
  tolerantly (:mod:`app.grading.judge_parse`); a reply with nothing usable is a ``parse_error``,
  never a score of 0;
* every attempt (success, parse error, HTTP error, timeout, cache hit) yields one
  :class:`LLMCallRecord` for the audit callback;
* retries with exponential backoff and jitter on 429, 408/409, 5xx, timeouts and connection
  errors, our own loop (the client is built with ``max_retries=0``), bounded concurrency;
* a disk cache of raw replies (``settings.cache_dir / judge_cache.sqlite``) that can be replayed
  read-only without any network (``cache_mode="replay"``).
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Literal, cast

import httpx
import openai
import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template

from app.config import Settings
from app.grading.injection import Screening, screen
from app.grading.judge_cache import CACHE_FILE, CachedReply, CacheMode, JudgeCache, cache_key
from app.grading.judge_parse import (
    FlaggedVerdict,
    JudgeParseError,
    clean_follow_up,
    judge_json_schema,
    parse_judge_reply,
)
from app.grading.schemas import GradeInput, JudgeOutcome, JudgePoint, LLMCallRecord, Verdict
from app.security import redact_url

log = logging.getLogger(__name__)

AuditFn = Callable[[LLMCallRecord], Awaitable[None] | None]
FormatMode = Literal["json_schema", "json_object_schema", "json_object", "none"]
_NEXT_FORMAT: dict[FormatMode, FormatMode | None] = {
    "json_schema": "json_object_schema",
    "json_object_schema": "json_object",
    "json_object": "none",
    "none": None,
}
REPLAY_MISS = "cache miss: prompt or input changed"
RETRYABLE_STATUS = {408, 409, 429}
_FORMAT_WORDS = ("response_format", "json_schema", "json_object", "structured output")

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


def _sha_files(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        digest.update(path.name.encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


@dataclass
class _Prompt:
    folder: Path
    system: Template
    user: Template
    sha: str
    meta: dict[str, Any]


def _load_prompt(folder: Path) -> _Prompt:
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
    return _Prompt(
        folder=folder,
        system=env.get_template("system.j2"),
        user=env.get_template("user.j2"),
        sha=_sha_files(folder),
        meta=meta,
    )


@dataclass
class _Reply:
    """A successful HTTP exchange (its content may still be unusable)."""

    content: str | None
    body: str
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: float
    attempt: int
    request: dict[str, object]
    note: str | None = None


@dataclass
class _Failed:
    outcome: str
    error: str
    body: str | None
    retryable: bool
    retry_after: float | None = None
    format_rejected: bool = False


def _retry_after(headers: httpx.Headers | Any) -> float | None:
    """Seconds from ``retry-after-ms`` / ``retry-after`` (seconds or an HTTP date)."""
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return max(0.0, float(ms) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            when = parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
    except Exception:
        return None


def _format_rejection(status: int, error_text: str, response_format: object) -> bool:
    """Whether an error response says the server does not support our ``response_format``.

    400/422 naming response_format or a JSON mode; also a 5xx that names ``response_format``
    and the type we sent (llama-cpp-python answers an unknown type with a 500 validation error).
    """
    if not isinstance(response_format, dict):
        return False
    if status in (400, 422):
        return any(w in error_text for w in _FORMAT_WORDS)
    kind = str(response_format.get("type", ""))
    return status >= 500 and "response_format" in error_text and bool(kind) and kind in error_text


def _error_body(err: openai.APIStatusError) -> str | None:
    try:
        return err.response.text
    except Exception:
        return str(err.body) if err.body is not None else None


class Judge:
    """Grades one answer against its rubric with an OpenAI-compatible chat model.

    ``cache_mode``: ``"readwrite"`` (default when ``settings.judge_cache``), ``"off"``, or
    ``"replay"`` (read-only, never calls the network; a miss is ``unavailable``).
    ``retry_base_s`` / ``retry_max_s``: exponential backoff base and cap (Retry-After is honoured
    up to the cap). ``max_tokens``: optional completion cap sent with each call.
    ``system_role=False`` folds the system prompt into the user message, for models whose chat
    template has no system role (Gemma).
    """

    def __init__(
        self,
        settings: Settings,
        audit: AuditFn | None = None,
        client: openai.AsyncOpenAI | None = None,
        *,
        cache_mode: CacheMode | None = None,
        retry_base_s: float = 0.2,
        retry_max_s: float = 8.0,
        max_tokens: int | None = None,
        system_role: bool = True,
    ) -> None:
        if not settings.judge_model:
            raise ValueError("settings.judge_model is empty: the LLM judge is off")
        self.settings = settings
        self.model = settings.judge_model
        self.prompt_version = settings.judge_prompt_version
        self._audit = audit
        self._timeout_s = settings.judge_timeout_s
        self._max_retries = settings.judge_max_retries
        self._retry_base_s = retry_base_s
        self._retry_max_s = retry_max_s
        self._max_tokens = max_tokens
        self._system_role = system_role
        self._sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep

        self._prompt = _load_prompt(settings.prompts_dir / "judge" / self.prompt_version)
        self._schema = judge_json_schema(str(self._prompt.meta.get("schema_name", "judge_verdict")))
        self._followup_prompt: _Prompt | None = None

        if client is None:
            key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
            # An explicit httpx client: the project's declared HTTP stack (and what respx mocks),
            # with a pool big enough for the configured concurrency.
            http_client = httpx.AsyncClient(
                timeout=self._timeout_s,
                limits=httpx.Limits(
                    max_connections=max(2 * settings.judge_concurrency, 16),
                    max_keepalive_connections=max(settings.judge_concurrency, 8),
                ),
            )
            self._client = openai.AsyncOpenAI(
                api_key=key or "not-needed",
                base_url=settings.openai_base_url,
                max_retries=0,
                timeout=self._timeout_s,
                # openai>=2 types this as httpx2 but accepts an httpx client (openai 1.x: native).
                http_client=cast(Any, http_client),
            )
            self._owns_client = True
        else:
            self._client = client.with_options(max_retries=0)
            self._owns_client = False
        self.base_url = redact_url(str(self._client.base_url).rstrip("/")) or ""
        """Where the judge calls, as logs and the audit show it (without credentials)."""

        self._semaphore = asyncio.Semaphore(settings.judge_concurrency)
        self._last_ok: float | None = None
        self._last_failure: float | None = None
        self.format_mode: FormatMode = "json_schema"
        """The response_format that works with this server (downgraded on rejection)."""

        mode: CacheMode = cache_mode or ("readwrite" if settings.judge_cache else "off")
        self.cache_mode = mode
        self._cache = JudgeCache(settings.cache_dir / CACHE_FILE, readonly=mode == "replay") if mode != "off" else None

    # ------------------------------------------------------------------ lifecycle

    async def aclose(self) -> None:
        if self._cache is not None:
            self._cache.close()
        if self._owns_client:
            await self._client.close()

    async def __aenter__(self) -> Judge:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ prompts and keys

    @staticmethod
    def _rubric_vars(inp: GradeInput) -> list[dict[str, object]]:
        return [
            {
                "id": p.id,
                "text": p.text,
                "weight": f"{p.weight:g}",
                "essential": p.essential,
                "variants": p.variants,
                "misconceptions": p.misconceptions,
            }
            for p in inp.rubric
        ]

    def render_messages(self, inp: GradeInput, answer: str | None = None) -> list[dict[str, str]]:
        """The chat messages for judging ``inp`` (``answer``: the already-prepared answer)."""
        prepared, screening = prepare_answer(inp.answer)
        values = {
            "question": inp.question,
            "reference_answer": inp.reference_answer,
            "rubric": self._rubric_vars(inp),
            "answer": prepared if answer is None else answer,
            "screening": screening.summary(),
        }
        return self._messages(self._prompt.system.render(**values).strip(), self._prompt.user.render(**values).strip())

    def _messages(self, system: str, user: str) -> list[dict[str, str]]:
        if self._system_role:
            return [{"role": "system", "content": system}, {"role": "user", "content": user}]
        return [{"role": "user", "content": f"{system}\n\n{user}"}]

    def _content_id(self, inp: GradeInput) -> str:
        if inp.bank_hash:
            return f"bank:{inp.bank_hash}"
        return "content:" + cache_key(
            question=inp.question,
            reference=inp.reference_answer,
            rubric=[p.model_dump() for p in inp.rubric],
        )

    def cache_key(self, inp: GradeInput) -> str:
        """The judge cache key: model, prompt version and files, question content, answer."""
        return cache_key(
            purpose="judge",
            model=self.model,
            prompt_version=self.prompt_version,
            prompt_sha=self._prompt.sha,
            system_role=self._system_role,
            question=self._content_id(inp),
            answer=inp.answer,
        )

    def _followup(self) -> _Prompt:
        if self._followup_prompt is None:
            base = self.settings.prompts_dir / "followup"
            folder = base / self.prompt_version
            if not folder.is_dir():
                folder = base / "v1"
            self._followup_prompt = _load_prompt(folder)
        return self._followup_prompt

    # ------------------------------------------------------------------ audit

    async def _emit(self, record: LLMCallRecord) -> None:
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

    def _record(self, purpose: str, key: str | None, question_id: str | None, **fields: Any) -> LLMCallRecord:
        return LLMCallRecord(
            purpose=purpose,
            prompt_version=self.prompt_version,
            model=self.model,
            base_url=self.base_url,
            cache_key=key,
            question_id=question_id,
            **fields,
        )

    # ------------------------------------------------------------------ the call loop

    def _params(self, messages: list[dict[str, str]], mode: FormatMode | None) -> dict[str, Any]:
        params: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": 0}
        if self._max_tokens:
            params["max_tokens"] = self._max_tokens
        if mode == "json_schema":
            params["response_format"] = {"type": "json_schema", "json_schema": self._schema}
        elif mode == "json_object_schema":  # llama.cpp / llama-cpp-python extension
            params["response_format"] = {"type": "json_object", "schema": self._schema["schema"]}
        elif mode == "json_object":
            params["response_format"] = {"type": "json_object"}
        return params

    def _backoff(self, retry: int, retry_after: float | None) -> float:
        delay = self._retry_base_s * (2 ** (retry - 1)) * (0.5 + random.random())
        delay = min(delay, self._retry_max_s)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self._retry_max_s))
        return delay

    async def _attempt(self, params: dict[str, Any]) -> tuple[_Reply | _Failed, float]:
        """One HTTP exchange under the concurrency bound: (reply or failure, latency ms)."""
        async with self._semaphore:
            started = time.perf_counter()
            try:
                async with asyncio.timeout(self._timeout_s):
                    raw = await self._client.chat.completions.with_raw_response.create(
                        **params, timeout=self._timeout_s
                    )
                body = raw.text
            except openai.APIStatusError as err:
                latency = (time.perf_counter() - started) * 1000
                status = err.status_code
                text = _error_body(err)
                lowered = (text or str(err)).lower()
                if _format_rejection(status, lowered, params.get("response_format")):
                    return _Failed(
                        "format_rejected",
                        f"HTTP {status}: {err}",
                        text,
                        False,
                        format_rejected=True,
                    ), latency
                outcome = "rate_limited" if status == 429 else "http_error"
                retryable = status in RETRYABLE_STATUS or status >= 500
                return _Failed(
                    outcome,
                    f"HTTP {status}: {err}",
                    text,
                    retryable,
                    retry_after=_retry_after(err.response.headers),
                ), latency
            except (openai.APITimeoutError, TimeoutError) as err:
                latency = (time.perf_counter() - started) * 1000
                return _Failed("timeout", f"timed out after {latency / 1000:.1f}s: {err!r}", None, True), latency
            except openai.APIConnectionError as err:
                latency = (time.perf_counter() - started) * 1000
                cause = err.__cause__ or err
                return _Failed("connection_error", f"connection error: {cause!r}", None, True), latency
            except openai.OpenAIError as err:
                latency = (time.perf_counter() - started) * 1000
                return _Failed("http_error", f"{type(err).__name__}: {err}", None, False), latency
            latency = (time.perf_counter() - started) * 1000

        try:
            completion = raw.parse()
            choices = completion.choices or []
            message = choices[0].message if choices else None
            content = message.content if message is not None else None
            refusal = getattr(message, "refusal", None) if message is not None else None
            usage = completion.usage
        except Exception as err:
            return _Failed("bad_response", f"unreadable completion: {err!r}", body, True), latency
        note = None
        if content is None:
            note = f"refusal: {refusal}" if refusal else "the reply has no message content"
        return _Reply(
            content=content,
            body=body,
            prompt_tokens=usage.prompt_tokens if usage is not None else None,
            completion_tokens=usage.completion_tokens if usage is not None else None,
            latency_ms=latency,
            attempt=0,
            request={},
            note=note,
        ), latency

    async def _call(
        self,
        messages: list[dict[str, str]],
        *,
        purpose: str,
        structured: bool,
        key: str | None,
        question_id: str | None,
    ) -> tuple[_Reply | None, int, str | None]:
        """Call until a reply or until retries run out; audits every failed attempt.

        Returns (reply, attempts, error). The caller audits the successful attempt itself,
        once it knows whether the content parsed.
        """
        attempt = 0
        retries = 0
        while True:
            attempt += 1
            mode: FormatMode | None = self.format_mode if structured else None
            params = self._params(messages, mode)
            request: dict[str, object] = {**params, "timeout_s": self._timeout_s}
            result, latency = await self._attempt(params)
            if isinstance(result, _Reply):
                result.attempt = attempt
                result.request = request
                return result, attempt, None

            await self._emit(
                self._record(
                    purpose,
                    key,
                    question_id,
                    request=request,
                    response=result.body,
                    latency_ms=round(latency, 1),
                    outcome=result.outcome,
                    error=result.error,
                    attempt=attempt,
                )
            )
            if result.format_rejected and mode is not None:
                following = _NEXT_FORMAT[mode]
                if following is not None:
                    if self.format_mode == mode:
                        log.warning(
                            "%s rejected response_format %s; falling back to %s",
                            self.base_url,
                            mode,
                            following,
                        )
                        self.format_mode = following
                    continue
            if result.format_rejected:
                return None, attempt, result.error
            if not result.retryable or retries >= self._max_retries:
                return None, attempt, result.error
            retries += 1
            await self._sleep(self._backoff(retries, result.retry_after))

    # ------------------------------------------------------------------ health

    PROBE_AFTER_S = 30.0
    """After a failure, the judge counts as unhealthy for this long (then one call probes it)."""

    @property
    def healthy(self) -> bool:
        """Whether the judge looks reachable: its last call got a reply, or its last failure
        is long enough ago to try again. The sweeper regrades judge-less turns only then."""
        if self._last_failure is None:
            return True
        if self._last_ok is not None and self._last_ok > self._last_failure:
            return True
        return time.monotonic() - self._last_failure > self.PROBE_AFTER_S

    def _note_health(self, ok: bool) -> None:
        if ok:
            self._last_ok = time.monotonic()
        else:
            self._last_failure = time.monotonic()

    # ------------------------------------------------------------------ judging

    def _outcome_from_content(
        self,
        content: str | None,
        inp: GradeInput,
        seen: str,
        screening: Screening,
        *,
        cached: bool,
        calls: int,
    ) -> JudgeOutcome:
        try:
            verdict, report = parse_judge_reply(
                content,
                rubric=inp.rubric,
                answer=seen,
                prompt_version=self.prompt_version,
                model=self.model,
            )
        except JudgeParseError as err:
            return JudgeOutcome(status="parse_error", error=str(err), calls=calls)
        if report.dropped_ids or report.downgraded_ids or report.unassessed_ids:
            log.info(
                "judge reply for %s: dropped ids %s, unassessed %s, downgraded %s (score %+.1f)",
                inp.question_id,
                report.dropped_ids,
                report.unassessed_ids,
                report.downgraded_ids,
                report.score_adjustment,
            )
        updates: dict[str, Any] = {"cached": cached}
        if screening.flagged:
            updates["injection_attempt"] = True
        verdict = verdict.model_copy(update=updates)
        return JudgeOutcome(verdict=verdict, status="ok", calls=calls)

    def _nothing_to_grade(self, inp: GradeInput, screening: Screening) -> JudgeOutcome:
        """An answer that is empty once injection sentences are gone: 0, without a model call."""
        reason = (
            "The answer consisted only of instructions to the grader; nothing was left to grade."
            if screening.flagged
            else "The answer is empty."
        )
        verdict = FlaggedVerdict(
            reasoning=reason,
            points=[JudgePoint(id=p.id, verdict=Verdict.missing, reasoning=reason) for p in inp.rubric],
            score=0.0,
            gaps=[p.text for p in inp.rubric],
            prompt_version=self.prompt_version,
            model=self.model,
            injection_attempt=screening.flagged,
        )
        return JudgeOutcome(verdict=verdict, status="ok", calls=0)

    async def judge(self, inp: GradeInput) -> JudgeOutcome:
        """Grade one answer: ``ok`` with a verdict, ``parse_error`` or ``unavailable``."""
        seen, screening = prepare_answer(inp.answer)
        if not screening.text.strip():
            return self._nothing_to_grade(inp, screening)
        key = self.cache_key(inp)
        messages = self.render_messages(inp, seen)

        if self._cache is not None:
            started = time.perf_counter()
            hit = self._cache.get(key)
            lookup_ms = round((time.perf_counter() - started) * 1000, 2)
            if hit is not None:
                outcome = self._outcome_from_content(hit.content, inp, seen, screening, cached=True, calls=0)
                await self._emit(
                    self._record(
                        "judge",
                        key,
                        inp.question_id,
                        request={"model": self.model, "messages": messages, "temperature": 0},
                        response=hit.content,
                        latency_ms=lookup_ms,
                        outcome="cached",
                        error=outcome.error,
                        attempt=0,
                    )
                )
                return outcome
            if self.cache_mode == "replay":
                await self._emit(
                    self._record(
                        "judge",
                        key,
                        inp.question_id,
                        request={"model": self.model, "messages": messages, "temperature": 0},
                        latency_ms=lookup_ms,
                        outcome="cache_miss",
                        error=REPLAY_MISS,
                        attempt=0,
                    )
                )
                return JudgeOutcome(status="unavailable", error=REPLAY_MISS, calls=0)

        calls = 0
        outcome = JudgeOutcome(status="unavailable", error="not called", calls=0)
        # An invalid reply (unreadable, a score outside 0-5, a rubric point that does not
        # exist) is asked for once more; a second invalid one leaves the embedding grading.
        for _ in range(2):
            reply, attempts, error = await self._call(
                messages, purpose="judge", structured=True, key=key, question_id=inp.question_id
            )
            calls += attempts
            self._note_health(reply is not None)
            if reply is None:
                return JudgeOutcome(status="unavailable", error=error, calls=calls)
            if reply.content is None:
                outcome = JudgeOutcome(status="parse_error", error=reply.note, calls=calls)
            else:
                outcome = self._outcome_from_content(reply.content, inp, seen, screening, cached=False, calls=calls)
            ok = outcome.status == "ok"
            await self._settle("judge", key, inp.question_id, reply, outcome.status, outcome.error, store=ok)
            if ok:
                break
        return outcome

    async def _settle(
        self,
        purpose: str,
        key: str,
        question_id: str | None,
        reply: _Reply,
        outcome: str,
        error: str | None,
        *,
        store: bool,
    ) -> None:
        """Audit the attempt that produced ``reply`` and, when ``store``, cache its content."""
        await self._emit(
            self._record(
                purpose,
                key,
                question_id,
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
        if store and self._cache is not None and reply.content is not None:
            self._cache.put(
                key,
                purpose=purpose,
                model=self.model,
                prompt_version=self.prompt_version,
                reply=CachedReply(
                    content=reply.content,
                    response=reply.body,
                    prompt_tokens=reply.prompt_tokens,
                    completion_tokens=reply.completion_tokens,
                ),
            )

    # ------------------------------------------------------------------ follow-up questions

    async def follow_up(self, inp: GradeInput, missed_point_ids: list[str]) -> str | None:
        """One follow-up question probing the rubric points the answer missed (``None`` if none)."""
        wanted = set(missed_point_ids)
        missed = [p for p in inp.rubric if p.id in wanted]
        if not missed:
            return None
        prompt = self._followup()
        seen, _ = prepare_answer(inp.answer)
        values = {
            "question": inp.question,
            "reference_answer": inp.reference_answer,
            "missed": [{"id": p.id, "text": p.text, "essential": p.essential} for p in missed],
            "answer": seen,
        }
        messages = self._messages(prompt.system.render(**values).strip(), prompt.user.render(**values).strip())
        key = cache_key(
            purpose="follow_up",
            model=self.model,
            prompt_version=self.prompt_version,
            prompt_sha=prompt.sha,
            system_role=self._system_role,
            question=self._content_id(inp),
            answer=inp.answer,
            missed=sorted(p.id for p in missed),
        )
        if self._cache is not None:
            hit = self._cache.get(key)
            if hit is not None or self.cache_mode == "replay":
                await self._emit(
                    self._record(
                        "follow_up",
                        key,
                        inp.question_id,
                        request={"model": self.model, "messages": messages, "temperature": 0},
                        response=hit.content if hit else None,
                        latency_ms=0.0,
                        outcome="cached" if hit else "cache_miss",
                        error=None if hit else REPLAY_MISS,
                        attempt=0,
                    )
                )
                return clean_follow_up(hit.content) if hit else None

        reply, _attempts, _error = await self._call(
            messages, purpose="follow_up", structured=False, key=key, question_id=inp.question_id
        )
        if reply is None:
            return None
        question = clean_follow_up(reply.content)
        error = None if question else (reply.note or "no question in the reply")
        await self._settle(
            "follow_up", key, inp.question_id, reply, "ok" if question else "parse_error", error, store=bool(question)
        )
        return question
