"""A private PostgreSQL cluster for fault tests: frozen (SIGSTOP), thawed (SIGCONT),
crashed (SIGKILL) and restarted, without touching the machine's shared PostgreSQL.

`initdb` runs once per test session into a template directory; each test gets a copy,
and its own `postgres` on a free port, in a process group of its own so one signal
reaches the postmaster and every backend. The server refuses to run as root, so as root
it runs as the `postgres` user (from a directory under /tmp that user owns).

Without the binaries (Debian's /usr/lib/postgresql/N/bin, or LIAISON_PG_BIN), or as root
without a `postgres` user, the tests using it skip and say why; with CI=true they fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.conftest import free_port, unavailable

SUPERUSER = "liaison"


def _bin_dir() -> Path | None:
    given = os.environ.get("LIAISON_PG_BIN")
    if given:
        return Path(given)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return Path(found[-1]).parent if found else None


def _owner() -> pwd.struct_passwd | None:
    """The account the server runs as: `postgres` as root, else whoever runs the tests."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid())
    with contextlib.suppress(KeyError):
        return pwd.getpwnam("postgres")
    return None


def _chown_tree(path: Path, who: pwd.struct_passwd) -> None:
    if os.geteuid() != 0:
        return
    for root, dirs, files in os.walk(path):
        for name in (root, *(os.path.join(root, n) for n in dirs + files)):
            os.chown(name, who.pw_uid, who.pw_gid)


@dataclass
class PgCluster:
    """One `postgres` of our own. `url(db)` gives a SQLAlchemy URL for a database in it."""

    bin: Path
    home: Path  # owned by the server's account: data/, sockets, log
    owner: pwd.struct_passwd
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    frozen: bool = False

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def log_path(self) -> Path:
        return self.home / "postgres.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """Start the server (again, after a crash: it recovers from its WAL) and wait until
        it takes connections."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen(
            [str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port),
             "-k", str(self.home), "-c", "listen_addresses=127.0.0.1",
             # A test machine, not a durable store: an OS crash is not what is tested (a
             # killed server still recovers: its writes are in the page cache).
             "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=100",
             "-c", "shared_buffers=16MB"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **_as(self.owner))
        log.close()
        self.frozen = False
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited at start:\n{self.log()}")
            if self._answers():
                return
            time.sleep(0.05)
        raise TimeoutError(f"postgres did not start:\n{self.log()}")

    async def restart(self) -> None:
        """`start` from async code (after `crash`), without blocking the event loop."""
        await asyncio.to_thread(self.start)

    async def acrash(self) -> None:
        await asyncio.to_thread(self.crash)

    def _answers(self) -> bool:
        async def probe() -> None:
            conn = await asyncpg.connect(self.dsn(), timeout=2)
            await conn.close()

        try:
            _in_thread(probe())
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return False
        return True

    def _signal(self, sig: signal.Signals) -> None:
        """Signal the postmaster and every backend and helper it forked. (Each child calls
        setsid(), so a process group does not reach them.) The postmaster is held first,
        so it forks nothing while its children are found."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)
        for pid in _children(self.proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        os.kill(self.proc.pid, sig)

    def freeze(self) -> None:
        """SIGSTOP every process of the server: connections open, nothing answers."""
        self._signal(signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        self._signal(signal.SIGCONT)
        self.frozen = False

    def crash(self) -> None:
        """SIGKILL every process of the server, as a crash would."""
        assert self.proc is not None
        children = _children(self.proc.pid)
        self._signal(signal.SIGKILL)
        self.frozen = False
        self.proc.wait(10)
        # A killed process is gone once reaped (init reaps the orphaned backends).
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(pid) for pid in children):
            time.sleep(0.02)
        with contextlib.suppress(FileNotFoundError):
            (self.data / "postmaster.pid").unlink()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        if self.frozen:
            self.thaw()
        self.proc.send_signal(signal.SIGINT)  # fast shutdown
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.crash()

    def create_database(self, name: str) -> str:
        async def create() -> None:
            conn = await asyncpg.connect(self.dsn(), timeout=10)
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()

        _in_thread(create())
        return self.url(name)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except FileNotFoundError:
            return "(no log)"


def _alive(pid: int) -> bool:
    """Running, or stopped; not gone and not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def _in_thread(coro: Any) -> Any:
    """Run a coroutine to its end on a loop of its own (callers may be inside a loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _children(ppid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so read after its last ')'.
        if int(stat.rpartition(")")[2].split()[1]) == ppid:
            found.append(int(entry))
    return found


def _prerequisites() -> tuple[Path, pwd.struct_passwd]:
    bin_dir = _bin_dir()
    if bin_dir is None or not (bin_dir / "initdb").exists():
        unavailable("private PostgreSQL cluster tests skipped: no PostgreSQL server binaries "
                    "(install Debian's postgresql package, or set LIAISON_PG_BIN to the "
                    "directory holding initdb and postgres)")
    owner = _owner()
    if owner is None:
        unavailable("private PostgreSQL cluster tests skipped: running as root without a "
                    "`postgres` account to run the server as (it refuses root)")
    assert bin_dir is not None and owner is not None
    return bin_dir, owner


def _as(owner: pwd.struct_passwd) -> dict[str, Any]:
    """subprocess arguments to run as `owner` (as root; otherwise as ourselves)."""
    if os.geteuid() != 0:
        return {}
    return {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}


def _run_as(owner: pwd.struct_passwd, cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, check=False, **_as(owner))
    if done.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed:\n{done.stdout.decode()}{done.stderr.decode()}")


@pytest.fixture(scope="session")
def _pg_template() -> Iterator[tuple[Path, pwd.struct_passwd, Path]]:
    """initdb once per session; tests copy the result."""
    bin_dir, owner = _prerequisites()
    home = Path(tempfile.mkdtemp(prefix="liaison-pg-template-"))
    try:
        os.chmod(home, 0o755)
        _chown_tree(home, owner)
        _run_as(owner, [str(bin_dir / "initdb"), "-D", str(home / "data"), "-U", SUPERUSER,
                        "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"])
        yield bin_dir, owner, home / "data"
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def pg_cluster(_pg_template: tuple[Path, pwd.struct_passwd, Path]) -> Iterator[PgCluster]:
    """A running private PostgreSQL for one test, stopped and removed afterwards."""
    bin_dir, owner, template = _pg_template
    home = Path(tempfile.mkdtemp(prefix="liaison-pg-"))
    os.chmod(home, 0o755)
    shutil.copytree(template, home / "data", symlinks=True)
    os.chmod(home / "data", 0o700)
    _chown_tree(home, owner)
    cluster = PgCluster(bin_dir, home, owner)
    try:
        cluster.start()
        yield cluster
    finally:
        try:
            cluster.stop()
        finally:
            shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def pg_cluster_url(pg_cluster: PgCluster) -> str:
    """A fresh database in the private cluster, as a SQLAlchemy URL."""
    return pg_cluster.create_database("liaison")
