"""The SQLite engine's writer discipline: immediate write transactions, and retries of a step
SQLite refused a lock (after its busy timeout)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.db.base import begin_write, is_lock_error, make_engine, with_lock_retries


def _engine(tmp_path: Path, busy_s: float = 0.2) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'lock.db'}", busy_timeout_s=busy_s)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    return engine


def _hold_write_lock(engine: Engine, seconds: float) -> threading.Thread:
    held = threading.Event()

    def hold() -> None:
        with Session(engine) as other:
            begin_write(other)
            other.execute(text("INSERT INTO t VALUES (0)"))
            held.set()
            time.sleep(seconds)
            other.commit()

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait(5)
    return thread


def test_a_writer_queues_for_the_lock_instead_of_failing(tmp_path: Path) -> None:
    engine = _engine(tmp_path, busy_s=5.0)
    holder = _hold_write_lock(engine, 0.3)
    with Session(engine) as db:
        begin_write(db)  # waits for the other writer, then holds the lock itself
        n = db.execute(text("SELECT count(*) FROM t")).scalar_one()
        db.execute(text("INSERT INTO t VALUES (1)"))
        db.commit()
    holder.join()
    assert n == 1  # it read after the other writer committed: no stale read-then-write
    engine.dispose()


def test_a_step_refused_a_lock_is_rolled_back_and_run_again(tmp_path: Path) -> None:
    engine = _engine(tmp_path, busy_s=0.2)
    holder = _hold_write_lock(engine, 0.5)  # longer than one busy timeout
    attempts = []

    def step(db: Session) -> int:
        attempts.append(1)
        begin_write(db)
        db.execute(text("INSERT INTO t VALUES (1)"))
        db.commit()
        return len(attempts)

    with Session(engine) as db:
        assert with_lock_retries(db, step) >= 2
    holder.join()
    with Session(engine) as db:
        assert db.execute(text("SELECT count(*) FROM t")).scalar_one() == 2  # once, not twice
    engine.dispose()


def test_other_errors_are_not_retried(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    attempts = []

    def step(db: Session) -> None:
        attempts.append(1)
        db.execute(text("SELECT * FROM no_such_table"))

    with Session(engine) as db, pytest.raises(OperationalError) as info:
        with_lock_retries(db, step)
    assert len(attempts) == 1 and not is_lock_error(info.value)
    engine.dispose()


def test_times_come_back_with_their_time_zone(db: Session) -> None:
    """SQLite keeps no time zone: every stored moment is read back as UTC, as on PostgreSQL."""
    from datetime import UTC, datetime, timedelta, timezone

    from app.interview.models import Candidate

    moment = datetime(2026, 12, 2, 3, 0, tzinfo=timezone(timedelta(hours=2)))
    candidate = Candidate(token_hash="t" * 64, created_at=moment)
    db.add(candidate)
    db.flush()
    db.expire(candidate)
    assert candidate.created_at == moment and candidate.created_at.tzinfo is not None
    assert candidate.created_at.utcoffset() == timedelta(0) and candidate.created_at.astimezone(UTC).hour == 1
