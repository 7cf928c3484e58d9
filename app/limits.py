"""Bounded work per request, below the routes: the size of a request body.

:class:`BodyLimit` refuses a body larger than ``max_request_bytes`` with a 413 that names the
limit, before any of it is parsed: by its ``Content-Length`` at once, or, for a body sent in
chunks, as soon as the chunks pass the limit. Field-level limits (lengths of every text and list)
are in the request schemas (:mod:`app.text`).
"""

from __future__ import annotations

import json
import time
from collections import deque

from starlette.types import ASGIApp, Message, Receive, Scope, Send

AUDIO_PATHS = ("/transcribe", "/transcriptions")
"""Paths (by their ending) that carry a recorded answer: they may send up to ``audio_bytes``."""


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, audio_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.audio_bytes = max(max_bytes, audio_bytes or 0)

    def _message(self, size: int | None, limit: int, setting: str) -> bytes:
        said = f"{size} bytes" if size is not None else "larger than that"
        return json.dumps({"detail": f"the request body is {said}; the limit is {limit} bytes ({setting})"}).encode()

    async def _refuse(self, send: Send, size: int | None, limit: int, setting: str) -> None:
        body = self._message(size, limit, setting)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        audio = str(scope.get("path", "")).endswith(AUDIO_PATHS) and scope.get("method") == "POST"
        limit, setting = (self.audio_bytes, "max_audio_bytes") if audio else (self.max_bytes, "max_request_bytes")
        headers: dict[bytes, bytes] = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            size = int(declared) if declared.isdigit() else None
            if size is None or size > limit:
                await self._refuse(send, size, limit, setting)
                return
        received = 0
        refused = False

        async def counted() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Answer 413 now; the app sees the client gone and its own reply is dropped.
                    refused = True
                    await self._refuse(send, None, limit, setting)
                    return {"type": "http.disconnect"}
            return message

        async def unless_refused(message: Message) -> None:
            if not refused:
                await send(message)

        try:
            await self.app(scope, counted, unless_refused)
        except Exception:
            if not refused:
                raise


class TooManyRequests(Exception):
    """Refused by a :class:`GradeGate`: the message says why, ``retry_after_s`` when to retry."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s


class SlidingWindow:
    """At most ``limit`` events per key in any ``window_s`` seconds (event loop only)."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._hits: dict[str, deque[float]] = {}

    def wait_s(self, key: str) -> int:
        """0 when ``key`` may go on now, else the seconds until it may."""
        now = time.monotonic()
        hits = self._hits.get(key)
        if hits is None:
            return 0
        while hits and now - hits[0] > self.window_s:
            hits.popleft()
        return int(self.window_s - (now - hits[0])) + 1 if len(hits) >= self.limit else 0

    def hit(self, key: str) -> None:
        now = time.monotonic()
        self._hits.setdefault(key, deque()).append(now)
        if len(self._hits) > 10_000:  # forget idle clients
            for k in [k for k, v in self._hits.items() if not v or now - v[-1] > self.window_s]:
                del self._hits[k]


class GradeGate:
    """Admission for the stateless grading endpoint, so one client cannot starve candidates:
    at most ``per_minute`` requests per client in any 60 s, and at most ``concurrent`` gradings
    at once in the process (beyond that: 429, not a queue). Used from the event loop only."""

    def __init__(self, per_minute: int, concurrent: int) -> None:
        self.per_minute = per_minute
        self.concurrent = concurrent
        self.busy = 0
        self._window = SlidingWindow(per_minute, 60.0)

    def admit(self, client: str) -> None:
        wait = self._window.wait_s(client)
        if wait:
            raise TooManyRequests(f"rate limit: {self.per_minute} gradings per minute per client", wait)
        if self.busy >= self.concurrent:
            raise TooManyRequests(f"the grader is busy ({self.concurrent} gradings at once); retry shortly", 1)
        self._window.hit(client)
        self.busy += 1

    def release(self) -> None:
        self.busy = max(0, self.busy - 1)


class SecurityHeaders:
    """The pages' security headers on every response (API JSON, ``/docs``, errors) where a
    route did not set its own: no sniffing, no framing, no referrer leaks, no caching of
    replies that carry tokens, and for non-HTML bodies a policy that allows nothing."""

    COMMON = (
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"same-origin"),
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                have = {k.lower() for k, _ in headers}
                extra = [(k, v) for k, v in self.COMMON if k not in have]
                if b"cache-control" not in have:
                    extra.append((b"cache-control", b"no-store"))
                ctype = dict(headers).get(b"content-type", b"")
                if b"content-security-policy" not in have and not ctype.startswith(b"text/html"):
                    extra.append((b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"))
                message = {**message, "headers": headers + extra}
            await send(message)

        await self.app(scope, receive, with_headers)
