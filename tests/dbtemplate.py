"""Databases for test servers, made by copying instead of by migrating, and PostgreSQL
databases dropped off the test's path.

Starting a server on a new database ran all the migrations and made the test credentials
(tests/credentials.py: six argon2 password hashes): seconds per test, paid by most of the
suite. Each test process now does that once, into a template database, and a server
started on a database nothing has touched yet (a SQLite file not there, a PostgreSQL
database without tables) gets a copy of it: the same schema, version rows and credential
rows the migrations and make_credentials would have written, by SQLite file copy or
PostgreSQL's CREATE DATABASE ... TEMPLATE. A database a test has touched (migrated to an
older revision, filled by a CLI) is left as it is and migrated at start-up as before;
`liaison serve` subprocesses (tests/conftest.py start_subprocess) and the tests of the
migrations still run them for real.

Dropping a PostgreSQL database makes the server take a checkpoint (about half a second);
tests hand their databases to a thread that drops them while the next test runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import shutil
import tempfile
import threading
import uuid
from pathlib import Path

import asyncpg

from service.store.db import create_engine, migrate
from tests.credentials import Credentials, make_credentials

SQLITE = "sqlite+aiosqlite:///"
_lock = threading.Lock()
_sqlite: tuple[Path, Credentials] | None = None
_postgres: dict[str, tuple[str, Credentials]] = {}  # admin URL -> (template's name, creds)
_admin_of: dict[str, str] = {}  # a test database's URL -> the admin URL that made it


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _build(url: str) -> Credentials:
    engine = create_engine(url)
    try:
        await migrate(engine)
        return await make_credentials(engine)
    finally:
        await engine.dispose()


def _run(coro: object) -> object:
    """On a loop of its own, in this (worker) thread: no test's loop is disturbed."""
    return asyncio.run(coro)  # type: ignore[arg-type]


def _sqlite_template() -> tuple[Path, Credentials]:
    global _sqlite
    if _sqlite is None:
        path = Path(tempfile.mkdtemp(prefix="liaison-template-")) / "template.db"
        creds = _run(_build(SQLITE + str(path)))
        assert isinstance(creds, Credentials)
        # Closing the last connection checkpointed the WAL into the file: one file to copy.
        assert not Path(f"{path}-wal").exists() or not Path(f"{path}-wal").stat().st_size
        _sqlite = (path, creds)
    return _sqlite


def _from_sqlite_template(url: str) -> Credentials | None:
    path = Path(url[len(SQLITE):])
    if path.exists() or Path(f"{path}-wal").exists():
        return None  # the test made it: start-up migrates it as before
    template, creds = _sqlite_template()
    shutil.copyfile(template, path)
    return creds


async def _is_empty(url: str) -> bool:
    conn = await asyncpg.connect(_dsn(url))
    try:
        return not await conn.fetchval(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND n.nspname NOT LIKE 'pg_toast%'")
    finally:
        await conn.close()


async def _clone(admin: str, template: str, name: str) -> bool:
    """Swap the empty database `name` for a copy of `template`; False when something
    is connected to it (then it stays as it is)."""
    conn = await asyncpg.connect(_dsn(admin))
    try:
        old = f"{name}_x"
        try:
            await conn.execute(f'ALTER DATABASE "{name}" RENAME TO "{old}"')
        except asyncpg.ObjectInUseError:
            return False
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        await conn.close()
    drop_later(admin, old)
    return True


def _postgres_template(admin: str) -> tuple[str, Credentials]:
    if admin not in _postgres:
        name = f"liaison_t_tmpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        _run(_admin_execute(admin, f'CREATE DATABASE "{name}"'))
        creds = _run(_build(f"{admin.rsplit('/', 1)[0]}/{name}"))
        assert isinstance(creds, Credentials)
        _postgres[admin] = (name, creds)
    return _postgres[admin]


def _from_postgres_template(url: str) -> Credentials | None:
    admin = _admin_of.get(url)
    if admin is None or not _run(_is_empty(url)):
        return None
    template, creds = _postgres_template(admin)
    name = url.rsplit("/", 1)[1]
    return creds if _run(_clone(admin, template, name)) else None


def _prepare(url: str) -> Credentials | None:
    with _lock:
        if url.startswith(SQLITE) and ":memory:" not in url:
            return _from_sqlite_template(url)
        if url.startswith("postgresql"):
            return _from_postgres_template(url)
        return None


async def prepare(url: str) -> Credentials | None:
    """Fill the database at `url` from the template when nothing has touched it yet, and
    return the credentials it then holds; None (the database as it was) otherwise."""
    return await asyncio.to_thread(_prepare, url)


def made_by(url: str, admin: str) -> None:
    """tests/conftest.py postgres_database made `url`, empty, with `admin`."""
    _admin_of[url] = admin


async def _admin_execute(admin: str, sql: str) -> None:
    conn = await asyncpg.connect(_dsn(admin))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


_drops: queue.Queue[tuple[str, str] | None] = queue.Queue()
_dropper: threading.Thread | None = None


def _drop_all() -> None:
    while (item := _drops.get()) is not None:
        admin, name = item
        # Whatever fails (the server gone at the end, say), the thread goes on: finish()
        # waits for it.
        with contextlib.suppress(Exception):
            _run(_admin_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def drop_later(admin: str, name: str) -> None:
    """Drop database `name` in the background (finish() waits for it)."""
    global _dropper
    if _dropper is None:
        _dropper = threading.Thread(target=_drop_all, name="drop-test-databases", daemon=True)
        _dropper.start()
    _drops.put((admin, name))


def finish() -> None:
    """At the end of the session: drop the templates, and wait for every drop."""
    global _dropper, _sqlite
    for admin, (name, _) in _postgres.items():
        drop_later(admin, name)
    _postgres.clear()
    if _dropper is not None:
        _drops.put(None)
        _dropper.join()
        _dropper = None
    if _sqlite is not None:
        shutil.rmtree(_sqlite[0].parent, ignore_errors=True)
        _sqlite = None
