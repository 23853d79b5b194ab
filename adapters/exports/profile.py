"""Export profiles: how one city's calls-for-service export becomes generic CAD events.

A profile is data (YAML), validated here; onboarding a city means writing one, not code.
Every error names its path in the document and the reason, as policies do.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from rules.load import PolicyError, errors_from_validation, yaml_error
from rules.models import Channel, Flag

# The same (path, reason) pair a policy error is; one type keeps the rendering in one place.
ProfileError = PolicyError

PROFILES_PACKAGE = "adapters.exports.profiles"
_SLUG = r"^[a-z0-9][a-z0-9_-]*$"


def _text(value: Any) -> Any:
    # YAML reads unquoted digits as numbers and can change them (0123 is 83, 1e3 is 1000.0):
    # city codes are text, so a number here is refused rather than silently altered.
    if isinstance(value, bool | int | float):
        raise ValueError(f"write {value!r} in quotes: codes and column values are text, and "
                         "YAML may change an unquoted number (0123 reads as 83)")
    return value


Text = Annotated[str, BeforeValidator(_text)]


class Strict(BaseModel):
    # A misspelt key must be an error, not a mapping that silently does nothing.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Lookup(Strict):
    """A second CSV that turns the export's value (a code) into text."""

    file: str = Field(description="CSV file beside the export (or beside the profile)")
    key: str = Field(description="its column holding the export's value")
    value: str = Field(description="its column holding what to use instead")
    encoding: str = "utf-8-sig"


class Column(Strict):
    """Where one field comes from: a column, or several joined with `join`.

    Written as a column name, a list of names, or a mapping with the options below."""

    column: str | list[str] = Field(description="column name, or names joined in order")
    join: str = " "
    null_values: list[Text] = Field(
        default=[], description="values that mean 'nothing' besides empty (per column)")
    map: dict[Text, Text] = Field(default={}, description="value -> what to send instead")
    lookup: Lookup | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"column": data} if isinstance(data, str | list) else data

    @field_validator("column")
    @classmethod
    def _named(cls, v: str | list[str]) -> str | list[str]:
        if isinstance(v, list) and not v:
            raise ValueError("name at least one column")
        return v

    @property
    def columns(self) -> list[str]:
        return [self.column] if isinstance(self.column, str) else list(self.column)


class Columns(Strict):
    """Which export columns feed which event fields."""

    incident_id: Column
    received_at: Column = Field(description="when the call was received: the created event")
    closed_at: Column | None = Field(default=None,
                                     description="when it was closed: a closed event")
    nature_code: Column
    nature_text: Column | None = None
    priority: Column | None = None
    address: Column | None = None
    cross_street: Column | None = Field(default=None,
                                        description="sent as 'address / cross street'")
    district: Column | None = None
    lat: Column | None = None
    lon: Column | None = None
    disposition: Column | None = Field(
        default=None, description="reported by `profile check`; no event field carries it")


class Time(Strict):
    """How the export writes times. Exports are local wall-clock time without an offset."""

    format: str = Field(description="strptime format, or 'iso' (an offset given wins)")
    timezone: str = Field(description="IANA zone of the wall-clock times")
    ambiguous: Literal["earlier", "later"] = Field(
        default="earlier", description="a time that happens twice when clocks go back")
    nonexistent: Literal["shift_forward", "reject"] = Field(
        default="shift_forward", description="a time skipped when clocks go forward")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{v}' (use an IANA name such as "
                             "America/Los_Angeles)") from None
        return v


class Events(Strict):
    """How a row becomes events: `created` at `received_at`; `closed` at `closed_at`."""

    assume_closed_after_minutes: int | None = Field(
        default=None, gt=0, le=7 * 24 * 60,
        description="where a row has no close time, send a closed event this long after the "
        "call came in. An assumption (off by default): it frees the team's units in a replay "
        "of an export that never closes its calls")


class When(Strict):
    """A test on a row's raw values: `column` with one of `in`, `prefix`, `empty`;
    or `any`, `all`, `not` over nested tests. Values compare trimmed, case-insensitive."""

    column: str | None = None
    in_: list[Text] | None = Field(default=None, alias="in")
    prefix: list[Text] | None = None
    empty: bool | None = None
    any: list[When] | None = None
    all: list[When] | None = None
    not_: When | None = Field(default=None, alias="not")

    @model_validator(mode="after")
    def _shape(self) -> When:
        tests = [k for k in ("in_", "prefix", "empty") if getattr(self, k) is not None]
        nested = [k for k in ("any", "all", "not_") if getattr(self, k) is not None]
        if self.column is not None:
            if len(tests) != 1 or nested:
                raise ValueError("a test on `column` takes exactly one of `in`, `prefix`, "
                                 "`empty`")
        elif tests:
            raise ValueError(f"`{tests[0].rstrip('_')}` needs a `column`")
        elif len(nested) != 1:
            raise ValueError("give `column` with a test, or one of `any`, `all`, `not`")
        for k in ("any", "all"):
            if getattr(self, k) == []:
                raise ValueError(f"`{k}` needs at least one test")
        return self

    def columns(self) -> set[str]:
        out = {self.column} if self.column else set()
        for sub in [*(self.any or []), *(self.all or []), *([self.not_] if self.not_ else [])]:
            out |= sub.columns()
        return out


