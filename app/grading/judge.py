"""The rubric LLM judge: one OpenAI-compatible chat call per answer, audited and cached.

Only ``app/grading/judge*`` modules talk to the LLM. The jobs are split:

* :mod:`app.grading.judge_prompts` - the versioned prompt folders, their hash, the messages, and
  the answer as the judge sees it: normalised and screened (:mod:`app.grading.injection`),
  instructions to the grader replaced by a marker, fence-like tags neutralised, fenced as data;
* :mod:`app.grading.judge_call` - one chat-completions call at temperature 0 under a
  concurrency bound, retried by tenacity with the openai client's retry policy (Retry-After
  honoured), every failed attempt reported through one hook;
* :mod:`app.grading.judge_parse` - :class:`~app.grading.judge_parse.JudgeReply`, the schema the
  judge asks for (reasoning before the score) and the tolerant parse; a reply with nothing
  usable is a ``parse_error``, never a score of 0;
* :mod:`app.grading.judge_store` - the cache of raw replies (replayable read-only without any
  network, ``cache_mode="replay"``) and the audit: one :class:`LLMCallRecord` per attempt;
* this module - :class:`Judge`: the fallback ladder across response formats (strict JSON
  schema, then ``json_object`` with the schema attached, which llama.cpp-style servers enforce
  as a grammar, then bare ``json_object``, then plain text; remembered per :class:`Judge`), its
  health, and :meth:`Judge.judge` and :meth:`Judge.follow_up` on one cached, audited call path.
  An invalid judging (unreadable, a score outside 0-5, a rubric point that does not exist) is
  asked for once more; a second invalid one leaves the answer to the embedding grading.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, Literal, TypeVar, cast

import httpx
import openai

from app.config import Settings
from app.grading.injection import Screening
from app.grading.judge_call import CallFailed, ChatCaller, Reply
from app.grading.judge_parse import (
    ECHO_RUN,
    FlaggedVerdict,
    JudgeParseError,
    clean_follow_up,
    drop_prompt_echo,
    follow_up_problem,
    parse_judge_reply,
    reply_json_schema,
)
from app.grading.judge_prompts import (
    Prompt,
    followup_prompt,
    followup_values,
    judge_prompt,
    judge_values,
    messages,
    neutralise_tags,
    prepare_answer,
)
from app.grading.judge_store import (
    CACHE_FILE,
    REPLAY_MISS,
    AuditFn,
    CacheMode,
    CallContext,
    JudgeStore,
    cache_key,
)
from app.grading.schemas import GradeInput, JudgeOutcome, JudgePoint, JudgeStatus, JudgeVerdict, Verdict
from app.security import redact_url
from app.tokens import word_runs

__all__ = ["REPLAY_MISS", "AuditFn", "CacheMode", "FormatMode", "Judge", "neutralise_tags", "prepare_answer"]

log = logging.getLogger(__name__)

FormatMode = Literal["json_schema", "json_object_schema", "json_object", "none"]
_NEXT_FORMAT: dict[FormatMode, FormatMode | None] = {
    "json_schema": "json_object_schema",
    "json_object_schema": "json_object",
    "json_object": "none",
    "none": None,
}

T = TypeVar("T")


@dataclass
class _Read(Generic[T]):
    """What a reply's content gave: a value, or (``None``) why it is unusable."""

    value: T | None
    error: str | None = None


@dataclass
class _Asked(Generic[T]):
    value: T | None
    status: JudgeStatus
    error: str | None
    calls: int


