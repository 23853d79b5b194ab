"""Both real city exports, every row, through `liaison replay` into a real `liaison serve`
(SQLite, the embedded default): every row is accounted for, and what the replay counts as
accepted is what the server stored and the rejects it kept."""

from __future__ import annotations

import csv
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from service.access.auth import Role
from tests.conftest import ROOT, start_subprocess
from tests.shared_data import NASHVILLE, SAN_DIEGO, shared_export


# One export in each order the replay sends in: CAD order as the team's units allow (the
# default: some events go alone, for the decisions a replay of one event at a time would
# make; tests/adapters/test_exports_replay.py holds it to that), and as connections free
# (--unordered; half the time and CPU of the first for a year of Nashville).
@pytest.mark.parametrize("export, profile, order", [(SAN_DIEGO, "san-diego", "cad"),
                                                    (NASHVILLE, "nashville", "sent")])
def test_whole_export_end_to_end(export: str, profile: str, order: str, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = shared_export(export)
    db = tmp_path / "replay.db"
    # A bulk replay of a year is run against a server whose per-key limit is lifted for it
    # (the default, 200 a second, would make this a two-minute test; the replay waits out
    # a 429 as tests/adapters/test_exports_replay.py shows).
    monkeypatch.setenv("LIAISON_RATE_LIMIT_KEY_RATE", "0")
    sp = start_subprocess(f"sqlite+aiosqlite:///{db}", tmp_path)
    try:
        run = subprocess.run(
            [sys.executable, "-m", "api.cli", "replay", str(path), "--profile", profile,
             "--url", sp.base_url, "--as-fast-as-possible", "--json", "--no-progress",
             *(["--unordered"] if order == "sent" else [])],
            cwd=ROOT, env=sp.env(Role.cad), capture_output=True, text=True, timeout=600)
    finally:
        sp.stop()
    assert run.returncode == 0, run.stderr
    s = json.loads(run.stdout)
    assert s["order"] == order
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as f:
        rows = sum(1 for _ in csv.reader(f)) - 1
    assert s["rows"] == rows
    skipped, rejected = sum(s["skipped"].values()), sum(s["rejected"].values())
    assert s["accepted"] + skipped + rejected == s["rows"]
    assert s["accepted"] > rows // 2 and s["stopped"] is None
    with sqlite3.connect(db) as conn:
        calls = conn.execute("SELECT count(*) FROM call").fetchone()[0]
        kept = conn.execute("SELECT count(*) FROM cad_reject").fetchone()[0]
    assert calls == s["accepted"] == sum(s["destinations"].values())
    # Rows the mapping refused were never sent; every row the server refused was kept.
    sent_and_refused = sum(n for why, n in s["rejected"].items()
                           if not why.startswith("not sent"))
    assert kept == sent_and_refused