class CodeRule(Strict):
    """A city code (on rows where `when` also holds) mapped to what the policy understands."""

    code: list[Text] = Field(min_length=1, description="the export's nature codes")
    when: When | None = None
    nature_code: Text | None = Field(
        default=None, description="the code to send instead (an APCO code the policy names); "
        "left out, the city's code is sent")
    category: str | None = Field(
        default=None, description="the category the policy should reach; `profile check` "
        "compares")
    flags: list[Flag] = Field(default=[], description="what the code implies")

    @field_validator("code")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len({c.strip().upper() for c in v}) != len(v):
            raise ValueError("a code is listed twice")
        return v


class SkipRule(Strict):
    reason: str = Field(pattern=_SLUG, description="reported in summaries")
    when: When


class ChannelRule(Strict):
    channel: Channel
    when: When


class ChannelSpec(Strict):
    default: Channel = "911"
    rules: list[ChannelRule] = Field(default=[], description="the first that holds wins")


class OfficerInitiated(Strict):
    """Rows that are an officer's own activity (traffic stops, business checks)."""

    action: Literal["skip", "tag"] = Field(
        description="skip: not sent, counted; tag: sent with `channel`")
    channel: Channel = "officer_on_scene"
    when: When


class Source(Strict):
    encoding: str = "utf-8-sig"
    delimiter: str = Field(default=",", min_length=1, max_length=1)


class ProfileMeta(Strict):
    id: str = Field(pattern=_SLUG, description="prefixes every event id")
    version: Text = Field(min_length=1)
    name: str | None = None
    description: str | None = None


class Profile(Strict):
    profile: ProfileMeta
    source: Source = Source()
    columns: Columns
    time: Time
    events: Events = Events()
    channel: ChannelSpec = ChannelSpec()
    officer_initiated: OfficerInitiated | None = None
    skip: list[SkipRule] = Field(default=[], description="in order; the first that holds")
    codes: list[CodeRule] = Field(default=[], description="in order; the first that holds")

    @property
    def label(self) -> str:
        return f"{self.profile.id}@{self.profile.version}"

    def referenced_columns(self) -> dict[str, str]:
        """Every export column the profile reads, with the first path that names it."""
        out: dict[str, str] = {}
        for name in Columns.model_fields:
            spec = getattr(self.columns, name)
            if spec is not None:
                for c in spec.columns:
                    out.setdefault(c, f"columns.{name}")
        tests: list[tuple[str, When | None]] = [
            *((f"channel.rules[{i}].when", r.when) for i, r in enumerate(self.channel.rules)),
            ("officer_initiated.when",
             self.officer_initiated.when if self.officer_initiated else None),
            *((f"skip[{i}].when", r.when) for i, r in enumerate(self.skip)),
            *((f"codes[{i}].when", r.when) for i, r in enumerate(self.codes)),
        ]
        for path, when in tests:
            for c in sorted(when.columns()) if when else ():
                out.setdefault(c, path)
        return out


class ProfileInvalid(Exception):
    """A profile that cannot be used; carries every error found."""

    def __init__(self, errors: list[ProfileError], source: str = "profile") -> None:
        self.errors = errors
        self.source = source
        super().__init__(f"{source} is invalid:\n" + "\n".join(f"  {e}" for e in errors))


def parse_profile(document: Any, source: str = "profile") -> Profile:
    if not isinstance(document, dict):
        raise ProfileInvalid([ProfileError("", "a profile must be a mapping at the top")], source)
    try:
        return Profile.model_validate(document)
    except ValidationError as exc:
        raise ProfileInvalid(errors_from_validation(exc), source) from None


def load_profile_text(text: str, source: str = "profile") -> Profile:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProfileInvalid([yaml_error(exc)], source) from None
    return parse_profile(document, source)


def shipped_profiles() -> list[str]:
    return sorted(p.name.removesuffix(".yaml") for p in resources.files(PROFILES_PACKAGE)
                  .iterdir() if p.name.endswith(".yaml"))


def resolve_profile(name_or_path: str) -> tuple[Profile, Path | None]:
    """A shipped profile by name (`san-diego`), or a profile file by path; with the folder
    the profile lives in (where lookups may sit), None for a shipped one."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists() or "/" in name_or_path:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ProfileInvalid([ProfileError("", f"cannot read {path}: {exc.strerror}")],
                                 str(path)) from None
        except UnicodeDecodeError as exc:
            raise ProfileInvalid([ProfileError("", f"{path} is not UTF-8 text ({exc.reason})")],
                                 str(path)) from None
        return load_profile_text(text, str(path)), path.resolve().parent
    if not re.match(_SLUG, name_or_path) or name_or_path not in shipped_profiles():
        raise ProfileInvalid([ProfileError("", f"no shipped profile '{name_or_path}' (shipped: "
                                               f"{', '.join(shipped_profiles())}; or give a "
                                               "path to a .yaml file)")], name_or_path)
    text = resources.files(PROFILES_PACKAGE).joinpath(f"{name_or_path}.yaml").read_text("utf-8")
    return load_profile_text(text, f"shipped profile {name_or_path}"), None
