"""The generic CAD event: Liaison's own JSON contract, and what every adapter produces."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from rules.models import Channel, Flag

EventType = Literal["created", "updated", "closed"]
Purpose = Literal["live", "test", "training"]
AgeGroup = Literal["youth", "adult"]

# The times Liaison takes from a CAD: from the start of 1970 (an old export replayed) to a
# day past Liaison's clock (a CAD clock running ahead, a time zone set wrong). Outside it a
# time is a mistake that would otherwise overflow a conversion or skew every fold.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
AHEAD = timedelta(days=1)
RANGE = "from 1970-01-01T00:00:00Z to 24 hours ahead of Liaison's clock"
# RFC 3339 section 5.6: seconds and an offset (Z or ±hh:mm) are required; a space may
# stand for the T.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?")
_NOT_A_TIME = ("must be an RFC 3339 date-time with its offset, e.g. 2026-03-10T14:02:11-04:00, "
               f"{RANGE}")


def _rfc3339(value: Any) -> Any:
    """Only a string in RFC 3339 form (or a datetime an adapter made): no Unix times."""
    if isinstance(value, datetime):
        return value
    found = _RFC3339.fullmatch(value) if isinstance(value, str) else None
    if found is None:
        raise ValueError(_NOT_A_TIME)
    if found.group(2) is None:
        raise ValueError(f"has no timezone offset; {_NOT_A_TIME}")
    return value


def in_range(value: datetime, *, now: datetime | None = None) -> str | None:
    """Why a CAD time is out of the accepted range, or None when it is in it."""
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 with an offset: not a time on any clock
        return f"is out of range: CAD times run {RANGE}"
    if utc < EARLIEST:
        return f"is before 1970-01-01T00:00:00Z: CAD times run {RANGE}"
    if utc > (now or datetime.now(UTC)) + AHEAD:
        return f"is more than 24 hours ahead of Liaison's clock: CAD times run {RANGE}"
    return None


CadTime = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]


class Location(BaseModel):
    model_config = ConfigDict(extra="forbid")

    address: str | None = Field(default=None, max_length=500)
    district: str | None = Field(default=None, max_length=120)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)


class Person(BaseModel):
    """Who the call is about, where the CAD knows. Personal details: shown to the CALL
    team and supervisors only, never logged."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, min_length=1, max_length=120,
                           description="the CAD's person or master-name record id; "
                                       "links repeat contacts")
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=40)
    age: int | None = Field(default=None, ge=0, le=130)
    age_group: AgeGroup | None = Field(default=None,
                                       description="when the CAD gives a group, not an age")


class Referral(BaseModel):
    """An officer's referral to the team (channel `officer_referral`)."""

    model_config = ConfigDict(extra="forbid")

    officer_id: str = Field(min_length=1, max_length=120, description="badge or user id")
    unit: str | None = Field(default=None, max_length=64)
    consent: bool = Field(description="the person agreed to be contacted by the team")
    contact: str | None = Field(default=None, max_length=200,
                                description="how to reach the person, if they gave it")


