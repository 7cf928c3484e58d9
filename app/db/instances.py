"""Serving processes and their heartbeats: who is alive to finish the work it started.

Each process (server or CLI) registers a row in ``app_instances`` at start and touches it every
few seconds. A turn being graded carries the id of the process grading it (``turns.claimed_by``);
another process may take the turn over once that process has stopped beating (it crashed or was
killed) or its claim is older than the answer lease. That is what lets the next request for a
session, or the sweeper, move a session on after a crash within seconds, without ever taking an
answer from a process that is still grading it.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import datetime, timedelta

from sqlalchemy import Integer, String, delete, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.db.base import Base, as_utc, utcnow

log = logging.getLogger(__name__)

HEARTBEAT_S = 2.0
"""How often a process touches its row."""
DEAD_AFTER_S = 8.0
"""A process whose row is older than this is taken to be gone."""
FORGET_AFTER = timedelta(days=1)


class AppInstance(Base):
    __tablename__ = "app_instances"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    """``server`` or ``cli``."""
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)


def register(db: Session, instance_id: str, kind: str) -> None:
    """Add this process's row (and forget rows of processes gone for a day)."""
    db.execute(delete(AppInstance).where(AppInstance.heartbeat_at < utcnow() - FORGET_AFTER))
    db.add(AppInstance(id=instance_id, host=socket.gethostname()[:255], pid=os.getpid(), kind=kind))
    db.flush()


def beat(db: Session, instance_id: str) -> bool:
    """Touch this process's row; False when it has none (registration failed or was forgotten)."""
    result = db.execute(update(AppInstance).where(AppInstance.id == instance_id).values(heartbeat_at=utcnow()))
    return bool(getattr(result, "rowcount", 1))


def unregister(db: Session, instance_id: str) -> None:
    db.execute(delete(AppInstance).where(AppInstance.id == instance_id))


def alive(db: Session, instance_id: str | None) -> bool:
    """Whether the process ``instance_id`` beat recently."""
    if instance_id is None:
        return False
    seen = db.scalar(select(AppInstance.heartbeat_at).where(AppInstance.id == instance_id))
    return seen is not None and as_utc(seen) > utcnow() - timedelta(seconds=DEAD_AFTER_S)
