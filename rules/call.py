"""What the rules can see of a call: the facts, already folded from its events."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from rules.models import Channel, Flag


class CallFacts(BaseModel):
    """The call as classification sees it; `occurred_at` is the CAD's time, never ours."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: Channel = "911"
    nature_code: str = ""
    nature_text: str = ""
    narrative: str | None = None
    priority: int | None = None
    district: str | None = None
    flags: frozenset[Flag] = Field(default_factory=frozenset)
    occurred_at: AwareDatetime
    # Where: tested against the programs' service areas (rules/programs.py).
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    # Test and training calls never hold a unit nor wait for one.
    purpose: Literal["live", "test", "training"] = "live"

    @property
    def text(self) -> str:
        return f"{self.nature_text}\n{self.narrative or ''}"

    def local_time(self, tz: str) -> datetime:
        from zoneinfo import ZoneInfo

        return self.occurred_at.astimezone(ZoneInfo(tz))
