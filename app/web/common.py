"""Templates, rendering and error pages shared by the candidate pages and the reviewer console."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, pass_context
from jinja2.runtime import Context
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from app.config import resource_dir
from app.errors import AppError
from app.reports.export import band, status_label
from app.review.console import flag_label
from app.web.security import add_security_headers, attach_csrf_cookie, csrf_token

STATIC_DIR = resource_dir("app.web", "static")
"""The stylesheet and script (package data of ``app.web``), served by ``app.web.routes``."""


def _score(value: object) -> str:
    return f"{float(value):.1f}" if isinstance(value, int | float) else "\u2013"


def _when(value: object) -> str:
    if not isinstance(value, datetime):
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _iso(value: object) -> str:
    if not isinstance(value, datetime):
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def _pretty_json(value: object) -> str:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return str(value)
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


@pass_context
def _topic(context: Context, slug: object) -> str:
    """A topic slug as people read it: the title its bank file declares (``topic_titles`` in the
    template context, put there by :func:`render`), else the slug."""
    titles = context.get("topic_titles") or {}
    return str(titles.get(slug, slug) if isinstance(slug, str) else slug or "")


env = Environment(
    loader=PackageLoader("app.web", "templates"),  # package data, found wherever app is installed
    autoescape=True,  # every value is HTML-escaped; nothing in the templates is marked safe
    trim_blocks=True,
    lstrip_blocks=True,
)
env.filters.update(
    score=_score,
    band=band,
    when=_when,
    iso=_iso,
    pretty_json=_pretty_json,
    flag_label=flag_label,
    status=status_label,
    topic=_topic,
)


def topic_titles(request: Request) -> Mapping[str, str]:
    """The bank's topic titles for this process (empty before the context exists)."""
    ctx = getattr(request.app.state, "ctx", None)
    titles: Mapping[str, str] = ctx.bank.titles if ctx is not None else {}
    return titles


def wants_json(request: Request) -> bool:
    """The progressive JavaScript asks for JSON; a plain form post gets a page or a redirect."""
    return "application/json" in request.headers.get("accept", "")


def render_fragment(request: Request, name: str, context: Mapping[str, Any]) -> str:
    return env.get_template(name).render(topic_titles=topic_titles(request), **context)


def render(
    request: Request,
    name: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    ctx = {
        "request": request,
        "csrf_token": csrf_token(request),
        "path": request.url.path,
        "topic_titles": topic_titles(request),
        **(context or {}),
    }
    response = HTMLResponse(env.get_template(name).render(**ctx), status_code=status_code, headers=headers)
    attach_csrf_cookie(request, response)
    return response


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def error_response(request: Request, status_code: int, message: str) -> Response:
    if wants_json(request):
        return JSONResponse({"detail": message}, status_code=status_code)
    titles = {
        401: "Sign-in needed",
        403: "Not allowed",
        404: "Not found",
        409: "Not possible now",
        422: "Check your input",
        503: "Not available right now",
    }
    return render(
        request,
        "error.html",
        {"title": titles.get(status_code, "Something went wrong"), "message": message, "status_code": status_code},
        status_code=status_code,
    )


def validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "form"))
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts) or "invalid request"


class LoginRequired(Exception):
    """Raised by the reviewer dependency when a browser has no reviewer cookie yet."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class WebRoute(APIRoute):
    """Routes of the web pages: domain errors become HTML pages (or JSON for ``fetch``), and
    every response carries the security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def web_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except LoginRequired as exc:
                response = see_other(f"/review/login?next={quote(exc.next_url, safe='/')}")
            except AppError as exc:
                response = error_response(request, exc.status_code, exc.message)
            except RequestValidationError as exc:
                response = error_response(request, 422, validation_message(exc))
            add_security_headers(response, cache=request.url.path.startswith("/static/"))
            return response

        return web_handler
