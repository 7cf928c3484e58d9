"""One small cache: an LRU memory layer over an optional SQLite table of key -> bytes.

The embedding vectors, the token embeddings and the judge's raw replies all use it. Values are
kept decoded in memory (``decode`` runs once per disk read, not per hit) and encoded to bytes on
disk. The disk layer is best effort: a missing, unreadable or unwritable file, or a table of
another layout, makes lookups miss and writes no-ops (logged once), never an error. ``readonly``
opens an existing file read-only and never creates or writes one (the memory layer still fills).

A cache whose on-disk encoding changes must change its table (or file) name, so that old
entries are ignored rather than misread.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

V = TypeVar("V")

_TABLE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CHUNK = 500
"""Keys per ``IN (...)`` query (well under SQLite's variable limit)."""


def identity(value: bytes) -> bytes:
    return value


class KVCache(Generic[V]):
    """A thread-safe LRU of up to ``max_items`` values over an optional SQLite table.

    ``path=None`` keeps the cache in memory only; ``max_items=0`` keeps it on disk only.
    ``decode`` may return ``None`` for a stored value that is no longer usable (a miss).
    """

    def __init__(
        self,
        path: Path | None,
        table: str,
        *,
        encode: Callable[[V], bytes],
        decode: Callable[[bytes], V | None],
        max_items: int = 10_000,
        readonly: bool = False,
    ) -> None:
        if not _TABLE_RE.match(table):
            raise ValueError(f"not a table name: {table!r}")
        self.path = Path(path) if path is not None else None
        self.table = table
        self.readonly = readonly
        self.max_items = max(0, max_items)
        self._encode = encode
        self._decode = decode
        self._memory: OrderedDict[str, V] = OrderedDict()
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._disabled = path is None

    # ------------------------------------------------------------------ public API

    def get(self, key: str) -> V | None:
        return self.get_many([key]).get(key)

    def get_many(self, keys: Iterable[str]) -> dict[str, V]:
        """The cached values of ``keys`` (those found), from memory first, then from disk."""
        found: dict[str, V] = {}
        with self._lock:
            wanted = []
            for key in dict.fromkeys(keys):
                if key in self._memory:
                    self._memory.move_to_end(key)
                    found[key] = self._memory[key]
                else:
                    wanted.append(key)
            if wanted:
                from_disk = self._read(wanted)
                self._remember(from_disk)
                found.update(from_disk)
        return found

    def put(self, key: str, value: V) -> None:
        self.put_many({key: value})

    def put_many(self, items: Mapping[str, V]) -> None:
        """Store ``items`` in memory and, unless read-only, on disk."""
        if not items:
            return
        with self._lock:
            self._remember(items)
            self._write(items)

    def __len__(self) -> int:
        """Values held in memory."""
        with self._lock:
            return len(self._memory)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._memory

    def close(self) -> None:
        """Close the file (the memory layer stays; the next disk access reopens it)."""
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
                self._conn = None

    # ------------------------------------------------------------------ layers

    def _remember(self, items: Mapping[str, V]) -> None:
        if not self.max_items:
            return
        for key, value in items.items():
            self._memory[key] = value
            self._memory.move_to_end(key)
        while len(self._memory) > self.max_items:
            self._memory.popitem(last=False)

    def _connect(self) -> sqlite3.Connection | None:
        if self._conn is not None or self._disabled:
            return self._conn
        assert self.path is not None
        try:
            if self.readonly:
                if not self.path.is_file():
                    return None  # not yet recorded: look again next time, never create it
                uri = self.path.resolve().as_uri() + "?mode=ro"
                self._conn = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=10)
                return self._conn
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, check_same_thread=False, timeout=10)
            with contextlib.suppress(sqlite3.DatabaseError):  # e.g. no shared memory on this fs
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"CREATE TABLE IF NOT EXISTS {self.table} (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
            conn.commit()
            self._conn = conn
        except (OSError, sqlite3.Error) as exc:  # a broken cache must never stop the work
            log.warning("disk cache %s (%s) disabled: %s", self.path, self.table, exc)
            self._disabled = True
        return self._conn

    def _read(self, keys: list[str]) -> dict[str, V]:
        out: dict[str, V] = {}
        conn = self._connect()
        if conn is None:
            return out
        try:
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(f"SELECT key, value FROM {self.table} WHERE key IN ({marks})", chunk).fetchall()
                for key, blob in rows:
                    try:
                        value = self._decode(bytes(blob))
                    except Exception as exc:  # an entry this code cannot read is a miss
                        log.debug("disk cache %s: unreadable entry %s: %s", self.path, key, exc)
                        continue
                    if value is not None:
                        out[key] = value
        except sqlite3.Error as exc:  # e.g. a read-only file without this table
            log.debug("disk cache %s (%s) read failed: %s", self.path, self.table, exc)
        return out

    def _write(self, items: Mapping[str, V]) -> None:
        if self.readonly:
            return
        conn = self._connect()
        if conn is None:
            return
        try:
            rows = [(key, self._encode(value)) for key, value in items.items()]
            conn.executemany(f"INSERT OR REPLACE INTO {self.table} (key, value) VALUES (?, ?)", rows)
            conn.commit()
        except sqlite3.Error as exc:
            log.warning("disk cache %s (%s) write failed: %s", self.path, self.table, exc)