class CallEvent(BaseModel):
    """One CAD event about one incident. Fields an `updated` event leaves out keep their
    earlier values; `created` must say what the call is."""

    # A misspelt field is an error the CAD integrator needs to see, not data to drop.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "event_id": "cad-7f3a-0001",
                "incident_id": "2026-031000123",
                "type": "created",
                "occurred_at": "2026-03-10T14:02:11-04:00",
                "channel": "911",
                "nature_code": "MNTL",
                "nature_text": "Mental person non-violent",
                "priority": 3,
                "narrative": "Caller's brother is talking about hurting himself, no weapons.",
                "location": {"address": "1300 1st Ave N", "district": "D2",
                             "lat": 27.7731, "lon": -82.6516},
                "flags": [],
            }
        },
    )

    event_id: str = Field(min_length=1, max_length=200,
                          description="unique per event; a retry reuses it")
    incident_id: str = Field(min_length=1, max_length=120, description="the CAD's number")
    type: EventType
    occurred_at: CadTime = Field(description="RFC 3339 with offset; the CAD's clock; "
                                 f"{RANGE}")
    channel: Channel | None = None
    nature_code: str | None = Field(default=None, min_length=1, max_length=64,
                                    validate_default=True)
    nature_text: str | None = Field(default=None, max_length=500)
    priority: int | None = Field(default=None, ge=0, le=99)
    narrative: str | None = Field(default=None, max_length=20_000)
    location: Location | None = None
    flags: list[Flag] | None = None
    purpose: Purpose | None = Field(default=None, description="test and training calls are "
                                    "routed like any other but left out of every figure")
    person: Person | None = None
    referral: Referral | None = None
    follow_up_of: str | None = Field(default=None, min_length=1, max_length=40,
                                     description="the Liaison call id this follow-up is for")
    follow_up_consent: bool | None = Field(
        default=None, description="the person agreed (true) or declined (false) to a "
        "follow-up visit, as the CAD noted; kept on a follow-up the policy schedules")
    agency: str | None = Field(default=None, min_length=1, max_length=40, description=(
        "the agency whose call it is, in a region of several (issue 17); left out, the "
        "CAD key's agency, the call's district or place decides. Read on the event that "
        "opens the call"))

    @field_validator("nature_code")
    @classmethod
    def _created_says_what(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None and info.data.get("type") == "created":
            raise ValueError("a created event must carry the call's nature code")
        return v

    @field_validator("occurred_at")
    @classmethod
    def _in_range(cls, v: datetime, info: ValidationInfo) -> datetime:
        # An event stored earlier is read back as it was taken (`STORED`), whatever the
        # range was then or the clock is now.
        if not (info.context and info.context.get(STORED)) and (why := in_range(v)):
            raise ValueError(why)
        return v

    def canonical(self) -> str:
        """The event as stored, as one string: what a retry must match
        (service/lifecycle/ingest.py)."""
        return canonical_event(self.model_dump(mode="json", exclude_unset=True))


STORED = "stored"


def takes_time(value: datetime) -> bool:
    """`occurred_at` takes `value.isoformat()` (an adapter's own aware time): RFC 3339
    has no seconds in an offset (a zone's local mean time before 1900 has them), and the
    time must be in range. For a caller that checks many events' times without parsing
    each (adapters/exports/rows_alike.py); tests/adapters/test_exports_rows_alike.py holds it to
    the validator."""
    offset = value.utcoffset()
    return (offset is not None and not offset.microseconds and not offset.seconds % 60
            and in_range(value) is None)


def _length(name: str) -> tuple[int, int]:
    bounds = {type(m).__name__: m for m in CallEvent.model_fields[name].metadata}
    assert set(bounds) == {"MinLen", "MaxLen"}, f"{name}: not a plain string any more"
    return bounds["MinLen"].min_length, bounds["MaxLen"].max_length


_EVENT_ID, _INCIDENT_ID = _length("event_id"), _length("incident_id")


def takes_ids(event_id: str, incident_id: str) -> bool:
    """`event_id` and `incident_id` take these strings (their lengths are all they
    test)."""
    return (_EVENT_ID[0] <= len(event_id) <= _EVENT_ID[1]
            and _INCIDENT_ID[0] <= len(incident_id) <= _INCIDENT_ID[1])


def canonical_event(doc: dict[str, Any]) -> str:
    """One spelling of an event document (a validated event, or a stored body): keys
    sorted, the time in UTC, flags as a set. Two bodies that differ only in key order,
    spacing, the offset a time is written in or the order of flags give the same string."""
    doc = dict(doc)
    if isinstance(doc.get("occurred_at"), str):
        doc["occurred_at"] = datetime.fromisoformat(doc["occurred_at"]).astimezone(UTC
                                                                               ).isoformat()
    if isinstance(doc.get("flags"), list):
        doc["flags"] = sorted(set(doc["flags"]))
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
