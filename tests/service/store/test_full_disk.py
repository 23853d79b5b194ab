"""SQLite on a full disk: every write is answered 503 with Retry-After (never a 500, never a
dropped connection), reads and credentials still work, /v1/health says writes are
failing, and once there is room again health comes back by itself and the CAD's retries
are taken.

The disk is a small tmpfs the test mounts (root only; elsewhere the test skips and says
why) and fills with a file; Liaison is a real uvicorn over real sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.access import auth
from service.access.auth import Role
from service.settings import Settings
from tests.conftest import running_server
from tests.factories import event

pytestmark = pytest.mark.asyncio

PASSWORD = "a long enough password"


@contextlib.contextmanager
def small_disk(tmp_path: Path, size: str = "16m") -> Iterator[Path]:
    """A tmpfs of `size`, mounted for the test and unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("full-disk test skipped: mounting a small tmpfs needs root")
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755",
                           "liaison-full-disk", str(mount)], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        pytest.skip(f"full-disk test skipped: cannot mount a tmpfs here "
                    f"({done.stderr.strip() or done.returncode})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(mount: Path) -> Path:
    """Take every free byte of the filesystem with one file."""
    filler = mount / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for chunk in (1 << 20, 1 << 12, 1):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * chunk):
                    pass
    finally:
        os.close(fd)
    assert os.statvfs(mount).f_bavail == 0
    return filler


async def test_a_full_disk_is_503_for_writes_health_says_so_and_it_recovers(
        tmp_path: Path) -> None:
    with small_disk(tmp_path) as mount:
        settings = Settings(database_url=f"sqlite+aiosqlite:///{mount / 'liaison.db'}")
        async with running_server(settings) as server:
            engine = server.runtime.engine
            first = await server.post_event()
            assert first.status_code == 202, first.text
            # Keys and a person never used yet: their first use writes (last use, a
            # session), which the full disk refuses.
            cad_key, _ = await auth.create_key(engine, "fresh-cad", role=Role.cad,
                                               source="*")
            reader_key, _ = await auth.create_key(engine, "fresh-reader",
                                                  role=Role.supervisor, source="*")
            await auth.add_user(engine, "nav-full", Role.call_team, PASSWORD)
            filler = fill(mount)

            async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as raw:
                # Writes: 202 while SQLite still finds room in its files, then 503s; never
                # a 500, never a dropped connection.
                answers: list[int] = []
                taken: list[tuple[dict[str, Any], str]] = []  # (event, its call)
                refused: list[dict[str, Any]] = []
                while len(refused) < 3:
                    assert len(answers) < 200, f"the full disk never refused a write: {answers}"
                    body = event(narrative="Caller worried about her neighbour. " * 20)
                    r = await raw.post("/v1/cad/events", json=body,
                                       headers={"authorization": f"Bearer {cad_key}"})
                    answers.append(r.status_code)
                    assert r.status_code in (202, 503), (r.status_code, r.text)
                    if r.status_code == 503:
                        assert r.headers["retry-after"] == "1"
                        assert r.json()["error"] == "unavailable"
                        refused.append(body)
                    else:
                        taken.append((body, r.json()["call_id"]))

                health = await raw.get("/v1/health")
                assert health.status_code == 503, health.text
                problems = health.json()["problems"]
                assert any(p.startswith("writes are failing") and "full" in p
                           for p in problems), problems

                # Reads still work, with a key used for the first time (its last use is
                # not recorded, and that does not stop it)...
                reader = {"authorization": f"Bearer {reader_key}"}
                r = await raw.get("/v1/session", headers=reader)
                assert r.status_code == 200, (r.status_code, r.text)
                assert r.json()["username"] == "fresh-reader"
                # ...except a look at a call, which is not given unless it is on record
                # (the audit log is a write).
                call_id = first.json()["call_id"]
                r = await raw.get(f"/v1/calls/{call_id}", headers=reader)
                assert r.status_code == 503, (r.status_code, r.text)
                # A login has to write its session: 503, not 500 and not 401.
                r = await raw.post("/v1/session", json={"username": "nav-full",
                                                        "password": PASSWORD})
                assert r.status_code == 503, (r.status_code, r.text)
                assert r.headers["retry-after"] == "1"

                # Room again: health finds out by itself (its write probe), retries are taken.
                filler.unlink()
                deadline = time.monotonic() + 30
                while (await raw.get("/v1/health")).status_code != 200:
                    assert time.monotonic() < deadline, "health never came back"
                    await asyncio.sleep(0.1)
                for body in refused:
                    r = await raw.post("/v1/cad/events", json=body,
                                       headers={"authorization": f"Bearer {cad_key}"})
                    assert r.status_code == 202, (r.status_code, r.text)
                    taken.append((body, r.json()["call_id"]))
                r = await raw.post("/v1/session", json={"username": "nav-full",
                                                        "password": PASSWORD})
                assert r.status_code == 200, r.text

            for body, stored_in in taken:  # every event answered 202 is stored, once
                r = await server.client.get(f"/v1/calls/{stored_in}")
                assert r.status_code == 200, r.text
                events = [e["event_id"] for e in r.json()["events"]]
                assert events == [body["event_id"]], events
            print(f"\nfull disk: answers in order {answers}")
