"""The CAD event route's short way (api/cad.py EventRoute): a JSON body validated once,
from its bytes. It must take exactly what FastAPI's own way takes, as the same event,
and leave everything else to it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import TypeAdapter
from starlette.requests import Request

from api.cad import _json_event
from service.calls.event import CallEvent
from tests.conftest import Server
from tests.factories import event

pytestmark = pytest.mark.asyncio


def request(body: bytes, content_type: str | None) -> Request:
    headers = [] if content_type is None else [(b"content-type", content_type.encode())]
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request({"type": "http", "method": "POST", "path": "/v1/cad/events",
                    "headers": headers, "query_string": b""}, receive)


async def test_a_valid_json_body_is_the_event_fastapi_would_make() -> None:
    doc = event(person={"id": "P-1", "name": "Ana Núñez", "age": "34"}, flags=["weapon"],
                location={"address": "1 Main St", "lat": 27.5, "lon": -82.5})
    body = json.dumps(doc).encode()
    for kind in ("application/json", "application/json; charset=utf-8", "Application/JSON"):
        got = await _json_event(request(body, kind))
        assert got is not None, kind
        # FastAPI's way: json.loads, then the model in python mode.
        want = TypeAdapter(CallEvent).validate_python(json.loads(body))
        assert got == want and got.model_fields_set == want.model_fields_set


async def test_everything_else_is_left_to_fastapi() -> None:
    ok = json.dumps(event()).encode()
    assert await _json_event(request(ok, None)) is None  # no content type
    assert await _json_event(request(ok, "text/plain")) is None
    assert await _json_event(request(ok, "application/cad+json")) is None  # FastAPI's to read
    assert await _json_event(request(b"", "application/json")) is None
    assert await _json_event(request(b"{not json", "application/json")) is None
    bad = {**event(), "channel": "pager"}
    assert await _json_event(request(json.dumps(bad).encode(), "application/json")) is None


async def test_a_body_refused_while_read_is_left_to_fastapi() -> None:
    """api/limits.py refuses an oversized or NUL-bearing body by raising from receive;
    FastAPI's way turns that into the refusal it always sent."""

    class Refused(Exception):
        pass

    async def receive() -> dict[str, Any]:
        raise Refused

    refused = Request({"type": "http", "method": "POST", "path": "/v1/cad/events",
                       "headers": [(b"content-type", b"application/json")],
                       "query_string": b""}, receive)
    assert await _json_event(refused) is None


async def test_both_ways_answer_alike(server: Server) -> None:
    """The short way (application/json) and FastAPI's (+json, which only it reads) store
    and answer the same event the same; a refusal is FastAPI's either way."""
    answers = []
    for i, kind in enumerate(("application/json", "application/vnd.cad+json")):
        doc = event(event_id=f"both-{i}", incident_id=f"BOTH-{i}", nature_code="MNTL")
        r = await server.client.post("/v1/cad/events", content=json.dumps(doc).encode(),
                                     headers={"content-type": kind})
        assert r.status_code == 202, r.text
        body = r.json()
        assert body["event_id"] == f"both-{i}"
        answers.append({k: body["decision"][k] for k in ("destination", "category",
                                                         "matched_rules", "policy_version")})
    assert answers[0] == answers[1]
    for kind in ("application/json", "application/vnd.cad+json"):
        bad = {**event(event_id="bad", incident_id="BAD"), "channel": "pager"}
        r = await server.client.post("/v1/cad/events", content=json.dumps(bad).encode(),
                                     headers={"content-type": kind})
        assert r.status_code == 422
        assert [d["field"] for d in r.json()["detail"]] == ["channel"]
