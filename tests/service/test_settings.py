"""Settings come from arguments, then LIAISON_* environment variables, then defaults."""

from __future__ import annotations

import pytest

from api.cli import _settings, build_parser
from service.settings import Settings


def test_defaults_are_sqlite_and_the_shipped_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIAISON_DATABASE_URL", raising=False)
    monkeypatch.delenv("LIAISON_POLICY", raising=False)
    s = Settings()
    assert s.database_url == "sqlite+aiosqlite:///./liaison.db"
    assert s.policy == ""


def test_environment_then_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIAISON_DATABASE_URL", "postgresql+asyncpg://u:p@db/liaison")
    monkeypatch.setenv("LIAISON_POLICY", "/etc/liaison/policy.yaml")
    from_env = _settings(build_parser().parse_args(["serve"]))
    assert from_env.database_url == "postgresql+asyncpg://u:p@db/liaison"
    assert from_env.policy == "/etc/liaison/policy.yaml"
    given = _settings(build_parser().parse_args(
        ["serve", "--database-url", "sqlite+aiosqlite:///x.db", "--policy", "p.yaml",
         "--port", "9001"]))
    assert (given.database_url, given.policy, given.port) == (
        "sqlite+aiosqlite:///x.db", "p.yaml", 9001)
