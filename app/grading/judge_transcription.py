"""Spoken answers to text: recorded audio sent to an OpenAI-compatible ``/v1/audio/transcriptions``.

It lives beside the judge because the ``judge*`` modules are the only ones that talk to a model
server: it uses the same endpoint settings (``OPENAI_BASE_URL``, ``OPENAI_API_KEY``), its own
model (``MOCKINTERVIEW_TRANSCRIPTION_MODEL``, e.g. ``whisper-1``), and every call is written to
the ``llm_calls`` audit (purpose ``transcription``; the audio itself is not kept, only its size
and type). The text is never graded as it comes: it lands in the answer box, where the
candidate reads and edits it before submitting.
"""

from __future__ import annotations

import inspect
import time
from typing import Any, cast

import httpx
import openai

from app.config import Settings
from app.errors import InvalidInput, TooLarge, UnsupportedMedia, UpstreamFailed
from app.grading.judge_store import AuditFn
from app.grading.schemas import LLMCallRecord
from app.security import redact_url

AUDIO_TYPES = ("audio/webm", "audio/ogg", "audio/mpeg", "audio/mp4", "audio/wav", "audio/x-wav", "audio/flac")
"""The recorded formats accepted (what browsers' MediaRecorder and the Whisper API both know)."""


class Transcriber:
    """Turns one recording into text; ``None`` of these exist unless a transcription model is set."""

    def __init__(self, settings: Settings, audit: AuditFn | None = None, client: openai.AsyncOpenAI | None = None):
        if not settings.transcription_model:
            raise ValueError("no transcription model is configured (MOCKINTERVIEW_TRANSCRIPTION_MODEL)")
        self.model = settings.transcription_model
        self.max_bytes = settings.max_audio_bytes
        self._audit = audit
        if client is None:
            key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
            client = openai.AsyncOpenAI(
                api_key=key or "not-needed",
                base_url=settings.openai_base_url,
                max_retries=1,
                timeout=settings.judge_timeout_s,
                http_client=cast(Any, httpx.AsyncClient(timeout=settings.judge_timeout_s)),
            )
        self._client = client
        self.base_url = redact_url(str(client.base_url).rstrip("/")) or ""

    async def aclose(self) -> None:
        await self._client.close()

    async def transcribe(self, audio: bytes, filename: str, content_type: str, *, turn_id: str | None = None) -> str:
        """The recording's text. A recording of the wrong type is a 415, too large a 413, empty a
        422; a failing service a 502 (:class:`UpstreamFailed`) that says so, audited like a success."""
        kind = content_type.split(";", 1)[0].strip().lower()
        if kind not in AUDIO_TYPES:
            raise UnsupportedMedia(f"the recording is {kind or 'of no type'}; send one of: {', '.join(AUDIO_TYPES)}")
        if not audio:
            raise InvalidInput("the recording is empty")
        if len(audio) > self.max_bytes:
            raise TooLarge(f"the recording is {len(audio)} bytes; the limit is {self.max_bytes} (max_audio_bytes)")
        request: dict[str, object] = {"model": self.model, "file": filename, "bytes": len(audio), "content_type": kind}
        started = time.perf_counter()
        try:
            result = await self._client.audio.transcriptions.create(
                model=self.model, file=(filename, audio, kind), response_format="json"
            )
        except openai.APITimeoutError as exc:
            await self._record(request, started, "timeout", error=str(exc), turn_id=turn_id)
            raise UpstreamFailed("the transcription service did not answer in time; type the answer instead") from exc
        except openai.APIStatusError as exc:
            await self._record(request, started, "http_error", error=f"HTTP {exc.status_code}: {exc}", turn_id=turn_id)
            raise UpstreamFailed(
                f"the transcription service failed (HTTP {exc.status_code}); type the answer instead"
            ) from exc
        except openai.OpenAIError as exc:
            await self._record(request, started, "http_error", error=f"{type(exc).__name__}: {exc}", turn_id=turn_id)
            raise UpstreamFailed("the transcription service could not be reached; type the answer instead") from exc
        text = " ".join(str(getattr(result, "text", "") or "").split())
        await self._record(request, started, "ok", response=text, turn_id=turn_id)
        return text

    async def _record(
        self,
        request: dict[str, object],
        started: float,
        outcome: str,
        *,
        response: str | None = None,
        error: str | None = None,
        turn_id: str | None,
    ) -> None:
        if self._audit is None:
            return
        done = self._audit(
            LLMCallRecord(
                purpose="transcription",
                prompt_version="-",
                model=self.model,
                base_url=self.base_url,
                request=request,
                response=response,
                latency_ms=(time.perf_counter() - started) * 1000,
                outcome=outcome,
                error=error,
                turn_id=turn_id,
            )
        )
        if inspect.isawaitable(done):
            await done
