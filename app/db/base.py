"""The declarative base and the engine/session factories."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import anyio.to_thread
from sqlalchemy import JSON, DateTime, Dialect, Engine, MetaData, String, TypeDecorator, create_engine, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from app.errors import Unavailable

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

T = TypeVar("T")

JSONType = JSON().with_variant(JSONB(), "postgresql")


def new_id() -> str:
    """A new primary key: 32 hex characters of a random UUID."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """``moment`` with its time zone (SQLite hands back naive datetimes, stored as UTC)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A moment, always handed back with its time zone (UTC). PostgreSQL keeps zones itself;
    SQLite stores none, so a value is stored as UTC and read back as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return as_utc(value) if value is not None else None


E = TypeVar("E", bound=StrEnum)


class StrEnumType(TypeDecorator[E]):
    """A :class:`~enum.StrEnum` kept as its plain string value (``VARCHAR``, no database enum
    type, so adding a member needs no migration) and handed back as the enum member."""

    impl = String(16)
    cache_ok = True

    def __init__(self, enum: type[E], length: int = 16) -> None:
        super().__init__(length)
        self.enum = enum

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> E | None:
        return None if value is None else self.enum(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSONType,
        list[Any]: JSONType,
        datetime: UTCDateTime(),
    }


def make_engine(url: str, *, pool_size: int = 8, busy_timeout_s: float = 10.0, **kwargs: Any) -> Engine:
    """An engine for ``url``.

    SQLite gets WAL (readers never wait for the writer), foreign keys, real SAVEPOINT support
    and, for transactions that write (:func:`begin_write`), ``BEGIN IMMEDIATE``: they take the
    write lock when they begin, waiting up to ``busy_timeout_s`` for it. A deferred transaction
    that reads and then writes fails at once (``database is locked``) when another connection
    committed in between, which is what several candidates answering at the same moment do; an
    immediate one simply queues. Write transactions are a few milliseconds long (none is held
    open while an answer is graded), so queueing costs little. ``pool_size`` connections are
    kept, as many again may be opened under load.
    """
    kwargs.setdefault("pool_size", pool_size)
    kwargs.setdefault("max_overflow", pool_size)
    kwargs.setdefault("pool_timeout", 30)
    if url.startswith("sqlite"):
        path = make_url(url).database or ""
        memory = not path or path == ":memory:" or "mode=memory" in url
        if path.startswith("file:"):  # an SQLite URI filename (``?uri=true``): its path, no query
            path = path.removeprefix("file:").split("?", 1)[0]
        if not memory:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        else:
            for key in ("pool_size", "max_overflow", "pool_timeout"):
                kwargs.pop(key)
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": busy_timeout_s})
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy, not pysqlite, issue BEGIN, so SAVEPOINTs work (see the
            # SQLAlchemy docs on pysqlite's transaction handling).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")  # durable across a process crash in WAL mode
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            immediate = conn.get_execution_options().get(IMMEDIATE)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


IMMEDIATE = "mockinterview_sqlite_immediate"


def begin_write(db: Session) -> None:
    """Make ``db``'s transaction a writer's: on SQLite, one that took the write lock up front.

    Every use case that reads and then writes calls this before its first read. A read-only
    transaction already open is ended first (its objects stay loaded). Elsewhere a no-op:
    PostgreSQL's row locks (``FOR UPDATE``) do that job."""
    if db.get_bind().dialect.name != "sqlite":
        return
    if db.in_transaction():
        if db.connection().get_execution_options().get(IMMEDIATE):
            return
        db.commit()
    db.connection(execution_options={IMMEDIATE: True})


def is_lock_error(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite refusing a lock (``database is locked`` / ``busy``) after its
    busy timeout."""
    text = str(getattr(exc, "orig", exc)).lower()
    return isinstance(exc, OperationalError) and ("database is locked" in text or "database is busy" in text)


def with_lock_retries(db: Session, fn: Callable[..., T], *args: Any) -> T:
    """Run the database step ``fn(db, *args)``, again (up to three times in all, after a short
    random pause) when SQLite refused it a lock: the transaction is rolled back first, so this
    is only for steps that are safe to repeat from the start. Every step of the answer flow is:
    it re-reads what it needs under its lock and checks before it writes."""
    for attempt in Retrying(
        retry=retry_if_exception(is_lock_error),
        stop=stop_after_attempt(3),
        wait=wait_random_exponential(multiplier=0.05, max=1.0),
        before_sleep=lambda _: db.rollback(),
        reraise=True,
    ):
        with attempt:
            return fn(db, *args)
    raise AssertionError("unreachable: tenacity reraises the last error")


async def in_thread_retrying(db: Session, fn: Callable[..., T], *args: Any) -> T:
    """:func:`in_thread` of :func:`with_lock_retries`."""
    return await in_thread(with_lock_retries, db, fn, *args)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run blocking database work in the worker thread pool, never on the event loop.

    The pool is anyio's default one (FastAPI runs plain ``def`` routes there too); the app
    sizes it like the database pool at start-up (:func:`size_thread_pools`).

    A step that is followed by another ``await`` in the same request ends its transaction
    itself: a transaction left open across a wait for a worker thread would hold SQLite's
    write lock while every worker thread waits for that lock.
    """
    return await anyio.to_thread.run_sync(functools.partial(fn, *args))


_finishers: anyio.CapacityLimiter | None = None


async def finish_in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run a commit, rollback or close in a thread of its own small pool.

    Ending a transaction never waits for a lock, so these threads are never all blocked; a
    request that holds SQLite's write lock always gets a thread to release it, however many
    other requests are queued for the lock in the main pool.
    """
    global _finishers
    if _finishers is None:
        _finishers = anyio.CapacityLimiter(8)
    return await anyio.to_thread.run_sync(functools.partial(fn, *args), limiter=_finishers)


def size_thread_pools(size: int) -> None:
    """Give the worker pool (and the finishing pool) ``size`` threads each; the engine keeps
    ``2 * size`` connections at most (``make_engine``), so no thread waits for one."""
    global _finishers
    anyio.to_thread.current_default_thread_limiter().total_tokens = size
    if _finishers is None:
        _finishers = anyio.CapacityLimiter(size)
    else:
        _finishers.total_tokens = size


_UNAVAILABLE = (
    ("readonly", "the database is read-only"),
    ("read-only", "the database is read-only"),
    ("unable to open database", "the database file cannot be opened (moved, deleted or not permitted)"),
    ("no such table", "the database file is missing its tables (replaced or deleted?)"),
    ("disk i/o error", "the database's disk failed a read or write"),
    ("malformed", "the database file is damaged"),
    ("database or disk is full", "the database's disk is full"),
    ("connection", "the database server cannot be reached"),
    ("could not connect", "the database server cannot be reached"),
)


def database_unavailable(exc: OperationalError) -> Unavailable:
    """The 503 for a database that cannot be used right now, saying why in plain words."""
    text = str(exc.orig or exc).lower()
    why = next((reason for needle, reason in _UNAVAILABLE if needle in text), "the database refused the request")
    return Unavailable(f"{why}; nothing was changed, please retry later")
