"""The layering contract (.importlinter) holds, and an import that climbs a layer breaks it
with a message naming that import (lint-imports also runs in `make test`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("rules", "routing", "service", "adapters", "api")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    # Run where `root` is first on the path, so its packages are the ones analysed.
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--config",
                           str(root / ".importlinter")],
                          cwd=root, env=env, capture_output=True, text=True, timeout=300)


def test_the_repository_keeps_its_layers() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_an_upward_import_is_named(tmp_path: Path) -> None:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.yaml", "*.html"))
    shutil.copy(ROOT / ".importlinter", tmp_path)
    fold = tmp_path / "service" / "calls" / "fold.py"
    fold.write_text(fold.read_text() + "\nfrom adapters.outbound import backoff  # noqa\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "service is not allowed to import adapters" in result.stdout
    assert "service.calls.fold -> adapters.outbound" in result.stdout
