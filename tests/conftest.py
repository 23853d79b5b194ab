"""Shared fixtures: real databases (SQLite and PostgreSQL), a real uvicorn on a free port,
and real subprocesses for the tests that kill servers.

PostgreSQL comes from LIAISON_TEST_POSTGRES_URL (an admin URL; `make test` sets it up).
Without it the PostgreSQL tests skip and say why; under CI (CI=true, 1 or yes) they fail
instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
import uvicorn
import websockets
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import create_app
from service.access.auth import Role
from service.live.websocket import WebSocketProtocol
from service.settings import Settings
from service.store.db import create_engine, migrate
from tests import dbtemplate
from tests.credentials import Credentials, RoleAuth, credentials_for, make_credentials
from tests.documented import Documented
from tests.factories import event

ROOT = Path(__file__).resolve().parent.parent
# CI services set CI=true; some set CI=1 or yes. Any of them means "never skip".
IN_CI = os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")
PG_ADMIN_URL = os.environ.get("LIAISON_TEST_POSTGRES_URL", "")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def unavailable(message: str) -> None:
    """Skip a test (or, called at import, a module) whose outside material is missing,
    saying why; under CI, fail."""
    if IN_CI:
        pytest.fail("CI: " + message, pytrace=False)
    pytest.skip(message, allow_module_level=True)


def _require_postgres() -> str:
    reason = ("PostgreSQL tests skipped: LIAISON_TEST_POSTGRES_URL is not set "
              "(run `make test`, which starts a local PostgreSQL, or set it to an admin URL)")
    if not PG_ADMIN_URL:
        if IN_CI:
            pytest.fail("CI but LIAISON_TEST_POSTGRES_URL is not set: " + reason)
        pytest.skip(reason)
    return PG_ADMIN_URL


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test; dropped afterwards."""
    admin = _require_postgres()
    name = f"liaison_t_{uuid.uuid4().hex[:12]}"

    def run(sql: str) -> None:
        # A thread of its own, so no event loop of the test's is disturbed.
        async def go() -> None:
            conn = await asyncpg.connect(_dsn(admin))
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, go()).result()

    try:
        run(f'CREATE DATABASE "{name}"')
    except (OSError, asyncpg.PostgresError) as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL at LIAISON_TEST_POSTGRES_URL is unusable: {exc}")
        pytest.skip(f"PostgreSQL tests skipped: cannot create a database ({exc})")
    url = f"{admin.rsplit('/', 1)[0]}/{name}"
    dbtemplate.made_by(url, admin)
    try:
        yield url
    finally:
        dbtemplate.drop_later(admin, name)  # off the test's path: a drop checkpoints


# The longest modules run first (each holds tests of a minute or more: whole city exports,
# a queue's real wait limit and shift start, the fuzzer). Started last, one of them would
# keep one worker busy long after the other ran out of tests (make test: --dist worksteal).
LONGEST_FIRST = ("tests/adapters/test_exports_full.py", "tests/web/test_queue.py",
                 "tests/api/test_fuzz.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {module: i for i, module in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # stable


@pytest.fixture(scope="session", autouse=True)
def _drop_databases() -> Iterator[None]:
    yield
    dbtemplate.finish()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each storage test runs once on SQLite and once on PostgreSQL, on a fresh database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'liaison.db'}"
    else:
        with postgres_database() as url:
            yield url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@dataclass
class Server:
    base_url: str
    ws_url: str
    app: Any
    # Authenticated for every route: each request carries a key whose role the route allows.
    client: httpx.AsyncClient
    creds: Credentials
    uvicorn: uvicorn.Server | None = None  # its open connections, for tests of sockets

    @property
    def runtime(self) -> Any:
        return self.app.state.runtime

    async def post_event(self, **fields: Any) -> httpx.Response:
        return await self.client.post("/v1/cad/events", json=event(**fields))

    def connect_board(self, query: str = "", role: Role = Role.supervisor,
                      **kw: Any) -> Any:
        """A websocket to the board, as `role` (a key of that role)."""
        return websockets.connect(f"{self.ws_url}/v1/board{query}",
                                  additional_headers=self.creds.bearer(role), **kw)


