"""Logs never carry narrative text, names or phone numbers, even when a write fails."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import insert

from service.db import create_engine, migrate
from service.tables import CAD_EVENT, utcnow

pytestmark = pytest.mark.asyncio

SECRET = "Jordan Example 727-555-0199 hears voices"


async def test_a_failed_statement_does_not_carry_its_values(database_url: str,
                                                            caplog: pytest.LogCaptureFixture
                                                            ) -> None:
    engine = create_engine(database_url)
    try:
        await migrate(engine)
        row = {"event_id": "dup", "call_id": "c", "source": "generic", "incident_id": "i",
               "type": "created", "occurred_at": utcnow(), "received_at": utcnow(),
               "body": SECRET, "response": "{}"}
        async with engine.begin() as conn:
            await conn.execute(insert(CAD_EVENT).values(**row))
        with caplog.at_level(logging.DEBUG), pytest.raises(Exception) as failed:
            async with engine.begin() as conn:
                await conn.execute(insert(CAD_EVENT).values(**row))  # the same event_id
        # What the writer would log of it (service/writer.py logs the exception).
        logging.getLogger("liaison.writer").error("write failed: %s", failed.value)
        assert "hidden" in str(failed.value) and SECRET not in str(failed.value)
        assert "write failed" in caplog.text and SECRET not in caplog.text
    finally:
        await engine.dispose()