class Judge:
    """Grades one answer against its rubric with an OpenAI-compatible chat model.

    ``cache_mode``: ``"readwrite"`` (default when ``settings.judge_cache``), ``"off"``, or
    ``"replay"`` (read-only, never calls the network; a miss is ``unavailable``).
    ``retry_base_s`` / ``retry_max_s``: exponential backoff base and cap (Retry-After is honoured
    up to the cap). ``max_tokens``: optional completion cap sent with each call.
    ``system_role=False`` folds the system prompt into the user message, for models whose chat
    template has no system role (Gemma).
    """

    PROBE_AFTER_S = 30.0
    """After a failure, the judge counts as unhealthy for this long (then one call probes it)."""

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
        self._max_tokens = max_tokens
        self._system_role = system_role

        self._prompt = judge_prompt(settings.prompts_dir, self.prompt_version)
        self._schema = reply_json_schema(str(self._prompt.meta.get("schema_name", "judge_verdict")))
        self._followup_prompt: Prompt | None = None
        empty = GradeInput(question="", reference_answer="", answer="")
        _, nothing_found = prepare_answer("")
        self._instruction_runs = word_runs(self._prompt.render(judge_values(empty, "", nothing_found)), ECHO_RUN)
        """Runs of the judge prompt's own words (no question, rubric or answer): feedback that
        repeats one echoes the prompt, not a reading of the answer (:func:`drop_prompt_echo`)."""

        self._owns_client = client is None
        if client is None:
            key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
            # An explicit httpx client: the project's declared HTTP stack (and what respx mocks),
            # with a pool big enough for the configured concurrency.
            http_client = httpx.AsyncClient(
                timeout=settings.judge_timeout_s,
                limits=httpx.Limits(
                    max_connections=max(2 * settings.judge_concurrency, 16),
                    max_keepalive_connections=max(settings.judge_concurrency, 8),
                ),
            )
            client = openai.AsyncOpenAI(
                api_key=key or "not-needed",
                base_url=settings.openai_base_url,
                max_retries=0,
                timeout=settings.judge_timeout_s,
                # openai>=2 types this as httpx2 but accepts an httpx client (openai 1.x: native).
                http_client=cast(Any, http_client),
            )
        self.caller = ChatCaller(
            client,
            timeout_s=settings.judge_timeout_s,
            max_retries=settings.judge_max_retries,
            concurrency=settings.judge_concurrency,
            retry_base_s=retry_base_s,
            retry_max_s=retry_max_s,
        )
        """The call layer (its ``sleep`` waits between retries)."""
        self._client = self.caller.client
        self.base_url = redact_url(str(self._client.base_url).rstrip("/")) or ""
        """Where the judge calls, as logs and the audit show it (without credentials)."""

        self._last_ok: float | None = None
        self._last_failure: float | None = None
        self.format_mode: FormatMode = "json_schema"
        """The response_format that works with this server (downgraded on rejection)."""

        self.cache_mode: CacheMode = cache_mode or ("readwrite" if settings.judge_cache else "off")
        self._store = JudgeStore(
            audit=audit,
            model=self.model,
            prompt_version=self.prompt_version,
            base_url=self.base_url,
            cache_path=settings.cache_dir / CACHE_FILE,
            mode=self.cache_mode,
        )

    # ------------------------------------------------------------------ lifecycle

    async def aclose(self) -> None:
        self._store.close()
        if self._owns_client:
            await self._client.close()

    async def __aenter__(self) -> Judge:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ prompts and keys

    def render_messages(self, inp: GradeInput, answer: str | None = None) -> list[dict[str, str]]:
        """The chat messages for judging ``inp`` (``answer``: the already-prepared answer)."""
        prepared, screening = prepare_answer(inp.answer)
        return self._judge_messages(inp, prepared if answer is None else answer, screening)

    def _judge_messages(self, inp: GradeInput, answer: str, screening: Screening) -> list[dict[str, str]]:
        system, user = self._prompt.render(judge_values(inp, answer, screening))
        return messages(system, user, system_role=self._system_role)

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

    def _followup(self) -> Prompt:
        if self._followup_prompt is None:
            self._followup_prompt = followup_prompt(self.settings.prompts_dir, self.prompt_version)
        return self._followup_prompt

    # ------------------------------------------------------------------ health

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

    # ------------------------------------------------------------------ the call path

    def _params(self, msgs: list[dict[str, str]], mode: FormatMode | None) -> dict[str, Any]:
        params: dict[str, Any] = {"model": self.model, "messages": msgs, "temperature": 0}
        if self._max_tokens:
            params["max_tokens"] = self._max_tokens
        if mode == "json_schema":
            params["response_format"] = {"type": "json_schema", "json_schema": self._schema}
        elif mode == "json_object_schema":  # llama.cpp / llama-cpp-python extension
            params["response_format"] = {"type": "json_object", "schema": self._schema["schema"]}
        elif mode == "json_object":
            params["response_format"] = {"type": "json_object"}
        return params

    async def _exchange(
        self, ctx: CallContext, msgs: list[dict[str, str]], *, structured: bool
    ) -> tuple[Reply | CallFailed, int]:
        """One call, down the response-format ladder while the server rejects the format:
        (the reply or the last failure, attempts made)."""
        attempts = 0
        while True:
            mode: FormatMode | None = self.format_mode if structured else None
            try:
                reply = await self.caller.complete(
                    self._params(msgs, mode), first_attempt=attempts + 1, on_failure=partial(self._store.failed, ctx)
                )
                return reply, reply.attempt
            except CallFailed as failed:
                attempts = failed.attempt
                following = _NEXT_FORMAT[mode] if failed.format_rejected and mode is not None else None
                if following is None:
                    return failed, attempts
                if self.format_mode == mode:
                    log.warning("%s rejected response_format %s; falling back to %s", self.base_url, mode, following)
                    self.format_mode = following

    async def _ask(
        self,
        ctx: CallContext,
        msgs: list[dict[str, str]],
        read: Callable[[str, bool], _Read[T]],
        *,
        structured: bool,
        tries: int,
    ) -> _Asked[T]:
        """The cached, audited path of every call: the cache (or, in replay, only the cache),
        then up to ``tries`` calls until ``read`` finds a usable value in the content
        (``read(content, cached)``). Only usable replies are cached."""
        if self._store.caching:
            hit, lookup_ms = self._store.lookup(ctx.key)
            request: dict[str, object] = {"model": self.model, "messages": msgs, "temperature": 0}
            if hit is not None:
                got = read(hit.content, True)
                await self._store.cached(ctx, request, hit, lookup_ms, got.error)
                return _Asked(
                    got.value, JudgeStatus.ok if got.value is not None else JudgeStatus.parse_error, got.error, 0
                )
            if self._store.replay:
                await self._store.cached(ctx, request, None, lookup_ms, REPLAY_MISS)
                return _Asked(None, JudgeStatus.unavailable, REPLAY_MISS, 0)

        asked: _Asked[T] = _Asked(None, JudgeStatus.unavailable, "not called", 0)
        calls = 0
        for _ in range(tries):
            result, attempts = await self._exchange(ctx, msgs, structured=structured)
            calls += attempts
            self._note_health(isinstance(result, Reply))
            if isinstance(result, CallFailed):
                return _Asked(None, JudgeStatus.unavailable, result.error, calls)
            got = read(result.content, False) if result.content is not None else _Read(None, result.note)
            status = JudgeStatus.ok if got.value is not None else JudgeStatus.parse_error
            await self._store.settle(ctx, result, status, got.error, store=got.value is not None)
            asked = _Asked(got.value, status, got.error, calls)
            if got.value is not None:
                break
        return asked

    # ------------------------------------------------------------------ judging

    def _read_verdict(
        self, inp: GradeInput, seen: str, screening: Screening, content: str, cached: bool
    ) -> _Read[JudgeVerdict]:
        try:
            verdict, report = parse_judge_reply(
                content,
                rubric=inp.rubric,
                answer=seen,
                prompt_version=self.prompt_version,
                model=self.model,
            )
        except JudgeParseError as err:
            return _Read(None, str(err))
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
        return _Read(drop_prompt_echo(verdict, self._instruction_runs).model_copy(update=updates))

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
        return JudgeOutcome(verdict=verdict, status=JudgeStatus.ok, calls=0)

    async def judge(self, inp: GradeInput) -> JudgeOutcome:
        """Grade one answer: ``ok`` with a verdict, ``parse_error`` or ``unavailable``."""
        seen, screening = prepare_answer(inp.answer)
        if not screening.text.strip():
            return self._nothing_to_grade(inp, screening)
        ctx = CallContext("judge", self.cache_key(inp), inp.question_id, inp.turn_id)
        asked = await self._ask(
            ctx,
            self._judge_messages(inp, seen, screening),
            partial(self._read_verdict, inp, seen, screening),
            structured=True,
            tries=2,
        )
        return JudgeOutcome(verdict=asked.value, status=asked.status, error=asked.error, calls=asked.calls)

    # ------------------------------------------------------------------ follow-up questions

    async def follow_up(self, inp: GradeInput, missed_point_ids: list[str]) -> str | None:
        """One follow-up question probing the rubric points the answer missed, written from the
        candidate's own answer; ``None`` when there is nothing to probe, the judge fails, or its
        question does not pass :func:`follow_up_problem` (the interview then asks the bank's)."""
        wanted = set(missed_point_ids)
        missed = [p for p in inp.rubric if p.id in wanted]
        if not missed:
            return None
        prompt = self._followup()
        seen, _ = prepare_answer(inp.answer)
        system, user = prompt.render(followup_values(inp, missed, seen))
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
        ctx = CallContext("follow_up", key, inp.question_id, inp.turn_id)

        def read(content: str, cached: bool) -> _Read[str]:
            question = clean_follow_up(content)
            if question is None:
                return _Read(None, "no question in the reply")
            problem = follow_up_problem(question, inp, missed)
            return _Read(None, f"follow-up refused: {problem}") if problem else _Read(question)

        asked = await self._ask(
            ctx, messages(system, user, system_role=self._system_role), read, structured=False, tries=1
        )
        return asked.value
