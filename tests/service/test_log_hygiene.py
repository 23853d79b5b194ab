"""Logs never carry narrative text, names or phone numbers, even when a write fails."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text

from service.settings import Settings
from tests.conftest import running_server

pytestmark = pytest.mark.asyncio

NAME, PHONE, WORDS = "Jordan Example", "727-555-0199", "hears voices"


async def test_a_failed_write_logs_none_of_its_values(database_url: str,
                                                      caplog: pytest.LogCaptureFixture
                                                      ) -> None:
    async with running_server(Settings(database_url=database_url)) as server:
        # The database refuses this call (standing in for any fault during a write): the
        # real writer fails on the real statement, with the values in its parameters.
        async with server.runtime.engine.begin() as conn:
            if server.runtime.settings.is_postgres:
                await conn.execute(text(
                    "ALTER TABLE call ADD CONSTRAINT refused_by_the_test "
                    f"CHECK (narrative IS NULL OR narrative NOT LIKE '%{WORDS}%')"))
            else:
                await conn.execute(text(
                    "CREATE TRIGGER refused_by_the_test BEFORE INSERT ON call "
                    f"WHEN NEW.narrative LIKE '%{WORDS}%' "
                    "BEGIN SELECT RAISE(ABORT, 'refused_by_the_test'); END"))
        with caplog.at_level(logging.DEBUG):
            r = await server.post_event(narrative=f"Sister says he {WORDS}.",
                                        person={"name": NAME, "phone": PHONE})
            ok = await server.post_event()  # and the writer goes on
    assert r.status_code == 503, r.text
    assert ok.status_code == 202, ok.text
    failed = [rec for rec in caplog.records
              if rec.name == "liaison.writer" and rec.levelno >= logging.ERROR]
    assert failed, "the failed write was not logged"
    assert "refused_by_the_test" in caplog.text  # the log says what went wrong...
    for secret in (NAME, PHONE, WORDS):  # ...and none of what the call said
        assert secret not in caplog.text, secret
        assert secret not in r.text
