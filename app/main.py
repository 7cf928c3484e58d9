"""The FastAPI application."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import make_asgi_app
from pydantic import BaseModel
from sqlalchemy.exc import OperationalError
from swagger_ui_bundle import swagger_ui_path

from app.bank.routes import router as bank_router
from app.config import Settings, get_settings
from app.context import AppContext, build_context
from app.db.base import database_unavailable, size_thread_pools
from app.errors import AppError, RateLimited, Unavailable
from app.grading.routes import router as grading_router
from app.interview.routes import router as interview_router
from app.interview.sweeper import Background, Sweeper
from app.limits import BodyLimit, SecurityHeaders
from app.review.routes import router as review_router
from app.security import redact_access_log
from app.web import router as web_router
from app.web.common import error_response
from app.web.security import add_security_headers

log = logging.getLogger(__name__)


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    grader: str | None = None
    """``embedding`` or ``hybrid`` (with an LLM judge)."""
    bank_version: str | None = None
    reason: str | None = None
    """Why it is not ready yet (the model is loading, or failed to load)."""


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            return f"request body is not valid JSON: {err.get('ctx', {}).get('error', err['msg'])}"
        loc = ".".join(str(p) for p in err["loc"] if p != "body")
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts) or "invalid request"


def create_app(
    settings: Settings | None = None, context: AppContext | None = None, *, background: bool | None = None
) -> FastAPI:
    """Build the app. The server builds its context at start-up; tests pass a ready ``context``.

    ``background`` (default: on when the app builds its own context) runs the process's
    heartbeat and sweeper, and sizes the worker thread pool like the database pool."""
    run_background = context is None if background is None else background

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = context if context is not None else build_context(settings or get_settings())
        app.state.ctx = ctx
        if not run_background:
            yield
            return
        size_thread_pools(ctx.settings.db_pool_size)
        work = Background(ctx.interviews)
        await work.start()

        def start_sweeper(_: object) -> None:
            if ctx.grader is not None:
                work.add_sweeper(Sweeper(ctx.interviews))

        if ctx.loaded.is_set():
            start_sweeper(None)
        else:
            # Loading the embedding model takes seconds: /healthz answers at once, /readyz
            # turns ready when it is loaded, gradings wait for it, and the sweeper starts.
            asyncio.get_running_loop().run_in_executor(None, ctx.load_grader).add_done_callback(start_sweeper)
        try:
            yield
        finally:
            await work.stop()
            if context is None:
                ctx.engine.dispose()

    app = FastAPI(
        title="mockinterview",
        version="0.1.0",
        description="Mock technical interviews with graded free-text answers.",
        lifespan=lifespan,
        docs_url=None,  # served below from the bundled Swagger UI, so /docs works offline
        redoc_url=None,  # ReDoc only comes from a CDN
    )
    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="mockinterview API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )

    if context is not None:
        app.state.ctx = context
    app_settings = context.settings if context is not None else (settings or get_settings())
    # A recorded answer may be larger than any other request (multipart overhead included).
    app.add_middleware(
        BodyLimit, max_bytes=app_settings.max_request_bytes, audio_bytes=app_settings.max_audio_bytes + 65_536
    )
    app.add_middleware(SecurityHeaders)
    redact_access_log()

    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        if isinstance(exc, RateLimited | Unavailable):
            headers = {"Retry-After": str(exc.retry_after_s)}
        return JSONResponse({"detail": exc.message}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(OperationalError)
    async def _database_down(request: Request, exc: OperationalError) -> Response:
        # A read-only, vanished or unreachable database: the request fails, the process serves on.
        log.error("database unavailable on %s %s: %s", request.method, request.url.path, exc.orig or exc)
        unavailable = database_unavailable(exc)
        if request.url.path.startswith("/api"):
            return await _app_error(request, unavailable)
        page = error_response(request, unavailable.status_code, unavailable.message)  # the web pages
        page.headers["Retry-After"] = str(unavailable.retry_after_s)
        add_security_headers(page)
        return page

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            {
                "detail": _validation_message(exc),
                "errors": [{"loc": list(e["loc"]), "msg": str(e["msg"]), "type": e["type"]} for e in exc.errors()],
            },
            status_code=422,
        )

    # Both answer on the event loop, without a worker thread or the database: they stay quick
    # however busy the workers are.
    @app.get("/healthz", tags=["ops"], response_model=Health)
    async def healthz() -> Health:
        """Liveness: the process answers (it may still be loading the grader)."""
        return Health()

    @app.get(
        "/readyz",
        tags=["ops"],
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "Not ready yet (the reason says why)."}},
    )
    async def readyz(request: Request) -> JSONResponse:
        """Readiness: the grader is loaded, so answers are graded at once."""
        ctx: AppContext = request.app.state.ctx
        if ctx.grader is not None:
            ready = Readiness(status="ready", grader=ctx.grader.mode, bank_version=ctx.bank.version)
            return JSONResponse(ready.model_dump(exclude_none=True))
        reason = ctx.grader_error or "loading the embedding model"
        return JSONResponse(Readiness(status="not ready", reason=reason).model_dump(exclude_none=True), status_code=503)

    if app_settings.metrics:
        app.mount("/metrics", make_asgi_app())
    app.include_router(interview_router)
    app.include_router(grading_router)
    app.include_router(bank_router)
    app.include_router(review_router)
    app.include_router(web_router)
    return app
