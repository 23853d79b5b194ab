"""The city-editable mapping of EIDO incident and call types (apco_mapping.yaml).

A broken file is refused with every error's path and reason; check one with
`python -m adapters.eido.mapping check FILE`.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rules.load import error_path
from rules.models import Channel, Flag

# The form of a common incident type code: the registry's values are upper-case letters
# and digits (911H, MNTL, NCRTASKFORCE). Liaison does not ship the registry itself.
CODE_PATTERN = re.compile(r"^[A-Z0-9]{2,16}$")
SHIPPED = "apco_mapping.yaml"


class IncidentType(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = Field(min_length=1, max_length=500)
    flags: list[Flag] = Field(default_factory=list)
    channel: Channel | None = None
    note: str = ""


class Mapping(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    incident_types: dict[str, IncidentType]
    call_types: dict[str, Channel] = Field(default_factory=dict)

    @field_validator("call_types")
    @classmethod
    def _call_keys(cls, v: dict[str, Channel]) -> dict[str, Channel]:
        keys = [call_type_key(k) for k in v]
        if len(set(keys)) != len(keys):
            raise ValueError("two call types are the same once case, spaces, '-' and '_' "
                             "are ignored")
        return {call_type_key(k): c for k, c in v.items()}

    def incident_type(self, code: str) -> IncidentType | None:
        return self.incident_types.get(code)

    def channel_for_call_type(self, call_type: str) -> Channel | None:
        return self.call_types.get(call_type_key(call_type))


def call_type_key(value: str) -> str:
    return re.sub(r"[\s_\-]", "", str(value)).lower()


@dataclass(frozen=True)
class MappingError:
    field: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}


class MappingInvalid(Exception):
    """A mapping file that cannot be used; carries every error found."""

    def __init__(self, errors: list[MappingError], source: str) -> None:
        self.errors = errors
        self.source = source
        super().__init__(f"EIDO mapping {source} is invalid:\n"
                         + "\n".join(f"  {e.field or '(file)'}: {e.reason}" for e in errors))


def parse_mapping(text: str, source: str = SHIPPED) -> Mapping:
    """Validate a mapping document's text; raise MappingInvalid naming each error."""
    try:
        doc: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MappingInvalid([MappingError("", f"not YAML: {exc}")], source) from exc
    if not isinstance(doc, dict):
        raise MappingInvalid([MappingError("", "the mapping must be a YAML mapping at the top")],
                             source)
    # Checked on the raw document so a bad code is reported beside every other error.
    types = doc.get("incident_types")
    errors = [MappingError(f"incident_types.{code}", "not a common incident type code "
                                                     "(upper-case letters and digits)")
              for code in (types if isinstance(types, dict) else {})
              if not CODE_PATTERN.match(str(code))]
    try:
        mapping = Mapping.model_validate(doc)
    except ValidationError as exc:
        errors += [MappingError(error_path(e["loc"]), e["msg"].removeprefix("Value error, "))
                   for e in exc.errors()]
    if errors:
        raise MappingInvalid(errors, source)
    return mapping


def shipped_text() -> str:
    return resources.files("adapters.eido").joinpath(SHIPPED).read_text(encoding="utf-8")


def load_mapping(path: str = "") -> Mapping:
    """The mapping at `path`, or the shipped one when `path` is empty."""
    if not path:
        return parse_mapping(shipped_text())
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingInvalid([MappingError("", f"cannot read it: {exc}")], path) from exc
    return parse_mapping(text, path)


class MappingCache:
    """Re-reads the file when it changes, so a city's edit applies without a restart."""

    def __init__(self) -> None:
        self._key: tuple[str, int] | None = None
        self._mapping: Mapping | None = None

    def get(self, path: str) -> Mapping:
        stamp = Path(path).stat().st_mtime_ns if path and Path(path).exists() else 0
        key = (path, stamp)
        if self._mapping is None or key != self._key:
            self._mapping = load_mapping(path)
            self._key = key
        return self._mapping


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "check":
        print("usage: python -m adapters.eido.mapping check FILE", file=sys.stderr)
        return 2
    try:
        mapping = load_mapping(args[1])
    except MappingInvalid as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"{args[1]}: {len(mapping.incident_types)} incident types, "
          f"{len(mapping.call_types)} call types")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
