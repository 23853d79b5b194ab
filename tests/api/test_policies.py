"""The policy workbench on a real server, SQLite and PostgreSQL: drafts (and 422 with
every error's path), validation warnings, tests gating publish, publish and rollback
switching new decisions, diffs, dry-runs that store nothing, YAML export round-trips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import func, select

from rules.load import default_policy_text
from service.settings import Settings
from service.store.tables import BOARD, CAD_EVENT, CALL, DECISION, POLICY_VERSION
from tests.conftest import Server, eventually, running_server, start_subprocess
from tests.factories import as_yaml, doc, event, programs_doc

pytestmark = pytest.mark.asyncio

SHIPPED = "st-petersburg-call@1"


# How far ahead a publish is scheduled: far enough that the request is still before it
# when the server handles it, even on a loaded machine (1-2 s was not, in CI).
AHEAD = timedelta(seconds=5)


async def post_yaml(client: httpx.AsyncClient, text: str) -> httpx.Response:
    return await client.post("/v1/policies", content=text,
                             headers={"content-type": "text/yaml"})


async def decided_version(server: Server) -> str:
    r = await server.post_event()
    assert r.status_code in (200, 201, 202), r.text
    return r.json()["decision"]["policy_version"]  # type: ignore[no-any-return]


async def counts(server: Server) -> dict[str, int]:
    out = {}
    async with server.runtime.engine.connect() as conn:
        for t in (CALL, CAD_EVENT, DECISION, BOARD, POLICY_VERSION):
            out[t.name] = (await conn.execute(select(func.count()).select_from(t))).scalar_one()
    return out


async def test_first_start_stores_the_shipped_policy_as_published(server: Server) -> None:
    r = await server.client.get("/v1/policies")
    assert r.status_code == 200, r.text
    versions = r.json()["versions"]
    assert [(v["label"], v["status"], v["author"]) for v in versions] == \
        [(SHIPPED, "published", "system")]
    assert r.json()["in_force"] == SHIPPED
    one = (await server.client.get("/v1/policies/1")).json()
    assert one["document"] == default_policy_text()
    assert one["parsed"]["policy"]["id"] == "st-petersburg-call"


async def test_broken_draft_is_422_with_every_path(server: Server) -> None:
    d = doc("2")
    d["rules"][0]["colour"] = "red"
    d["program"]["phase"] = 7
    r = await post_yaml(server.client, as_yaml(d))
    assert r.status_code == 422, r.text
    paths = {e["path"] for e in r.json()["errors"]}
    assert {"rules[0].colour", "program.phase"} <= paths, r.json()
    assert all(e["reason"] for e in r.json()["errors"])
    # YAML sent without a YAML content type is still read as YAML.
    plain = await server.client.post("/v1/policies", content=as_yaml(d))
    assert plain.status_code == 422 and plain.json()["errors"] == r.json()["errors"]
    bad = await post_yaml(server.client, "policy: [unclosed\n")
    assert bad.status_code == 422 and "line" in bad.json()["errors"][0]["path"]
    # Nothing was stored, and the service kept its policy.
    assert len((await server.client.get("/v1/policies")).json()["versions"]) == 1
    assert await decided_version(server) == SHIPPED


async def test_validate_shows_warnings_and_gaps(server: Server) -> None:
    await server.post_event(nature_code="ZZUNKNOWN", nature_text="Something odd")
    d = doc("2")
    d["rules"].append({"id": "late-mental", "category": "mental_health", "action": "team",
                       "when": {"nature_code": ["MNTL"]}})
    r = await server.client.post("/v1/policies/validate", json={"document": as_yaml(d)})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["valid"] and body["errors"] == []
    shadowed = [w for w in body["warnings"] if w["kind"] == "shadowed"]
    assert shadowed and shadowed[0]["rules"][0] == "late-mental", body["warnings"]
    gaps = [w for w in body["warnings"] if w["kind"] == "gap"]
    assert any("ZZUNKNOWN" in w["message"] for w in gaps), gaps
    d["program"]["phase"] = 9
    bad = (await server.client.post("/v1/policies/validate", json={"document": d})).json()
    assert not bad["valid"] and bad["errors"][0]["path"] == "program.phase"


async def test_publish_refused_when_a_test_case_fails(server: Server) -> None:
    d = doc("2")
    d["tests"].append({"name": "wrong on purpose",
                       "call": {"nature_code": "MNTL", "nature_text": "Mental person",
                                "occurred_at": "2026-03-10T14:00:00-04:00"},
                       "expect": {"destination": "police"}})
    assert (await post_yaml(server.client, as_yaml(d))).status_code == 201
    tested = (await server.client.post("/v1/policies/2/test")).json()
    assert not tested["passed"] and tested["failed"] == 1
    r = await server.client.post("/v1/policies/2/publish")
    assert r.status_code == 409, r.text
    assert r.json()["failed"][0]["name"] == "wrong on purpose"
    assert await decided_version(server) == SHIPPED
    # A label is unique per policy id.
    assert (await post_yaml(server.client, as_yaml(d))).status_code == 409


async def test_publish_rollback_diff_and_export(server: Server) -> None:
    c = server.client
    d2 = doc("2")
    d2["policy"]["description"] = "Version two."
    r = await c.post("/v1/policies", json={"document": as_yaml(d2), "author": "sup-1",
                                           "comment": "new description"})
    assert r.status_code == 201, r.text
    draft = r.json()
    assert draft["status"] == "draft" and draft["author"] == "test-supervisor"
    assert "+  description: Version two." in draft["diff_from_parent"]
    assert draft["parent_id"] == 1

    diff = (await c.get("/v1/policies/2/diff")).json()
    assert diff["from"] == SHIPPED and diff["to"] == "st-petersburg-call@2"
    assert "-  version: '1'" in diff["diff"] or '-  version: "1"' in diff["diff"]
    assert "+  description: Version two." in diff["diff"]

    assert await decided_version(server) == SHIPPED
    r = await c.post("/v1/policies/2/publish")
    assert r.status_code == 200, r.text
    assert r.json()["in_force"] == "st-petersburg-call@2"
    assert await decided_version(server) == "st-petersburg-call@2"
    health = (await c.get("/v1/health")).json()
    assert health["policy"]["version"] == "st-petersburg-call@2"
    statuses = {v["version"]: v["status"] for v in (await c.get("/v1/policies")).json()["versions"]}
    assert statuses == {"1": "superseded", "2": "published"}
    assert (await c.post("/v1/policies/2/publish")).status_code == 409

    r = await c.post("/v1/policies/1/rollback")
    assert r.status_code == 200, r.text
    assert await decided_version(server) == SHIPPED
    assert (await c.get("/v1/health")).json()["policy"]["version"] == SHIPPED
    statuses = {v["version"]: v["status"] for v in (await c.get("/v1/policies")).json()["versions"]}
    assert statuses == {"1": "published", "2": "superseded"}

    # Export round-trips: the YAML as stored, re-imported, is the same document.
    exported = await c.get("/v1/policies/2", params={"format": "yaml"})
    assert exported.headers["content-type"].startswith("text/yaml")
    assert exported.text == as_yaml(d2)
    again = exported.text.replace("version: '2'", "version: '3'")
    r = await post_yaml(c, again)
    assert r.status_code == 201, r.text
    three = (await c.get("/v1/policies/3")).json()
    assert three["document"] == again
    two = (await c.get("/v1/policies/2")).json()["parsed"]
    two["policy"]["version"] = "3"
    assert three["parsed"] == two


async def test_scheduled_publish_takes_effect_when_due(server: Server) -> None:
    assert (await post_yaml(server.client, as_yaml(doc("2")))).status_code == 201
    at = (await server.client.get("/v1/health")).json()  # a request, to be sure it is up
    assert at["status"] == "ok"
    when = datetime.now(UTC) + AHEAD
    r = await server.client.post("/v1/policies/2/publish", json={"at": when.isoformat()})
    assert r.status_code == 200 and r.json()["scheduled"], r.text
    assert await decided_version(server) == SHIPPED
    await eventually(lambda: server.runtime.policy.compiled.version == "st-petersburg-call@2",
                     "the scheduled publish to take effect", every=0.2)
    assert await decided_version(server) == "st-petersburg-call@2"


async def until_due_publishes_are_handled(server: Server, label: str) -> dict[str, Any]:
    """Wait until the scheduled publish of `label` is no longer pending; its summary."""
    async def handled() -> dict[str, Any] | None:
        row = next(v for v in (await server.client.get("/v1/policies")).json()["versions"]
                   if v["label"] == label)
        return dict(row) if row["publish_at"] is None else None

    found: dict[str, Any] = await eventually(handled, f"the scheduled publish of {label} "
                                             "to be handled", every=0.2)
    return found


async def a_poll_after(server: Server, moment: datetime) -> None:
    """Until the policy poller (service/policy/region.py: publishes what is due, adopts
    what was published) has run a whole round that began after `moment`: the positive
    signal that what a poll would have done by then is done, instead of a sleep."""
    holder = server.runtime.region
    finished: list[datetime] = []  # when each round that finished began
    real_sync = holder.sync

    async def sync(engine: Any) -> bool:
        began = datetime.now(UTC)
        changed = await real_sync(engine)
        finished.append(began)
        return changed

    holder.sync = sync  # type: ignore[method-assign]  # watched: the loop calls self.sync
    try:
        await eventually(lambda: any(began > moment for began in finished),
                         "a policy poll after the moment", every=0.05)
    finally:
        del holder.sync


async def test_a_scheduled_publish_does_not_undo_a_version_published_since(
        server: Server) -> None:
    """Scheduled over the shipped version, due after a fix went in: the fix stays in force
    and the schedule is dropped with a note, not carried out."""
    c = server.client
    for v in ("2", "3"):
        assert (await post_yaml(c, as_yaml(doc(v)))).status_code == 201
    when = datetime.now(UTC) + AHEAD
    r = await c.post("/v1/policies/2/publish", json={"at": when.isoformat()})
    assert r.status_code == 200 and r.json()["scheduled"], r.text
    assert (await c.post("/v1/policies/3/publish", json={})).status_code == 200  # the fix
    two = await until_due_publishes_are_handled(server, "st-petersburg-call@2")
    assert two["status"] == "draft"
    assert "st-petersburg-call@3 was published after this was scheduled over " \
           "st-petersburg-call@1" in two["schedule_note"]
    assert server.runtime.policy.compiled.version == "st-petersburg-call@3"
    assert await decided_version(server) == "st-petersburg-call@3"
    # Scheduled again, over the version now in force: it publishes, and the note is gone.
    when = datetime.now(UTC) + AHEAD
    r = await c.post("/v1/policies/2/publish", json={"at": when.isoformat()})
    assert r.status_code == 200 and r.json()["schedule_note"] is None, r.text
    two = await until_due_publishes_are_handled(server, "st-petersburg-call@2")
    assert two["status"] == "published" and two["schedule_note"] is None
    # Dropped because of a rollback this time, then published at once: the note goes.
    assert (await post_yaml(c, as_yaml(doc("4")))).status_code == 201
    when = datetime.now(UTC) + AHEAD
    assert (await c.post("/v1/policies/4/publish", json={"at": when.isoformat()})
            ).status_code == 200
    assert (await c.post("/v1/policies/3/rollback")).status_code == 200
    four = await until_due_publishes_are_handled(server, "st-petersburg-call@4")
    assert four["status"] == "draft" and "st-petersburg-call@3 was published" in \
        four["schedule_note"]
    r = await c.post("/v1/policies/4/publish", json={})
    assert r.status_code == 200 and r.json()["schedule_note"] is None, r.text


async def test_a_scheduled_publish_can_be_cancelled(server: Server) -> None:
    c = server.client
    assert (await post_yaml(c, as_yaml(doc("2")))).status_code == 201
    when = datetime.now(UTC) + AHEAD
    assert (await c.post("/v1/policies/2/publish", json={"at": when.isoformat()})
            ).status_code == 200
    r = await c.post("/v1/policies/2/unschedule")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "draft" and r.json()["publish_at"] is None
    again = await c.post("/v1/policies/2/unschedule")
    assert again.status_code == 409 and "no scheduled publish" in again.json()["message"]
    await a_poll_after(server, when)  # past the time it would have published
    assert server.runtime.policy.compiled.version == SHIPPED
    two = (await c.get("/v1/policies/2")).json()
    assert two["status"] == "draft"
    audit = (await c.get("/v1/audit", params={"action": "policy.unschedule"})).json()
    assert [e["target"] for e in audit] == ["st-petersburg-call@2"]


async def test_dry_run_traces_and_stores_nothing(server: Server) -> None:
    await server.post_event()
    before = await counts(server)
    call = {"channel": "911", "nature_code": "MNTL", "nature_text": "Mental person",
            "narrative": "talking to himself", "priority": 3,
            "occurred_at": "2026-03-10T14:00:00-04:00", "units_busy": 4}
    r = await server.client.post("/v1/policies/1/dry-run", json=call)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["decision"]["policy_version"] == SHIPPED
    assert body["decision"]["not_served_reason"] == "units_busy"
    assert body["stopped"]["at"] == "mental-health"
    kinds = [t["kind"] for t in body["trace"]]
    assert kinds[0] == "exclusion" and kinds[-1] == "rule"
    # Every exclusion is in the trace, then rules in order until the one that held.
    assert [t["rule_id"] for t in body["trace"] if t["kind"] == "rule"][-1] == "mental-health"
    held = [t for t in body["trace"] if t["rule_id"] == "mental-health"][0]
    assert held["matched"] and any(c["held"] and c["field"] == "nature_code"
                                   for c in held["checks"])
    assert {"field", "op", "expected", "actual", "held"} <= set(held["checks"][0])
    assert [s["setting"] for s in body["shaped_by"]] == ["hours", "capacity"]
    assert body["program"]["units_busy"] == 4 and body["factors"]
    # The shipped programs, in order: the field team refused it (units busy; the dry run
    # here keeps no queue), the crisis line does not take mental health.
    assert [(p["id"], p["outcome"]) for p in body["programs"]] == [
        ("call", "refused"), ("crisis-line", "not_tried")], body["programs"]
    night = {**call, "units_busy": 0, "occurred_at": "2026-03-10T03:00:00-04:00"}
    off = (await server.client.post("/v1/policies/1/dry-run", json=night)).json()
    assert off["shaped_by"][0]["setting"] == "hours"
    assert off["decision"]["not_served_reason"] == "off_hours"
    bad = await server.client.post("/v1/policies/1/dry-run", json={"nature_code": "X"})
    assert bad.status_code == 422
    assert (await counts(server)) == before
    assert (await server.client.post("/v1/policies/99/dry-run", json=call)).status_code == 404


async def test_publish_on_one_instance_reaches_another(postgres_url: str,
                                                       tmp_path: Path) -> None:
    """PostgreSQL, two `liaison serve` processes: publish on A, B decides with it."""
    url = postgres_url
    a = start_subprocess(url, tmp_path)
    b = start_subprocess(url, tmp_path)
    if True:
        try:
            async with a.client() as ca, b.client() as cb:
                r = await post_yaml(ca, as_yaml(doc("2")))
                assert r.status_code == 201, r.text
                assert (await ca.post("/v1/policies/2/publish")).status_code == 200

                async def b_decides_with_2() -> bool:
                    r = await cb.post("/v1/cad/events", json=event())
                    return bool(r.json()["decision"]["policy_version"]
                                == "st-petersburg-call@2")

                await eventually(b_decides_with_2, "B to switch to the new version",
                                 every=0.5)
        finally:
            a.stop()
            b.stop()


async def test_explicit_policy_file_stays_in_force_until_a_publish(database_url: str,
                                                                   tmp_path: Path) -> None:
    """The documented choice: a --policy file that differs from the published version is
    in force (and not stored) until a version is published through the API; without
    --policy, a restart puts the published version in force."""
    async with running_server(Settings(database_url=database_url)) as s:
        assert await decided_version(s) == SHIPPED
    path = tmp_path / "five.yaml"
    path.write_text(as_yaml(doc("5")), encoding="utf-8")
    async with running_server(Settings(database_url=database_url, policy=str(path))) as s:
        assert await decided_version(s) == "st-petersburg-call@5"
        listed = (await s.client.get("/v1/policies")).json()["versions"]
        assert [(v["version"], v["status"]) for v in listed] == [("1", "published")]
        await a_poll_after(s, datetime.now(UTC))  # a poll: the file stays in force
        assert await decided_version(s) == "st-petersburg-call@5"
        assert (await post_yaml(s.client, as_yaml(doc("2")))).status_code == 201
        assert (await s.client.post("/v1/policies/2/publish")).status_code == 200
        assert await decided_version(s) == "st-petersburg-call@2"
    async with running_server(Settings(database_url=database_url)) as s:
        assert await decided_version(s) == "st-petersburg-call@2"


async def test_dry_run_accounts_for_each_program(tmp_path: Path) -> None:
    """A policy of programs: each program, in order, with what it did and why; the
    programs' state, given, lets the call wait as the live service would keep it."""
    path = tmp_path / "programs.yaml"
    path.write_text(yaml.safe_dump(programs_doc(), sort_keys=False), encoding="utf-8")
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'l.db'}",
                        policy=str(path))
    async with running_server(settings) as server:
        call = {"nature_code": "MNTL", "priority": 3, "district": "D1",
                "occurred_at": "2026-03-10T14:00:00-04:00",
                "programs": {"field": {"units_busy": 2}}}
        r = await server.client.post("/v1/policies/1/dry-run", json=call)
        assert r.status_code == 200, r.text
        progs = {p["id"]: p for p in r.json()["programs"]}
        assert list(progs) == ["field", "co-response", "line"]
        assert progs["field"]["outcome"] == "refused"
        assert "all 2 of its units are busy" in progs["field"]["factors"][0]
        assert [s["setting"] for s in progs["field"]["shaped_by"]] == ["hours", "capacity"]
        assert progs["co-response"]["outcome"] == "took"
        assert progs["line"] == {**progs["line"], "outcome": "not_tried",
                                 "takes_category": False, "factors": [], "shaped_by": []}
        both = {**call, "programs": {"field": {"units_busy": 2},
                                     "co-response": {"units_busy": 1}}}
        queued = (await server.client.post("/v1/policies/1/dry-run", json=both)).json()
        assert queued["decision"]["queued"]["position"] == 1
        assert [p["outcome"] for p in queued["programs"]] == ["queued", "refused", "not_tried"]
        bad = await server.client.post("/v1/policies/1/dry-run", json={
            **call, "programs": {"field": {"units_busy": -1}}})
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["field"] == "programs.field.units_busy"
