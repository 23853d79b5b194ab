"""The generic CAD event: Liaison's own JSON contract, and what every adapter produces."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from rules.models import Channel, Flag

EventType = Literal["created", "updated", "closed"]
Purpose = Literal["live", "test", "training"]
AgeGroup = Literal["youth", "adult"]


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
    occurred_at: AwareDatetime = Field(description="RFC 3339 with offset; the CAD's clock")
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

    @field_validator("nature_code")
    @classmethod
    def _created_says_what(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None and info.data.get("type") == "created":
            raise ValueError("a created event must carry the call's nature code")
        return v
