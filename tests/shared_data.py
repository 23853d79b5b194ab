"""The reference material the tests read in place from ../shared (never copied): NENA's EIDO
files and a schema validator built from its OpenAPI file, and the real city CAD exports.
A clone without ../shared skips these tests and says why, under CI too: the material is
public and lives beside the project, not in it, and a clone may be tested alone. (What CI
must never skip is what the repo installs itself: PostgreSQL, Chromium.)"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest
import yaml

from adapters.exports.mapping import Mapper
from adapters.exports.profile import resolve_profile
from tests.conftest import ROOT

SHARED_EIDO = ROOT.parent / "shared" / "eido"
SAMPLE = "NENA911-EIDO-JSON/Samples/Sample call transfer EIDO.json"
SAMPLE_2021 = ("NENA911-EIDO-JSON/history/sample_v2021-05_b980190/Samples/"
               "Sample call transfer EIDO.json")
DRAFT_2020 = "NENA911-EIDO-JSON/history/draft_2020_0a0f33a/Samples/Sample_EIDO.json"
JCARD = "PhrSite-EidoLib/Testing/EidoUnitTests/EidoTestFiles/EidoWithJcard.json"
THIRD_PARTY = (
    "third_party_nonconformant/DevKlim-sentinelai/eido-agent/sample_eido/EIDO_Report_e73bac13.json",
    "third_party_nonconformant/DevKlim-sentinelai/eido-agent/sample_eido/EIDO_Report_eca17e1a.json",
    "third_party_nonconformant/DevKlim-sentinelai/eido-agent/eido_templates/general_incident.json",
)
SCHEMA_HEAD = "NENA911-EIDO-JSON/Schema/openapi.yaml"
SCHEMA_021_1B = "NENA911-EIDO-JSON/history/NENA-STA-021.1b_c3b8d20/Schema/openapi.yaml"


def shared_eido() -> Path:
    """The reference folder; a clone without ../shared skips."""
    if not SHARED_EIDO.is_dir():
        pytest.skip(f"EIDO reference material not found at {SHARED_EIDO}: it sits beside "
                    "the project as ../shared/eido (a fresh clone has none)",
                    allow_module_level=True)
    return SHARED_EIDO


def shared_json(relative: str) -> Any:
    return json.loads((shared_eido() / relative).read_text(encoding="utf-8"))


def _yaml(path: Path) -> Any:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))

    def coerce(node: Any) -> Any:
        # The 021.1.1 draft has `minItems: 1,` (a string); a validator needs the integer.
        if isinstance(node, dict):
            return {k: (int(str(v).strip(" ,")) if k in ("minItems", "maxItems")
                        and isinstance(v, str) else coerce(v)) for k, v in node.items()}
        if isinstance(node, list):
            return [coerce(v) for v in node]
        return node

    return coerce(doc)


@cache
def schema_validator(relative: str = SCHEMA_HEAD) -> Any:
    """Draft 7 validation of EmergencyIncidentDataObjectType, with every component
    reference (NIEMComponents/*.yaml included) resolved from the shared folder."""
    from jsonschema import Draft7Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT7

    base = shared_eido()
    niem = base / "NENA911-EIDO-JSON/Schema/NIEMComponents"

    def retrieve(uri: str) -> Resource:
        path = Path(unquote(urlparse(uri).path))
        if path.parent.name == "NIEMComponents":
            # The 021.1b schema was kept without its NIEM folder; the files are the same.
            path = niem / path.name
        return Resource.from_contents(_yaml(path), default_specification=DRAFT7)

    root = (base / relative).resolve()
    registry: Registry = Registry(retrieve=retrieve)  # type: ignore[call-arg]
    schema = {"$ref": root.as_uri() + "#/components/schemas/EmergencyIncidentDataObjectType"}
    return Draft7Validator(schema, registry=registry)


def schema_errors(document: Any, relative: str = SCHEMA_HEAD) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in schema_validator(relative).iter_errors(document)]


# -- the real city exports (../shared/data) ------------------------------------------

SHARED_DATA = ROOT.parent / "shared" / "data"
SAN_DIEGO = "san_diego/pd_calls_for_service_2023_datasd.csv"
NASHVILLE = "nashville/calls_2024.csv"
SAN_DIEGO_ROWS = 26_595
NASHVILLE_ROWS = 26_935
SAN_JOSE = [f"san_jose/sampled_file{year}.csv" for year in (2022, 2023, 2024)]
MILWAUKEE = "milwaukee/data.csv"
MILWAUKEE_ROWS = 33_968


def shared_export(relative: str) -> Path:
    """A real export; a clone without ../shared skips."""
    path = SHARED_DATA / relative
    if not path.is_file():
        pytest.skip(f"real CAD export not found at {path}: the city extracts sit beside the "
                    "project as ../shared/data (a fresh clone has none)", allow_module_level=True)
    return path


def shipped_mapper(name: str, export: Path) -> Mapper:
    profile, where = resolve_profile(name)
    return Mapper.for_export(profile, export, where)