@contextlib.asynccontextmanager
async def migrated_engine(url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the database at `url`, its schema migrated; disposed afterwards."""
    engine = create_engine(url)
    try:
        await migrate(engine)
        yield engine
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def running_server(settings: Settings, *, port: int | None = None,
                         creds: Credentials | None = None) -> AsyncIterator[Server]:
    """A real uvicorn serving the real app on a free port (or `port`, to restart on the
    same one), in this event loop. `creds`: those an earlier server on the same database
    made (else a key and a person per role are made)."""
    port = port or free_port()
    settings = settings.model_copy(update={"host": "127.0.0.1", "port": port})
    # A database nothing has touched gets a copy of a migrated one with the test
    # credentials (tests/dbtemplate.py): what start-up and make_credentials would make.
    made = None if creds else await dbtemplate.prepare(settings.database_url)
    app = create_app(settings)
    # timeout_keep_alive past httpx's keepalive_expiry (5 s, uvicorn's default too): a
    # request sent on a connection idle for 5 s can race uvicorn closing it, and get a
    # reset (httpx.ReadError) instead of an answer.
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            lifespan="on", ws=WebSocketProtocol,  # as `liaison serve`
                            timeout_keep_alive=30)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 30
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn stopped during start-up")
        if time.monotonic() > deadline:
            raise TimeoutError("uvicorn did not start")
        await asyncio.sleep(0.02)
    base = f"http://127.0.0.1:{port}"
    creds = creds or made or await make_credentials(app.state.runtime.engine)
    # Every answer is held to the OpenAPI document (tests/documented.py).
    async with httpx.AsyncClient(base_url=base, timeout=30, auth=RoleAuth(app, creds),
                                 event_hooks={"response": [Documented(app)]}) as client:
        try:
            yield Server(base, f"ws://127.0.0.1:{port}", app, client, creds, server)
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, 30)


@pytest_asyncio.fixture
async def server(database_url: str) -> AsyncIterator[Server]:
    async with running_server(Settings(database_url=database_url)) as s:
        yield s


# The longest a test waits for what must happen. Generous: on a loaded 2-core machine a
# step may take seconds, and waiting costs nothing when the step is quick. (Tests never
# bound how fast something happens; bench/ measures that.)
WAIT = 60.0


async def eventually(check: Callable[[], Any], what: str, *, within: float = WAIT,
                     every: float = 0.02) -> Any:
    """Poll `check` (a function, or one returning an awaitable) until it returns something
    true, and return that; fail naming `what` after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        got = check()
        if inspect.isawaitable(got):
            got = await got
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:.0f} s waiting for {what}")
        await asyncio.sleep(every)


@dataclass
class Subprocess:
    """`liaison serve` as a real child process, for tests that kill or run two servers."""

    proc: subprocess.Popen[bytes]
    base_url: str
    ws_url: str
    log_path: Path
    creds: Credentials | None = None

    def client(self, **kw: Any) -> httpx.AsyncClient:
        """An async client authenticated for every route (see tests/credentials.py)."""
        assert self.creds is not None
        return httpx.AsyncClient(base_url=self.base_url, auth=RoleAuth(route_app(), self.creds),
                                 **{"timeout": 30, "event_hooks": {"response": [
                                     Documented(route_app())]}, **kw})

    def env(self, role: Role) -> dict[str, str]:
        """The environment for a `liaison` command acting as `role`."""
        assert self.creds is not None
        return {**os.environ, "LIAISON_TOKEN": self.creds.keys[role]}

    def connect_board(self, query: str = "", role: Role = Role.supervisor,
                      **kw: Any) -> Any:
        assert self.creds is not None
        return websockets.connect(f"{self.ws_url}/v1/board{query}",
                                  additional_headers=self.creds.bearer(role), **kw)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


_ROUTE_APP: Any = None


def route_app() -> Any:
    """An app built only to read its route table (which roles each route allows)."""
    global _ROUTE_APP
    if _ROUTE_APP is None:
        _ROUTE_APP = create_app(Settings())
    return _ROUTE_APP


def _in_thread(coro: Any) -> Any:
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def start_subprocess(database_url: str, tmp_path: Path, *, extra: list[str] | None = None,
                     port: int | None = None, creds: Credentials | None = None
                     ) -> Subprocess:
    """`creds`: the ones an earlier server on the same database made (else new ones)."""
    port = port or free_port()
    log_path = tmp_path / f"serve-{port}.log"
    cmd = [sys.executable, "-m", "api.cli", "serve", "--port", str(port),
           "--database-url", database_url, "--log-level", "warning", *(extra or [])]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    sp = Subprocess(proc, f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"liaison serve exited early:\n{sp.log()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{sp.base_url}/v1/health", timeout=2).status_code == 200:
                sp.creds = creds or _in_thread(credentials_for(database_url))
                return sp
        time.sleep(0.1)
    sp.kill()
    raise TimeoutError(f"liaison serve did not become healthy:\n{sp.log()}")


# A private PostgreSQL of a test's own, to freeze and crash (fault tests): tests/pgcluster.py.
from tests.pgcluster import _pg_template, pg_cluster, pg_cluster_url  # noqa: E402,F401,I001
