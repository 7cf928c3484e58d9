"""Apply Alembic migrations programmatically (``mockinterview db upgrade`` and start-up)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection

from app.config import resource_dir

MIGRATIONS = resource_dir("app.migrations")
"""Alembic's script folder (the ``app.migrations`` package: env.py, script.py.mako, versions/)."""


def alembic_config(url: str, connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade(url: str, revision: str = "head", connection: Connection | None = None) -> None:
    command.upgrade(alembic_config(url, connection), revision)
