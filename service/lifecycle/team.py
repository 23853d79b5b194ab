"""The team's side of a call: its statuses and their flow, the dispositions it clears
with, and the status change it reports (a request body, validated before the writer)."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field, field_validator, model_validator

from service.store.tables import not_ahead

# "Was this the right responder?": one optional tap, at clearing or at an override.
RightResponder = Literal["yes", "no", "unsure"]

TeamStatus = Literal["assigned", "en_route", "on_scene", "backup_requested", "cleared"]

# The team's flow; "queued" is a team call nobody has taken yet.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "queued": ("assigned", "cleared"),
    "assigned": ("en_route", "on_scene", "cleared"),
    "en_route": ("on_scene", "backup_requested", "cleared"),
    "on_scene": ("backup_requested", "cleared"),
    "backup_requested": ("on_scene", "cleared"),
    "cleared": (),
}

# Disposition of a team call when it is cleared; the APCO ANS 1.111.2 code beside each
# lets an outbound adapter speak the standard.
Disposition = Literal["resolved_on_scene", "referred_to_services", "transported",
                      "police_took_over", "refused_services", "gone_on_arrival",
                      "settled_by_phone", "cancelled"]
DISPOSITIONS: dict[Disposition, str] = {
    "resolved_on_scene": "18",
    "referred_to_services": "15",
    "transported": "16",
    "police_took_over": "15",
    "refused_services": "02",
    "gone_on_arrival": "14",
    "settled_by_phone": "05",
    "cancelled": "32",
}


class StatusChange(BaseModel):
    status: TeamStatus
    unit: str | None = Field(default=None, max_length=64, description="the team unit")
    disposition: Disposition | None = Field(default=None, description="required when clearing")
    note: str | None = Field(default=None, max_length=2000,
                             description="for backup_requested: the reason, kept")
    outcome: str | None = Field(default=None, max_length=2000,
                                description="when clearing: what happened, in a line")
    safety_incident: bool = Field(default=False, description="when clearing: a team member "
                                  "was hurt or threatened")
    by: str | None = Field(default=None, max_length=120)
    follow_up_at: AwareDatetime | None = Field(
        default=None, description="when clearing: schedule a proactive follow-up for then")
    follow_up_in_hours: float | None = Field(
        default=None, gt=0, le=24 * 366,
        description="when clearing: schedule a proactive follow-up this many hours on")
    follow_up_note: str | None = Field(default=None, max_length=2000,
                                       description="what the follow-up is for")
    right_responder: RightResponder | None = Field(
        default=None, description="when clearing: was the team the right responder?")
    right_responder_note: str | None = Field(default=None, max_length=500,
                                             description="a short note on that answer")
    at: AwareDatetime | None = Field(
        default=None, description="when it happened (absent: now, on the queue's clock); "
        "a unit cleared then takes the queue's next call as of then")

    @field_validator("at")
    @classmethod
    def _not_in_the_future(cls, v: AwareDatetime | None) -> AwareDatetime | None:
        return None if v is None else not_ahead(
            v, "a status change cannot have happened in the future")

    @model_validator(mode="after")
    def _follow_up_when_clearing(self) -> StatusChange:
        if self.follow_up_at is not None and self.follow_up_in_hours is not None:
            raise ValueError("give follow_up_at or follow_up_in_hours, not both")
        if self.status != "cleared" and (self.follow_up_at is not None
                                         or self.follow_up_in_hours is not None):
            raise ValueError("a follow-up is scheduled when clearing a call")
        if self.status != "cleared" and (self.right_responder is not None
                                         or self.right_responder_note is not None):
            raise ValueError("right_responder is answered when clearing a call")
        return self
