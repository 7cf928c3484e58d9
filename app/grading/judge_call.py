"""One chat-completions call to the judge's server, retried by tenacity.

The openai client never retries on its own here (``max_retries=0``), so that every attempt is
seen and audited; its retry policy is still the one applied: the client's own checks decide
whether an error response is worth retrying (408, 409, 429, 5xx, ``x-should-retry``, a
Retry-After that is not excessive) and read how long the server asked to wait
(``retry-after-ms``, ``retry-after`` in seconds or as an HTTP date). Timeouts, connection errors
and unreadable completions are retried too. tenacity drives the attempts: it waits between them
(exponential backoff with jitter, at least the Retry-After, both capped) and stops after
``max_retries`` retries or at the first failure not worth retrying. Each failed attempt is
reported to the caller's ``on_failure`` hook from the one wrapper every attempt goes through.
An error that rejects the ``response_format`` is never retried: it comes back as a
``format_rejected`` failure for the caller's fallback ladder.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import openai
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_base, wait_exponential, wait_random

FailureHook = Callable[["CallFailed"], Awaitable[None]]
_FORMAT_WORDS = ("response_format", "json_schema", "json_object", "structured output")


@dataclass
class Reply:
    """A successful HTTP exchange (its content may still be unusable)."""

    content: str | None
    body: str
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: float
    attempt: int
    request: dict[str, object]
    note: str | None = None
    """Why ``content`` is ``None`` (a refusal, no message)."""


@dataclass(eq=False)
class CallFailed(Exception):
    """One failed attempt: what went wrong and whether another attempt may do better."""

    outcome: str
    """``http_error``, ``rate_limited``, ``timeout``, ``connection_error``, ``bad_response``
    or ``format_rejected`` (the audit's outcome)."""
    error: str
    body: str | None = None
    retryable: bool = False
    retry_after: float | None = None
    format_rejected: bool = False
    latency_ms: float = 0.0
    attempt: int = 0
    request: dict[str, object] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.error


def format_rejection(status: int, error_text: str, response_format: object) -> bool:
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


class _wait_backoff_or_retry_after(wait_base):
    """Exponential backoff plus up to one base of jitter, or the server's Retry-After if that
    is longer; never more than ``cap``."""

    def __init__(self, base: float, cap: float) -> None:
        self.backoff = wait_exponential(multiplier=base, max=cap) + wait_random(0, base)
        self.cap = cap

    def __call__(self, retry_state: RetryCallState) -> float:
        delay = min(self.backoff(retry_state), self.cap)
        failed = retry_state.outcome.exception() if retry_state.outcome is not None else None
        if isinstance(failed, CallFailed) and failed.retry_after is not None:
            delay = max(delay, min(failed.retry_after, self.cap))
        return delay


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, CallFailed) and exc.retryable


class ChatCaller:
    """Makes chat-completion calls under a concurrency bound, with per-attempt timeouts and
    retries. ``sleep`` is what waits between attempts (tests replace it)."""

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        *,
        timeout_s: float,
        max_retries: int,
        concurrency: int,
        retry_base_s: float = 0.2,
        retry_max_s: float = 8.0,
    ) -> None:
        self.client = client.with_options(max_retries=0) if client.max_retries else client
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self.sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep
        self._semaphore = asyncio.Semaphore(concurrency)

    async def complete(
        self, params: dict[str, Any], *, first_attempt: int = 1, on_failure: FailureHook | None = None
    ) -> Reply:
        """The reply to ``params``, retrying as the policy allows. Every failed attempt goes to
        ``on_failure``; the last one is raised (:class:`CallFailed`). Attempts are numbered from
        ``first_attempt`` (a caller that falls back to another format goes on counting)."""

        retrying = AsyncRetrying(
            retry=retry_if_exception(_retryable),
            stop=stop_after_attempt(self.max_retries + 1),
            wait=_wait_backoff_or_retry_after(self.retry_base_s, self.retry_max_s),
            sleep=lambda seconds: self.sleep(seconds),
            reraise=True,
        )
        reply: Reply | None = None
        async for attempt in retrying:
            with attempt:
                number = first_attempt + attempt.retry_state.attempt_number - 1
                reply = await self._attempt(params, number, on_failure)
        assert reply is not None
        return reply

    async def _attempt(self, params: dict[str, Any], number: int, on_failure: FailureHook | None) -> Reply:
        """One HTTP exchange under the concurrency bound: the one place every attempt passes, so
        a failure is reported here (then raised as :class:`CallFailed` for tenacity to judge)."""
        request: dict[str, object] = {**params, "timeout_s": self.timeout_s}
        try:
            async with self._semaphore:
                raw, body, latency = await self._send(params)
            return self._reply(raw, body, latency, number, request)
        except CallFailed as failed:
            failed.attempt = number
            failed.request = request
            if on_failure is not None:
                await on_failure(failed)
            raise

    async def _send(self, params: dict[str, Any]) -> tuple[Any, str, float]:
        """(raw response, its body, latency ms), or :class:`CallFailed`."""
        started = time.perf_counter()

        def elapsed() -> float:
            return (time.perf_counter() - started) * 1000

        try:
            async with asyncio.timeout(self.timeout_s):
                raw = await self.client.chat.completions.with_raw_response.create(**params, timeout=self.timeout_s)
            return raw, raw.text, elapsed()
        except openai.APIStatusError as err:
            raise self._status_failure(err, params, elapsed()) from err
        except (openai.APITimeoutError, TimeoutError) as err:
            latency = elapsed()
            raise CallFailed(
                "timeout", f"timed out after {latency / 1000:.1f}s: {err!r}", retryable=True, latency_ms=latency
            ) from err
        except openai.APIConnectionError as err:
            cause = err.__cause__ or err
            raise CallFailed(
                "connection_error", f"connection error: {cause!r}", retryable=True, latency_ms=elapsed()
            ) from err
        except openai.OpenAIError as err:
            raise CallFailed("http_error", f"{type(err).__name__}: {err}", latency_ms=elapsed()) from err

    def _status_failure(self, err: openai.APIStatusError, params: dict[str, Any], latency: float) -> CallFailed:
        status = err.status_code
        text = _error_body(err)
        if format_rejection(status, (text or str(err)).lower(), params.get("response_format")):
            return CallFailed(
                "format_rejected", f"HTTP {status}: {err}", text, format_rejected=True, latency_ms=latency
            )
        # The openai client's own retry policy and Retry-After parsing (it never retries itself).
        return CallFailed(
            "rate_limited" if status == 429 else "http_error",
            f"HTTP {status}: {err}",
            text,
            retryable=self.client._should_retry(err.response),
            retry_after=self.client._parse_retry_after_header(err.response.headers),
            latency_ms=latency,
        )

    @staticmethod
    def _reply(raw: Any, body: str, latency: float, number: int, request: dict[str, object]) -> Reply:
        try:
            completion = raw.parse()
            choices = completion.choices or []
            message = choices[0].message if choices else None
            content = message.content if message is not None else None
            refusal = getattr(message, "refusal", None) if message is not None else None
            usage = completion.usage
        except Exception as err:
            raise CallFailed(
                "bad_response", f"unreadable completion: {err!r}", body, retryable=True, latency_ms=latency
            ) from err
        note = None
        if content is None:
            note = f"refusal: {refusal}" if refusal else "the reply has no message content"
        return Reply(
            content=content,
            body=body,
            prompt_tokens=usage.prompt_tokens if usage is not None else None,
            completion_tokens=usage.completion_tokens if usage is not None else None,
            latency_ms=latency,
            attempt=number,
            request=request,
            note=note,
        )
