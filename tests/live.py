"""A real server for tests that need real concurrency: uvicorn on a free loopback port, over a
real, committed database (a fresh SQLite file, or a fresh PostgreSQL database dropped after).

The app runs in a thread of the test process so that it shares the already-loaded embedding
model and respx can mock its judge; requests reach it over TCP, as a browser's would.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from app.config import Settings
from app.context import AppContext
from app.db.base import make_engine, make_sessionmaker
from app.db.migrate import upgrade
from app.main import create_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def fresh_database(kind: str, tmp: Path, pg_url: str) -> Iterator[str]:
    """The URL of a new, migrated database of ``kind``; a PostgreSQL one is dropped after."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp / f'live-{uuid.uuid4().hex[:8]}.db'}"
        upgrade(url)
        yield url
        return
    base = make_url(Settings(_env_file=None, database_url=pg_url).sqlalchemy_url)  # type: ignore[call-arg]
    name = f"mi_live_{uuid.uuid4().hex[:10]}"
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Live:
    url: str
    ctx: AppContext
    engine: Engine


@contextlib.contextmanager
def serve(ctx: AppContext) -> Iterator[str]:
    """Serve ``ctx`` (with its heartbeat and sweeper) on a free port; yields the base URL."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(
        create_app(context=ctx, background=True), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"live-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the live server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def context_for(url: str, settings: Settings, bank: object, grader: object) -> tuple[AppContext, Engine]:
    engine = make_engine(url, pool_size=settings.db_pool_size, busy_timeout_s=settings.db_busy_timeout_s)
    ctx = AppContext(settings, engine, make_sessionmaker(engine), bank, grader)  # type: ignore[arg-type]
    ctx.loaded.set()
    return ctx, engine
