"""The browser pages (/board, /dispatch, /refer, /refer/mine, /policy, /login) and their
assets under /static. Pages are static HTML shells; their scripts talk to the /v1 API.

No inline script or style anywhere, so `script-src 'self'; style-src 'self'` holds.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

import web
from api.access import public

WEB = Path(web.__file__).resolve().parent
PAGES = WEB / "pages"
STATIC = WEB / "static"
NO_CACHE = {"Cache-Control": "no-cache"}

# The shells and assets hold no data: open to anyone. The API they call checks roles,
# and a 401 from it sends the browser to /login.
router = APIRouter(include_in_schema=False, dependencies=[public()])

ROUTES = {
    "/board": "board.html",
    "/dispatch": "dispatch.html",
    "/refer": "refer.html",
    "/refer/mine": "mine.html",
    "/policy": "policy.html",
    "/login": "login.html",
}


def _page(name: str) -> FileResponse:
    return FileResponse(PAGES / name, media_type="text/html; charset=utf-8",
                        headers=NO_CACHE)


def _add(path: str, name: str) -> None:
    async def page() -> FileResponse:
        return _page(name)

    page.__name__ = "page_" + name.removesuffix(".html")
    router.add_api_route(path, page, methods=["GET"], include_in_schema=False)


for _path, _name in ROUTES.items():
    _add(_path, _name)


@router.get("/", include_in_schema=False)
async def root() -> RedirectResponse:
    return RedirectResponse("/board", status_code=307)


class _Static(StaticFiles):
    """Assets revalidated on every load, so a page never runs yesterday's script."""

    def file_response(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        response = super().file_response(*args, **kwargs)
        response.headers.setdefault("Cache-Control", "no-cache")
        return response


def mount(app: FastAPI) -> None:
    app.mount("/static", _Static(directory=STATIC), name="static")
