"""A disk cache of the judge's raw replies, so a rerun of the same grading costs nothing.

Keys are sha256 digests of everything that determines the reply (model, prompt version and the
prompt files' content, the question's bank hash or its reference and rubric, the answer). The
model's *raw* reply is stored, not the parsed verdict, so parser fixes apply to cached entries.

``replay`` opens the file read-only and never writes: CI eval replays use it to prove that no
prompt or input changed since the recorded run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

CacheMode = Literal["off", "readwrite", "replay"]
CACHE_FILE = "judge_cache.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS judge_cache (
    key TEXT PRIMARY KEY,
    purpose TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    content TEXT NOT NULL,
    response TEXT,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    created_at REAL NOT NULL
)
"""


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


class JudgeCache:
    """SQLite-backed store of raw judge replies (one small file, safe across processes)."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection | None:
        if self._conn is not None:
            return self._conn
        if self.readonly:
            if not self.path.exists():
                return None
            uri = self.path.resolve().as_uri() + "?mode=ro"
            self._conn = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=10)
            return self._conn
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, check_same_thread=False, timeout=10)
        with contextlib.suppress(sqlite3.DatabaseError):  # e.g. no shared memory on this fs
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(_SCHEMA)
        conn.commit()
        self._conn = conn
        return conn

    def get(self, key: str) -> CachedReply | None:
        with self._lock:
            conn = self._connect()
            if conn is None:
                return None
            try:
                row = conn.execute(
                    "SELECT content, response, prompt_tokens, completion_tokens FROM judge_cache WHERE key = ?",
                    (key,),
                ).fetchone()
            except sqlite3.OperationalError:  # read-only file written by an older layout
                return None
        if row is None:
            return None
        return CachedReply(content=row[0], response=row[1], prompt_tokens=row[2], completion_tokens=row[3])

    def put(
        self,
        key: str,
        *,
        purpose: str,
        model: str,
        prompt_version: str,
        reply: CachedReply,
    ) -> None:
        if self.readonly:
            return
        with self._lock:
            conn = self._connect()
            if conn is None:
                return
            conn.execute(
                "INSERT OR REPLACE INTO judge_cache (key, purpose, model, prompt_version, content, "
                "response, prompt_tokens, completion_tokens, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    purpose,
                    model,
                    prompt_version,
                    reply.content,
                    reply.response,
                    reply.prompt_tokens,
                    reply.completion_tokens,
                    time.time(),
                ),
            )
            conn.commit()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
