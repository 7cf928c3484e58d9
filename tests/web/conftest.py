"""Fixtures of the web tests: page helpers (TestClient) and a live server for the browser.

The browser tests drive Debian's Chromium (``apt-get install chromium``) through Playwright
for Python (``pip install playwright``; its bundled driver is used, no browser download).
They are skipped, saying why, when either is missing.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.bank.loader import Bank
from app.config import Settings
from app.context import AppContext
from app.db.base import make_engine, make_sessionmaker
from app.db.migrate import upgrade
from app.grading.service import Grader
from app.main import create_app

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REVIEWER_TOKEN = "reviewer-secret-token"  # what tests/conftest.py's test_settings sets
START = {"track": "mlops", "topics": ["deployment"], "difficulty": "medium", "num_questions": "2", "mode": "practice"}


# ------------------------------------------------------------------------- page helpers
def csrf_of(html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert found, "page has no CSRF token"
    return found.group(1)


def field_value(html: str, name: str) -> str:
    found = re.search(rf'name="{name}"[^>]*value="([^"]*)"', html)
    assert found, f"page has no field {name}"
    return found.group(1)


def start_session(client: TestClient, **overrides: Any) -> tuple[str, str]:
    """Start a session through the start form; returns (session id, CSRF token)."""
    token = csrf_of(client.get("/").text)
    r = client.post("/sessions", data={"csrf_token": token, **START, **overrides}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return r.headers["location"].rsplit("/", 1)[-1], token


# ---------------------------------------------------------------------------- live server
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    def __init__(self, url: str, engine: Engine) -> None:
        self.url = url
        self.engine = engine


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def live_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    test_settings: Settings,
    bank: Bank,
    grader: Grader,
) -> Iterator[LiveServer]:
    """The app served by uvicorn on 127.0.0.1, over a real (committed) temporary SQLite file."""
    if request.param == "postgresql":
        pytest.skip(
            "browser tests run on SQLite only: they commit through a live server, which the shared "
            "PostgreSQL test database must not keep; tests/web/test_pages.py covers PostgreSQL"
        )
    import uvicorn

    url = f"sqlite:///{tmp_path_factory.mktemp('web') / 'browser.db'}"
    upgrade(url)
    engine = make_engine(url)
    ctx = AppContext(test_settings, engine, make_sessionmaker(engine), bank, grader)
    ctx.loaded.set()
    port = _free_port()
    config = uvicorn.Config(create_app(context=ctx), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the live server did not start")
        time.sleep(0.05)
    yield LiveServer(f"http://127.0.0.1:{port}", engine)
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()


# -------------------------------------------------------------------------------- browser
def _browser_skip_reason() -> str | None:
    if not CHROMIUM.exists():
        return f"browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "browser tests need Playwright for Python (pip install playwright; no browser download)"
    return None


@pytest.fixture(scope="module")  # Playwright's sync API keeps an event loop running in this thread while it lives
def browser() -> Iterator[Browser]:
    reason = _browser_skip_reason()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, live_server: LiveServer) -> Iterator[Page]:
    """A fresh browser context (its own cookies: a new candidate) on the live server."""
    context = browser.new_context(
        base_url=live_server.url, accept_downloads=True, viewport={"width": 1100, "height": 900}
    )
    context.set_default_timeout(20_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource")
            else None
        ),
    )
    yield pg
    context.close()
    assert not errors, f"the page logged JavaScript errors: {errors}"
