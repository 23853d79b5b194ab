"""The lock files name every dependency pyproject.toml declares: a dependency added without
`make lock` would otherwise be installed by nobody (make setup installs from the lock)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    """PEP 503 normalised name of a requirement such as 'uvicorn[standard]>=0.29'."""
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def _locked(path: Path) -> set[str]:
    names = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", path.read_text(), re.MULTILINE)
    return {re.sub(r"[-_.]+", "-", n).lower() for n in names}


PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
RUNTIME = {_name(r) for r in PROJECT["dependencies"]}
DEV = {_name(r) for r in PROJECT["optional-dependencies"]["dev"]}


@pytest.mark.parametrize(("lock", "wanted"), [("requirements.lock", RUNTIME),
                                              ("requirements-dev.lock", RUNTIME | DEV)])
def test_every_declared_dependency_is_locked(lock: str, wanted: set[str]) -> None:
    missing = wanted - _locked(ROOT / lock)
    assert not missing, f"{lock} lacks {sorted(missing)}: run `make lock`"


def test_the_lock_pins_with_hashes() -> None:
    # make setup installs with --require-hashes: every pin needs its hashes.
    text = (ROOT / "requirements-dev.lock").read_text()
    pins = re.findall(r"^[A-Za-z0-9][A-Za-z0-9._-]*==.* \\\n\s+--hash=sha256:", text,
                      re.MULTILINE)
    assert len(pins) == len(_locked(ROOT / "requirements-dev.lock"))
