"""A CAD time is an RFC 3339 string with an offset, from 1970-01-01T00:00:00Z to a day past
Liaison's clock; anything else is a 422 naming the field and the range, never a 503 a CAD
would retry for ever. Over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from service.calls.event import CallEvent
from tests.conftest import Server
from tests.factories import event

REFUSED: list[Any] = [
    "0001-01-01T00:00:00+00:00",    # overflowed to a 503 before
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:59:59-05:00",
    "9999-12-31T23:59:59+00:00",
    "1969-12-31T23:59:59Z",         # one second before the range
    "-1",                           # was read as a Unix time
    "1700000000",
    -1,
    1700000000,
    1700000000.5,
    "2026-03-10",                   # a date is not a time
    "2026-03-10T14:00Z",            # RFC 3339 has seconds
    "2026-03-10T14:00:00-0400",     # and a colon in the offset
    "2026-03-10T14:00:00",          # and an offset
    True,
]


@pytest.mark.asyncio
async def test_impossible_times_are_refused_naming_the_field(server: Server) -> None:
    for value in REFUSED:
        r = await server.client.post("/v1/cad/events", json=event(occurred_at=value))
        assert r.status_code == 422, (value, r.status_code, r.text)
        [detail] = r.json()["detail"]
        assert detail["field"] == "occurred_at", (value, detail)
        assert "1970-01-01T00:00:00Z" in detail["reason"], (value, detail)
    ahead = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    r = await server.client.post("/v1/cad/events", json=event(occurred_at=ahead))
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "occurred_at"
    assert "ahead" in r.json()["detail"][0]["reason"]


@pytest.mark.asyncio
async def test_times_within_the_range_are_taken(server: Server) -> None:
    for value in ("1970-01-01T00:00:00Z",               # the oldest export a city may replay
                  "2023-01-01T10:46:00.123456-08:00",
                  "2026-03-10 14:00:00-04:00",           # RFC 3339 allows a space
                  (datetime.now(UTC) + timedelta(hours=23)).isoformat()):  # a clock ahead
        r = await server.client.post("/v1/cad/events", json=event(occurred_at=value))
        assert r.status_code == 202, (value, r.text)


@pytest.mark.asyncio
async def test_an_eido_with_an_impossible_time_is_refused(server: Server) -> None:
    from tests.factories import eido

    for at in ("0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00",
               "9999-12-31T23:59:59"):
        r = await server.client.post("/v1/cad/eido", json=eido(unique=f"t{at[:4]}", at=at))
        assert r.status_code == 422, (at, r.text)
        fields = {d["field"]: d["reason"] for d in r.json()["detail"]}
        assert "lastUpdateTimeStamp" in fields, (at, fields)
        assert "1970-01-01T00:00:00Z" in fields["lastUpdateTimeStamp"]


def test_the_model_refuses_what_the_route_refuses() -> None:
    """Adapters build CallEvents from Python values: a number is no time there either."""
    for value in (-1, 0, 1.5, "0", datetime(1, 1, 1, tzinfo=UTC),
                  datetime(9999, 1, 1, tzinfo=UTC)):
        with pytest.raises(ValidationError) as refused:
            CallEvent.model_validate(event(occurred_at=value))
        assert refused.value.errors()[0]["loc"] == ("occurred_at",)
    ok = CallEvent.model_validate(event(occurred_at=datetime(2020, 5, 1, tzinfo=UTC)))
    assert ok.occurred_at.year == 2020
