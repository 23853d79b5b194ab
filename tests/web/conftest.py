"""Browser tests: Playwright (async API) driving Debian's Chromium against a real uvicorn.

One browser per test module, with the module's tests and servers on the module's event
loop: Playwright's connection and the server share that loop, so neither blocks the other.
Without Chromium (or the playwright package) the tests skip and say why; with CI=true
they fail instead (scripts/ensure-chromium.sh installs the browser as root).

`login(context, server, role)` is the one place that logs a browser in: as the test user
of that role that tests/credentials.py makes in every test database.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from service.access.auth import Role
from service.settings import Settings
from tests.conftest import WAIT, Server, free_port, running_server, unavailable
from tests.credentials import Credentials

CHROMIUM = os.environ.get("LIAISON_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def _chromium() -> str:
    path = CHROMIUM if os.path.isabs(CHROMIUM) else shutil.which(CHROMIUM)
    if not path or not os.access(path, os.X_OK):
        unavailable(f"browser tests skipped: no Chromium at {CHROMIUM} (as root, "
                    "`bash scripts/ensure-chromium.sh` installs Debian's chromium; or set "
                    "LIAISON_CHROMIUM)")
    return str(path)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Any]:
    path = _chromium()
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        unavailable("browser tests skipped: the playwright package is not installed "
                    "(pip install -e '.[dev]')")
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=path, args=LAUNCH_ARGS)
        try:
            yield b
        finally:
            await b.close()


@pytest_asyncio.fixture(loop_scope="module")
async def web(tmp_path: Path) -> AsyncIterator[Server]:
    """A real Liaison on SQLite, on the module's loop (the browser's)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'liaison.db'}"
    async with running_server(Settings(database_url=url)) as s:
        yield s


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_web(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    """One Liaison for a whole module (starting one, with its users, takes a few seconds):
    for tests that look only at their own calls."""
    db = tmp_path_factory.mktemp("web") / "liaison.db"
    async with running_server(Settings(database_url=f"sqlite+aiosqlite:///{db}")) as s:
        yield s


@contextlib.asynccontextmanager
async def serve_on(settings: Settings, port: int, creds: Credentials | None = None
                   ) -> AsyncIterator[Server]:
    """tests.conftest.running_server on a given port (to restart on the same one)."""
    async with running_server(settings, port=port, creds=creds) as server:
        yield server


__all__ = ["DESKTOP", "PHONE", "free_port", "login", "new_page", "serve_on"]


async def login(context: Any, server: Server, role: str | Role = Role.supervisor) -> str:
    """Log this browser context in as the test user of `role` (tests/credentials.py made
    one per role); returns the user name. The session cookie is the context's."""
    username = server.creds.users[Role(role)]
    res = await context.request.post(f"{server.base_url}/v1/session",
                                     data={"username": username,
                                           "password": server.creds.password})
    assert res.ok, f"login as {username} failed: {res.status} {await res.text()}"
    return username


async def new_page(browser: Any, server: Server, *, role: str | Role = Role.supervisor,
                   viewport: dict[str, int] | None = None, **options: Any
                   ) -> tuple[Any, Any]:
    """A fresh context (own cookies), logged in as `role`, and a page in it. Script errors
    and CSP violations are collected in page.errors; tests assert it stays empty.
    `options`: more of the context's (geolocation and its permission, say)."""
    context = await browser.new_context(viewport=viewport or DESKTOP, **options)
    # Long: what must happen may take a while on a loaded machine (tests bound nothing's
    # speed; bench/ does), and waiting costs nothing when it is quick.
    context.set_default_timeout(WAIT * 1000)
    await login(context, server, role)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # A CSP violation (an inline script or style slipping in) is an error too.
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error"
            and "Content Security Policy" in msg.text else None)
    page.errors = errors
    return context, page
