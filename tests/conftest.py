"""Shared fixtures.

Every database test runs twice, on SQLite and on PostgreSQL, inside a transaction that is
rolled back at the end (routes' ``commit()`` calls only release SAVEPOINTs). The PostgreSQL
run needs ``MOCKINTERVIEW_TEST_DATABASE_URL`` (CI sets it); without it, it is skipped and says so.

The embedding model is loaded once per run: tests that need the real grader take the
``embedding_grader`` (or ``grader``) fixture, and every other :class:`Encoder` a test or a
command builds (cache-folder tests, bf16, ``mockinterview`` commands run in-process) reuses the
same loaded model through :func:`_one_model_load`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from app.bank.loader import Bank, bank_folders, load_bank
from app.config import Settings
from app.context import AppContext, build_grader
from app.db.base import make_engine
from app.db.migrate import upgrade
from app.grading.service import Grader
from app.main import create_app

if TYPE_CHECKING:
    from app.grading.embedding_grader import EmbeddingGrader

PG_URL = os.environ.get("MOCKINTERVIEW_TEST_DATABASE_URL", "")
PG_SKIP = "PostgreSQL run skipped: set MOCKINTERVIEW_TEST_DATABASE_URL (CI sets it) to run it"


def pytest_report_header() -> str:
    return f"PostgreSQL tests: {'on (' + PG_URL + ')' if PG_URL else 'skipped (' + PG_SKIP + ')'}"


@pytest.fixture(scope="session")
def test_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data = tmp_path_factory.mktemp("data")
    return Settings(  # type: ignore[call-arg]
        _env_file=None, data_dir=data, database_url="", judge_model="", reviewer_token="reviewer-secret-token"
    )


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def db_engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A migrated database of each kind (created once per test session)."""
    if request.param == "postgresql":
        if not PG_URL:
            pytest.skip(PG_SKIP)
        url = Settings(_env_file=None, database_url=PG_URL).sqlalchemy_url  # type: ignore[call-arg]
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def connection(db_engine: Engine) -> Iterator[Connection]:
    conn = db_engine.connect()
    outer = conn.begin()
    yield conn
    outer.rollback()
    conn.close()


@pytest.fixture
def session_factory(connection: Connection) -> sessionmaker[Session]:
    return sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)


@pytest.fixture
def db(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    with session_factory() as session:
        yield session


@pytest.fixture(scope="session")
def bank() -> Bank:
    loaded, _ = load_bank(bank_folders())
    return loaded


@pytest.fixture(scope="session", autouse=True)
def _one_model_load() -> Iterator[None]:
    """One SentenceTransformer per model name for the whole run, whoever builds an Encoder.

    ``app.grading.embedding._load_model`` has no cache of its own, so every ``Encoder()``
    would load the model again (seconds and ~100 MB each); for the run it is memoised. Each
    Encoder still has its own lock, caches, bf16 setting and counters.
    """
    from app.grading import embedding

    loader = embedding._load_model
    if not hasattr(loader, "cache_info"):
        loader = functools.cache(loader)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(embedding, "_load_model", loader)
        yield


@pytest.fixture(scope="session")
def embedding_grader(test_settings: Settings) -> EmbeddingGrader:
    """The real embedding grader (bundled all-MiniLM-L6-v2, committed calibration), one per run."""
    from app.grading.embedding import Encoder
    from app.grading.embedding_grader import EmbeddingGrader

    return EmbeddingGrader(Encoder.from_settings(test_settings))


@pytest.fixture(scope="session")
def grader(test_settings: Settings, embedding_grader: EmbeddingGrader) -> Grader:
    """The service's grader over the shared embedding grader, no judge."""
    return build_grader(test_settings, None, embedding_grader)


@pytest.fixture
def ctx(
    test_settings: Settings, connection: Connection, session_factory: sessionmaker[Session], bank: Bank, grader: Grader
) -> AppContext:
    context = AppContext(test_settings, connection.engine, session_factory, bank, grader)
    context.loaded.set()
    return context


@pytest.fixture
def client(ctx: AppContext) -> Iterator[TestClient]:
    with TestClient(create_app(context=ctx)) as c:
        yield c


FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
