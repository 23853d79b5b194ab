"""What the structured policy editor asks of the server, on a real server (SQLite and
PostgreSQL): documents not stored — sent as YAML or as the object the editor holds — are
validated (with the object back), tested, dry-run and what-if'd without storing a version;
an invalid one is 422 naming each error's path."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.settings import Settings
from tests.conftest import Server, eventually, running_server
from tests.factories import always_open_policy, as_yaml, doc

pytestmark = pytest.mark.asyncio

CALL = {"channel": "911", "nature_code": "MNTL", "nature_text": "Mental person",
        "narrative": "talking to himself", "priority": 3,
        "occurred_at": "2026-03-10T14:00:00-04:00"}


async def stored_versions(server: Server) -> list[str]:
    r = await server.client.get("/v1/policies")
    return [v["label"] for v in r.json()["versions"]]


def read_doc(path: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    return loaded


def police_first(d: dict[str, Any]) -> dict[str, Any]:
    """`d` with a rule sending mental-health calls to police put before every other."""
    d["rules"].insert(0, {"id": "mntl-police", "category": "mental_health",
                          "action": "police", "when": {"nature_code": ["MNTL"]}})
    return d


async def test_validate_returns_the_object_valid_or_not(server: Server) -> None:
    c = server.client
    d = doc("2")
    # The object the editor holds, in: the same object back, valid, with its label.
    r = await c.post("/v1/policies/validate", json={"document": d})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["valid"] and body["version"] == "st-petersburg-call@2"
    assert body["parsed"] == d
    # YAML text with comments, in: the object it parses to.
    text = "# a comment the object does not keep\n" + as_yaml(d)
    assert (await c.post("/v1/policies/validate", json={"document": text})
            ).json()["parsed"] == d
    # Invalid, but the YAML parses: the object still comes back, beside the errors.
    d["rules"][2]["when"] = {"nature_code": "MNTL"}
    bad = (await c.post("/v1/policies/validate", json={"document": d})).json()
    assert not bad["valid"] and bad["parsed"] == d
    assert bad["errors"][0]["path"] == "rules[2].when.nature_code", bad["errors"]
    # YAML that does not parse (or not to a mapping): no object.
    broken = await c.post("/v1/policies/validate", content="policy: [unclosed\n",
                          headers={"content-type": "text/yaml"})
    assert broken.status_code == 200 and broken.json()["parsed"] is None
    assert (await c.post("/v1/policies/validate", json={"document": "- a list\n"})
            ).json()["parsed"] is None
    # A shadowed rule's warning names the rules by id.
    shadowed = police_first(doc("2"))
    shadowed["rules"].append({"id": "late", "category": "mental_health", "action": "team",
                              "when": {"nature_code": ["MNTL"]}})
    warned = (await c.post("/v1/policies/validate", json={"document": shadowed})).json()
    late = [w for w in warned["warnings"] if w["kind"] == "shadowed" and w["rules"][0] == "late"]
    assert late and "mntl-police" in late[0]["rules"], warned["warnings"]


async def test_unsaved_test_cases_run_without_storing(server: Server) -> None:
    c = server.client
    d = doc("2")
    d["tests"].append({"name": "wrong on purpose",
                       "call": {"nature_code": "MNTL", "nature_text": "Mental person",
                                "occurred_at": "2026-03-10T14:00:00-04:00"},
                       "expect": {"destination": "police"}})
    r = await c.post("/v1/policies/test", json={"document": d})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["version"] == "st-petersburg-call@2 (unsaved)"
    assert not body["passed"] and body["failed"] == 1
    assert [x["name"] for x in body["results"] if not x["passed"]] == ["wrong on purpose"]
    assert len(body["results"]) == len(d["tests"])
    # As YAML text: the same answer.
    assert (await c.post("/v1/policies/test", json={"document": as_yaml(d)})).json() == body
    d["tests"].pop()
    assert (await c.post("/v1/policies/test", json={"document": d})).json()["passed"]
    assert await stored_versions(server) == ["st-petersburg-call@1"]


async def test_unsaved_dry_run_decides_with_the_document(server: Server) -> None:
    c = server.client
    shipped = (await c.post("/v1/policies/dry-run",
                            json={"document": doc("2"), "call": CALL})).json()
    assert shipped["version"] == "st-petersburg-call@2 (unsaved)"
    assert shipped["stopped"]["at"] == "mental-health"
    assert shipped["decision"]["destination"] == "call_team"
    assert shipped["decision"]["policy_version"] == "st-petersburg-call@2"
    # The rule the editor put first decides now; the trace shows it.
    r = await c.post("/v1/policies/dry-run",
                     json={"document": police_first(doc("2")), "call": CALL, "units_busy": 0})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["stopped"] == {"at": "mntl-police", "kind": "rule",
                               "reason": "the first rule that held decides"}
    assert body["decision"]["destination"] == "police"
    assert [t["rule_id"] for t in body["trace"] if t["kind"] == "rule"] == ["mntl-police"]
    # Units busy and the programs' state, as /{version}/dry-run takes them.
    busy = (await c.post("/v1/policies/dry-run", json={
        "document": as_yaml(doc("2")), "call": CALL, "units_busy": 4})).json()
    assert busy["decision"]["not_served_reason"] == "units_busy"
    assert busy["program"]["units_busy"] == 4
    # A rule switched off: in the trace where it stands, untested; the call goes on.
    off = doc("2")
    next(r for r in off["rules"] if r["id"] == "mental-health")["disabled"] = True
    skipped = (await c.post("/v1/policies/dry-run", json={"document": off, "call": CALL})
               ).json()
    assert {"rule_id": "mental-health", "kind": "disabled", "matched": False,
            "checks": []} in skipped["trace"]
    assert skipped["decision"]["destination"] == "police"
    assert skipped["stopped"]["kind"] == "rule" and skipped["stopped"]["at"] != "mental-health"
    assert skipped["stopped"]["reason"] == "no rule held: every rule was tested"
    # A bad call names the field inside `call`.
    bad = await c.post("/v1/policies/dry-run",
                       json={"document": doc("2"), "call": {"nature_code": "MNTL"}})
    assert bad.status_code == 422
    assert [e["field"] for e in bad.json()["detail"]] == ["call.occurred_at"], bad.json()
    assert await stored_versions(server) == ["st-petersburg-call@1"]


async def test_an_invalid_unsaved_document_is_422_with_each_path(server: Server) -> None:
    c = server.client
    d = doc("2")
    d["rules"][0]["colour"] = "red"
    d["program"]["phase"] = 7
    for path, extra in (("/v1/policies/dry-run", {"call": CALL}),
                        ("/v1/policies/test", {}), ("/v1/policies/what-if", {})):
        r = await c.post(path, json={"document": d, **extra})
        assert r.status_code == 422, (path, r.text)
        body = r.json()
        assert {"rules[0].colour", "program.phase"} <= {e["path"] for e in body["errors"]}
        assert {"document.rules[0].colour", "document.program.phase"} <= \
            {e["field"] for e in body["detail"]}
        assert all(e["reason"] for e in body["detail"])
    # Not a document at all: the body's field is named.
    r = await c.post("/v1/policies/test", json={"document": 7})
    assert r.status_code == 422 and r.json()["detail"][0]["field"].startswith("document")
    r = await c.post("/v1/policies/what-if", json={"document": doc("2"), "days": 0})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "days"
    assert await stored_versions(server) == ["st-petersburg-call@1"]


async def test_unsaved_what_if_over_the_last_days(database_url: str, tmp_path: Path) -> None:
    """Round the clock (the always-open policy published), so the baseline sends a mental
    health call to the team whenever the suite runs; the unsaved document sends it to
    police. Only the calls opened in the last `days` days count."""
    path = always_open_policy(tmp_path)
    published = read_doc(path)
    settings = Settings(database_url=database_url, policy=path)
    async with running_server(settings) as server:
        now = datetime.now(UTC)
        for name, ago in (("recent", timedelta(hours=2)), ("last-week", timedelta(days=6)),
                          ("old", timedelta(days=20))):
            r = await server.post_event(incident_id=name,
                                        occurred_at=(now - ago).isoformat())
            assert r.status_code in (200, 201, 202), r.text
        published["policy"]["version"] = "2"
        candidate = police_first(published)
        r = await server.client.post("/v1/policies/what-if",
                                     json={"document": candidate, "days": 7})
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]

        async def done() -> dict[str, Any] | None:
            job: dict[str, Any] = (await server.client.get(f"/v1/what-if/{job_id}")).json()
            return job if job["status"] != "running" else None

        job = await eventually(done, "the what-if to finish", every=0.05)
        assert job["status"] == "done", job
        assert job["candidate"] == "st-petersburg-call@2 (unsaved)"
        assert job["baseline"] == "st-petersburg-call@1"
        assert job["progress"] == {"done": 2, "total": 2}
        report = job["report"]
        assert report["calls"] == 2 and report["changed"] == 2, report
        assert [(g["from_destination"], g["to_destination"], g["candidate_rule"], g["count"])
                for g in report["changes"]] == [("call_team", "police", "mntl-police", 2)]
        assert await stored_versions(server) == ["st-petersburg-call@1"]
        audit = (await server.client.get("/v1/audit", params={"action": "policy.what_if"}))
        assert [e["target"] for e in audit.json()] == ["st-petersburg-call@2 (unsaved)"]



async def test_nature_codes_seen_in_stored_calls(server: Server) -> None:
    now = datetime.now(UTC)

    async def post(code: str, text: str, ago: timedelta, **fields: Any) -> None:
        r = await server.post_event(nature_code=code, nature_text=text,
                                    occurred_at=(now - ago).isoformat(), **fields)
        assert r.status_code in (200, 201, 202), r.text

    hour = timedelta(hours=1)
    for text in ("Mental person non-violent", "Mental person non-violent", "Mental subject"):
        await post("MNTL", text, hour)
    await post("MNTL", "Mental person (drill)", hour, purpose="training")
    await post("MNTL", "Mental person (test)", hour, purpose="test")
    await post("WELF", "Welfare check", hour)
    await post("WELF", "Check welfare", 2 * hour)
    await post("OLDX", "Long ago", timedelta(days=100))

    r = await server.client.get("/v1/policies/nature-codes")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["days"] == 90
    since = datetime.fromisoformat(body["since"])
    assert since.tzinfo is not None and abs(since - (now - timedelta(days=90))) < hour
    # Most calls first; each with its commonest text (a tie: the first text in order);
    # test and training calls and calls before the window left out.
    assert body["codes"] == [
        {"code": "MNTL", "text": "Mental person non-violent", "calls": 3},
        {"code": "WELF", "text": "Check welfare", "calls": 2}]
    wider = (await server.client.get("/v1/policies/nature-codes", params={"days": 200})).json()
    assert wider["days"] == 200 and [c["code"] for c in wider["codes"]] == \
        ["MNTL", "WELF", "OLDX"]
    bad = await server.client.get("/v1/policies/nature-codes", params={"days": 0})
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "query.days"


async def test_yaml_from_the_editors_object_keeps_the_comments(tmp_path: Path) -> None:
    """The editor's save: the object it edited, merged into the YAML it started from, is
    stored as a draft whose parsed form is the object, with the file's comments kept.
    (No storage of its own: SQLite only.)"""
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'l.db'}")
    async with running_server(settings) as server:
        c = server.client
        one = (await c.get("/v1/policies/1")).json()
        edited = copy.deepcopy(one["parsed"])
        edited["policy"]["version"] = "2"
        edited["rules"].insert(0, edited["rules"].pop(3))  # a rule moved first
        edited["rules"].append({"id": "welfare-words", "category": "call_for_assistance",
                                "action": "team", "when": {"text_any": ["check on"]}})
        r = await c.post("/v1/policies/yaml", json={"document": edited,
                                                    "base": one["document"]})
        assert r.status_code == 200, r.text
        text = r.json()["yaml"]
        assert yaml.safe_load(text) == edited
        kept = [line.strip() for line in one["document"].splitlines()
                if line.strip().startswith("#")]
        assert kept and all(line in text for line in kept)
        saved = await c.post("/v1/policies", json={"document": text})
        assert saved.status_code == 201, saved.text
        assert saved.json()["parsed"] == edited and saved.json()["document"] == text
        # No base: a plain dump, read back the same.
        plain = (await c.post("/v1/policies/yaml", json={"document": edited,
                                                         "base": None})).json()["yaml"]
        assert yaml.safe_load(plain) == edited and "#" not in plain
        # Not an object: 422 naming the field.
        bad = await c.post("/v1/policies/yaml", json={"document": "policy: {}"})
        assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "document"
