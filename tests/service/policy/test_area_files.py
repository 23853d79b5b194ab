"""A policy whose programs name area files (GeoJSON beside it) is kept whole: the version
stored when the service starts on it, and a draft the `liaison policy` command sends,
carry the polygons inline, so an instance that reads the stored version (no file beside
it) decides the same, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from rules.load import load_policy_text
from service.access.auth import Role
from service.policy import store
from service.settings import Settings
from tests.conftest import running_server
from tests.factories import (
    DOWNTOWN,
    IN_DOWNTOWN,
    OUT_OF_TOWN,
    as_role,
    event,
    liaison,
    programs_doc,
)

pytestmark = pytest.mark.asyncio


def policy_with_area_file(folder: Path, version: str = "1") -> Path:
    doc = programs_doc()
    doc["policy"]["version"] = version
    field = doc["programs"][0]
    field["hours"] = {"daily": ["00:00-24:00"]}
    field["area"] = {"file": "areas/downtown.geojson"}
    (folder / "areas").mkdir(exist_ok=True)
    (folder / "areas" / "downtown.geojson").write_text(json.dumps(DOWNTOWN))
    path = folder / f"policy-{version}.yaml"
    path.write_text("# our city\n" + yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def located(where: dict[str, float]) -> dict[str, Any]:
    return event(nature_code="VAG", priority=4, location={"address": "1 Main St", **where})


async def test_the_stored_version_carries_its_area_files_inline(database_url: str,
                                                                tmp_path: Path) -> None:
    path = policy_with_area_file(tmp_path)
    async with running_server(Settings(database_url=database_url, policy=str(path))) as s:
        row = await store.published(s.runtime.engine)
        assert row is not None
        stored = load_policy_text(row.document, "stored")  # no file beside it: reads alone
        [field, *_] = stored.programs or []
        assert field.area is not None and field.area.polygons == DOWNTOWN
        assert field.area.file is None and "areas/downtown.geojson" in row.document
        creds = s.creds
    # Another instance, given no file, puts the stored version in force and decides alike.
    async with running_server(Settings(database_url=database_url), creds=creds) as s:
        assert s.runtime.policy.compiled.version == "three-programs@1"
        inside = await s.client.post("/v1/cad/events", json=located(IN_DOWNTOWN))
        outside = await s.client.post("/v1/cad/events", json=located(OUT_OF_TOWN))
        assert inside.json()["decision"]["destination"] == "call_team", inside.text
        assert outside.json()["decision"]["not_served_reason"] == "outside_area", outside.text

        # A draft sent from a file by `liaison policy create` takes its areas with it.
        draft = policy_with_area_file(tmp_path, version="2")
        code, out, err = await liaison("policy", "create", str(draft), "--url", s.base_url,
                                       env=as_role(s, Role.supervisor))
        assert code == 0, err
        created = await store.get_version(s.runtime.engine, "2")
        assert load_policy_text(created.document).programs[0].area.polygons == DOWNTOWN
        assert '"status": "draft"' in out
