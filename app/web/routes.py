"""All web routes in one router, plus the few static files (served here: no build step, no CDN)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import FileResponse, Response

from app.errors import NotFound
from app.web import candidate, reviewer
from app.web.common import STATIC_DIR, WebRoute

STATIC_FILES = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}

router = APIRouter(route_class=WebRoute, include_in_schema=False)


@router.get("/static/{name}")
def static_file(name: str) -> Response:
    if name not in STATIC_FILES:
        raise NotFound("no such file")
    return FileResponse(
        STATIC_DIR / name, media_type=STATIC_FILES[name], headers={"Cache-Control": "public, max-age=300"}
    )


router.include_router(candidate.router)
router.include_router(reviewer.router)
