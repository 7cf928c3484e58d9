"""Secrets kept out of what the service writes down: logs and the LLM audit.

Shared below the domains. Share tokens travel in URL paths (``/shared/<token>``), so the access
log shows them redacted; a password inside ``OPENAI_BASE_URL`` never reaches ``llm_calls``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from urllib.parse import urlsplit, urlunsplit

_SECRET_PATH = re.compile(r"(/shared/)[^/?#\s]+")
_SECRET_QUERY = re.compile(r"([?&](?:token|share|session_token|candidate_token)=)[^&#\s]+", re.IGNORECASE)
REDACTED = "<redacted>"


def hash_token(token: str) -> str:
    """What is stored for a secret token (candidate, session, share): its SHA-256, never the token."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str, token_hash: str) -> bool:
    """Whether ``token`` is the one whose hash is ``token_hash`` (constant-time comparison)."""
    return hmac.compare_digest(hash_token(token), token_hash)


def redact_path(path: str) -> str:
    """``path`` with share tokens and token query parameters replaced by ``<redacted>``."""
    return _SECRET_QUERY.sub(rf"\1{REDACTED}", _SECRET_PATH.sub(rf"\1{REDACTED}", path))


def redact_url(url: str | None) -> str | None:
    """``url`` without the user name and password it may carry (``https://user:pw@host``)."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class RedactTokens(logging.Filter):
    """Rewrites uvicorn's access-log lines (``client, method, path, version, status``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_path(args[2]), *args[3:])
        return True


def redact_access_log() -> None:
    """Install :class:`RedactTokens` on uvicorn's access logger (once)."""
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactTokens) for f in logger.filters):
        logger.addFilter(RedactTokens())
