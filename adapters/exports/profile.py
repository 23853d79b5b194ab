"""Export profiles: how one city's calls-for-service export becomes generic CAD events.

A profile is data (YAML), validated here; onboarding a city means writing one, not code.
Every error names its path in the document and the reason, as policies do.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from routing.jurisdiction import AGENCY_ID
from rules.load import PolicyError, error_path, yaml_error
from rules.models import Channel, Flag

# The same (path, reason) pair a policy error is; one type keeps the rendering in one place.
ProfileError = PolicyError
_ZERO = timedelta(0)

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

# Tags of the fields written in two shapes (a list or a mapping); a validation error's path
# leaves them out, so it reads as the document is written (`codes[0].code[0]`).
_ONE, _MANY = "<one>", "<many>"


def _one_or_many(value: Any) -> str:
    return _MANY if isinstance(value, list) else _ONE


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a regular expression: {exc}") from None
    return value


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
    format: str | list[str] | None = Field(
        default=None, description="received_at and closed_at only: this column's own time "
        "format(s), in place of time.format; time.pattern does not apply to it")
    pattern: str | None = Field(
        default=None, description="received_at and closed_at only: this column's own "
        "time.pattern (read with its own format, else time.format)")

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, v: str | None) -> str | None:
        return _time_pattern(v)

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

    @model_validator(mode="after")
    def _times_only(self) -> Columns:
        for name in type(self).model_fields:
            spec = getattr(self, name)
            if name not in TIME_COLUMNS and spec is not None and (
                    spec.format is not None or spec.pattern is not None):
                raise ValueError(f"{name}: `format` and `pattern` belong to received_at and "
                                 "closed_at only")
        return self


TIME_COLUMNS = ("received_at", "closed_at")


def _time_pattern(value: str | None) -> str | None:
    if value is None:
        return None
    _regex(value)
    if "time" not in re.compile(value).groupindex:
        raise ValueError("a time pattern needs a named group `(?P<time>...)`: the part read "
                         "with the format (the rest is left out)")
    return value


class DstMarks(Strict):
    """What the `dst` part of a time pattern says: which values mean daylight time and
    which standard time. It settles the hour that happens twice when clocks go back."""

    daylight: list[Text] = Field(min_length=1)
    standard: list[Text] = Field(min_length=1)


class Time(Strict):
    """How the export writes times. Exports are local wall-clock time without an offset."""

    format: str | list[str] | None = Field(
        default=None, description="strptime format, or 'iso' (an offset given wins); or a "
        "list of them, tried in order. Needed unless every time column gives its own")
    pattern: str | None = Field(
        default=None, description="a regular expression the whole value must match; its "
        "named group `time` is read with the format, the rest is left out (a `PD` suffix). "
        "A named group `dst`, with `dst` below, settles the repeated hour")
    dst: DstMarks | None = None
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

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, v: str | None) -> str | None:
        return _time_pattern(v)

    @field_validator("format")
    @classmethod
    def _formats(cls, v: str | list[str] | None) -> str | list[str] | None:
        if v == []:
            raise ValueError("give at least one format")
        return v

    @model_validator(mode="after")
    def _dst_group(self) -> Time:
        if self.dst is not None and (self.pattern is None
                                     or "dst" not in re.compile(self.pattern).groupindex):
            raise ValueError("`dst` reads the pattern's named group `(?P<dst>...)`: give "
                             "`pattern` with one")
        return self


class Events(Strict):
    """How a row becomes events: `created` at `received_at`; `closed` at `closed_at`."""

    assume_closed_after_minutes: int | None = Field(
        default=None, gt=0, le=7 * 24 * 60,
        description="where a row has no close time, send a closed event this long after the "
        "call came in. An assumption (off by default): it frees the team's units in a replay "
        "of an export that never closes its calls")


# The tests on one value, in the order they are named in messages.
VALUE_TESTS = ("in_", "prefix", "suffix", "contains", "regex")
_NAMES = "`in`, `prefix`, `suffix`, `contains`, `regex`"


class Match(Strict):
    """One test on a value: `in` (whole values), `prefix`, `suffix`, `contains` (any of
    the listed), or `regex` (searched; anchor it with ^ and $). Trimmed, case-insensitive."""

    in_: list[Text] | None = Field(default=None, alias="in", min_length=1)
    prefix: list[Text] | None = Field(default=None, min_length=1)
    suffix: list[Text] | None = Field(default=None, min_length=1)
    contains: list[Text] | None = Field(default=None, min_length=1)
    regex: str | None = None

    @field_validator("regex")
    @classmethod
    def _compiles(cls, v: str | None) -> str | None:
        return None if v is None else _regex(v)

    def tests(self) -> list[str]:
        return [k for k in VALUE_TESTS if getattr(self, k) is not None]

    @model_validator(mode="after")
    def _one(self) -> Match:
        if type(self) is Match and len(self.tests()) != 1:
            raise ValueError(f"give exactly one of {_NAMES}")
        return self

    def values(self) -> list[str]:
        """What it looks for, as written."""
        found = getattr(self, self.tests()[0])
        return [found] if isinstance(found, str) else list(found)


class When(Match):
    """A test on a row's raw values: `column` with one of `in`, `prefix`, `suffix`,
    `contains`, `regex`, `empty`; or `any`, `all`, `not` over nested tests. Values compare
    trimmed, case-insensitive."""

    column: str | None = None
    empty: bool | None = None
    any: list[When] | None = None
    all: list[When] | None = None
    not_: When | None = Field(default=None, alias="not")

    @model_validator(mode="after")
    def _shape(self) -> When:
        tests = [*self.tests(), *(["empty"] if self.empty is not None else [])]
        nested = [k for k in ("any", "all", "not_") if getattr(self, k) is not None]
        if self.column is not None:
            if len(tests) != 1 or nested:
                raise ValueError(f"a test on `column` takes exactly one of {_NAMES}, "
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
    """A city code (on rows where `when` also holds) mapped to what the policy understands.

    `code` is a list of whole codes, or one test on the code (`{suffix: [-DV]}`); `text` a
    test on the nature text as read (after any lookup). Give at least one of `code`,
    `text`, `when`; every one given must hold."""

    code: Annotated[
        Annotated[list[Text], Tag(_MANY)] | Annotated[Match, Tag(_ONE)],
        Discriminator(_one_or_many),
    ] | None = Field(default=None, description="the export's nature codes, or a test on them")
    text: Match | None = Field(default=None, description="a test on the nature text")
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
    def _unique(cls, v: list[str] | Match | None) -> list[str] | Match | None:
        if isinstance(v, list):
            if not v:
                raise ValueError("List should have at least 1 item after validation, not 0")
            if len({c.strip().upper() for c in v}) != len(v):
                raise ValueError("a code is listed twice")
        return v

    @model_validator(mode="after")
    def _some_test(self) -> CodeRule:
        if self.code is None and self.text is None and self.when is None:
            raise ValueError("give `code`, `text` or `when`: what the rule applies to")
        return self

    def looks_for(self) -> list[str]:
        """The codes and text the rule names, as written (for `profile check`'s warnings)."""
        out = list(self.code) if isinstance(self.code, list) else \
            self.code.values() if self.code else []
        return out + (self.text.values() if self.text else [])


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
    """Rows that are an officer's own activity (traffic stops, business checks). One rule,
    or a list of them with an action each: the first whose `when` holds."""

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
    agency: str | None = Field(
        default=None, pattern=AGENCY_ID, description="the agency the export's calls are "
        "for, in a region of several (issue 17): every created event names it "
        "(`liaison replay --agency` overrides it); left out, the server decides by the CAD "
        "key, district or place")


class Profile(Strict):
    profile: ProfileMeta
    source: Source = Source()
    columns: Columns
    time: Time
    events: Events = Events()
    channel: ChannelSpec = ChannelSpec()
    officer_initiated: Annotated[
        Annotated[OfficerInitiated, Tag(_ONE)] | Annotated[list[OfficerInitiated], Tag(_MANY)],
        Discriminator(_one_or_many),
    ] | None = None
    skip: list[SkipRule] = Field(default=[], description="in order; the first that holds")
    codes: list[CodeRule] = Field(default=[], description="in order; the first that holds")

    @model_validator(mode="after")
    def _every_time_has_a_format(self) -> Profile:
        if self.time.format is None:
            for name in TIME_COLUMNS:
                spec = getattr(self.columns, name)
                if spec is not None and spec.format is None:
                    raise ValueError(f"time.format: give the time format here, or on "
                                     f"columns.{name} (`format`)")
        return self

    @property
    def label(self) -> str:
        return f"{self.profile.id}@{self.profile.version}"

    @property
    def officer_rules(self) -> list[OfficerInitiated]:
        oi = self.officer_initiated
        return [] if oi is None else [oi] if isinstance(oi, OfficerInitiated) else list(oi)

    def referenced_columns(self, *, leave_out: Collection[str] = ()) -> dict[str, str]:
        """Every export column the profile reads, with the first path that names it;
        `leave_out`: the `columns` entries (e.g. `incident_id`) not counted."""
        out: dict[str, str] = {}
        for name in Columns.model_fields:
            if name in leave_out:
                continue
            spec = getattr(self.columns, name)
            if spec is not None:
                for c in spec.columns:
                    out.setdefault(c, f"columns.{name}")
        many = isinstance(self.officer_initiated, list)
        tests: list[tuple[str, When | None]] = [
            *((f"channel.rules[{i}].when", r.when) for i, r in enumerate(self.channel.rules)),
            *((f"officer_initiated{f'[{i}]' if many else ''}.when", r.when)
              for i, r in enumerate(self.officer_rules)),
            *((f"skip[{i}].when", r.when) for i, r in enumerate(self.skip)),
            *((f"codes[{i}].when", r.when) for i, r in enumerate(self.codes)),
        ]
        for path, when in tests:
            for c in sorted(when.columns()) if when else ():
                out.setdefault(c, path)
        return out


def agency_id(text: str) -> str:
    """An agency id as the server names them (`liaison agency list`): the `--agency` of
    `replay` and `simulate`."""
    if not re.match(AGENCY_ID, text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an agency id (lower-case "
                                         "letters, digits, - and _)")
    return text


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
        raise ProfileInvalid([ProfileError(error_path([p for p in e["loc"]
                                                        if p not in (_ONE, _MANY)]),
                                           e["msg"].removeprefix("Value error, "))
                              for e in exc.errors()], source) from None


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


# What a city's code or text says when the call is one the team must not take alone: a
# code rule that hints a team category for one of these, or a call the policy would give
# the team, is worth a second look (`profile check` warns).
SAFETY_WORDS = re.compile(
    r"(?<![A-Z0-9])(DV|DOMESTIC|WEAPONS?|GUNS?|FIREARMS?|SHOTS?|SHOOT(?:ING|ER)?|"
    r"SHOTSPOTTER|KNIFE|KNIVES|STAB(?:BING|BED)?|ASSAULT|BATTERY|ARMED|HOSTAGE|ROBBERY|"
    r"HOMICIDE|MURDER|KIDNAP(?:PING)?|ABDUCTION|RAPE)(?![A-Z])", re.IGNORECASE)


def looks_unsafe(value: str | None) -> str | None:
    """The safety word in a code or text, if it has one (`DV` in `BATTERY-DV`)."""
    found = SAFETY_WORDS.search(value) if value else None
    return found.group(1).upper() if found else None


def rule_warnings(profile: Profile) -> list[str]:
    """Code rules that give a team category to codes or text that look like a safety
    exclusion (domestic violence, weapons, shots, assault...)."""
    out = []
    for i, rule in enumerate(profile.codes):
        unsafe = [v for v in rule.looks_for() if looks_unsafe(v)]
        if rule.category and unsafe:
            out.append(f"codes[{i}]: category {rule.category} for {', '.join(unsafe)}, which "
                       f"looks like a safety exclusion ({looks_unsafe(unsafe[0])})")
    return out


def zone_warning(profile: Profile, policy_zone: str, policy: str,
                 at: datetime | None = None) -> str | None:
    """A warning when the profile's times and the policy's hours are in different zones:
    every hours decision would be made on the policy's clock, not the city's."""
    mine = profile.time.timezone
    if mine == policy_zone:
        return None
    at = at or datetime.now(UTC)
    gap = ((at.astimezone(ZoneInfo(policy_zone)).utcoffset() or _ZERO)
           - (at.astimezone(ZoneInfo(mine)).utcoffset() or _ZERO))
    hours = gap.total_seconds() / 3600
    gap_text = (f"{abs(hours):g} h {'ahead of' if hours > 0 else 'behind'} the city's clock"
                if hours else "the same offset on that day, but other rules")
    return (f"the profile's times are {mine} but policy {policy} keeps team hours in "
            f"{policy_zone} ({gap_text} on {at:%Y-%m-%d}): every hours decision is made on "
            f"{policy_zone} time. Set the policy's program.timezone to {mine} to model the "
            "city's hours")
