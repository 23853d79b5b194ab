"""The rule scorecard (issue 15): how each rule and exclusion of a policy works out in the
field, over calls opened in a range.

A call counts under the entry that decided it (its decision's `basis` and
`matched_rules`, kept through overrides and backup requests): an exclusion decides when
one held (the first listed), else the rule that held, else the safe default (`DEFAULT`).
The decision records every exclusion that held and the first rule that held even under
an exclusion: those that did not decide count as `matched_not_decided` (rules stop at
the first that holds, so a later rule that would have held is not known).
Its other figures (team, served, dispositions, backup, police took over, safety,
overrides, right-responder answers) count under the deciding entry.

`score` is pure: rows in, scorecard out; `load` reads the rows.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.figures.metrics import _csv_safe
from service.lifecycle.team import DISPOSITIONS as TEAM_DISPOSITIONS
from service.store.tables import CALL, DECISION

ALL = "all"
DEFAULT = "(default)"  # no rule held, or the rules failed: police, the safe default
TEAM = ("call_team", "joint")
DISPOSITIONS = tuple(TEAM_DISPOSITIONS)
ANSWERS = ("yes", "no", "unsure")


@dataclass(frozen=True)
class Thresholds:
    """When a rule is flagged (Settings.scorecard_*)."""

    over_broad_share: float = 0.25  # of its team calls, backup or police took over
    over_broad_min_calls: int = 10  # team calls before the share means anything
    too_narrow_min_calls: int = 3  # kept from the team, overridden to it, cleared w/o police


@dataclass(frozen=True)
class OverrideSeen:
    at: datetime
    by: str
    reason: str
    from_destination: str
    destination: str


@dataclass(frozen=True)
class ScoredCall:
    """What the scorecard reads of one call."""

    call_id: str
    policy_version: str
    basis: str
    matched_rules: tuple[str, ...]
    recommended: str  # the destination the rules gave, before overrides and backup
    served: bool  # a team unit took it
    cleared: bool
    disposition: str | None
    backup: bool
    safety_incident: bool
    team_answer: str | None = None
    dispatcher_answer: str | None = None
    dispatcher_note: str | None = None
    overrides: tuple[OverrideSeen, ...] = field(default=())

    @property
    def police_took_over(self) -> bool:
        return self.disposition == "police_took_over" or self.backup

    def deciding(self) -> tuple[str, str]:
        """(kind, id) of the entry that decided the call."""
        if self.basis == "exclusion" and self.matched_rules:
            return "exclusion", self.matched_rules[0]
        if self.basis == "rule" and self.matched_rules:
            return "rule", self.matched_rules[-1]
        return "default", DEFAULT

    def matched_only(self) -> list[str]:
        """Entries that held but did not decide: after the deciding exclusion, the other
        exclusions and the rule that held; nothing else under a rule."""
        if self.basis == "exclusion":
            return list(self.matched_rules[1:])
        if self.basis == "rule":
            return list(self.matched_rules[:-1])  # none: a rule wins only if none held
        return list(self.matched_rules)


class Answers(BaseModel):
    yes: int = 0
    no: int = 0
    unsure: int = 0


class OverrideNote(BaseModel):
    """An override of a call this entry decided: supervisors only (free text, a person)."""

    call_id: str
    at: datetime
    by: str
    direction: Literal["toward_team", "away_from_team", "other"]
    reason: str
    right_responder: str | None = Field(description="the dispatcher's answer, if given")
    note: str | None


class Flag(BaseModel):
    kind: Literal["over_broad", "too_narrow"]
    why: str


class EntryScore(BaseModel):
    id: str
    kind: Literal["exclusion", "rule", "default"]
    decided: int = Field(default=0, description="calls it decided")
    matched_not_decided: int = Field(default=0, description="calls it held for but another "
                                                    "entry decided")
    sent_to_team: int = Field(default=0, description="of those decided, the rules sent to a team")
    served: int = Field(default=0, description="a team unit took it")
    dispositions: dict[str, int] = Field(default_factory=dict)
    backup_requested: int = 0
    police_took_over: int = Field(default=0, description="disposition police_took_over or backup")
    safety_incidents: int = 0
    overrides_toward_team: int = 0
    overrides_away_from_team: int = 0
    kept_from_team_cleared_without_police: int = Field(
        default=0, description="kept from the team, overridden to it, cleared without police")
    right_responder_team: Answers = Field(default_factory=Answers)
    right_responder_dispatcher: Answers = Field(default_factory=Answers)
    overrides: list[OverrideNote] | None = Field(
        default=None, description="supervisors only; absent for analysts")
    flags: list[Flag] = Field(default_factory=list)


class Scorecard(BaseModel):
    policy_version: str = Field(description="a version's full label, or 'all'")
    since: datetime
    until: datetime
    calls: int
    entries: list[EntryScore]
    thresholds: dict[str, float]


def _direction(o: OverrideSeen) -> Literal["toward_team", "away_from_team", "other"]:
    if o.destination in TEAM and o.from_destination not in TEAM:
        return "toward_team"
    if o.from_destination in TEAM and o.destination not in TEAM:
        return "away_from_team"
    return "other"


def _count(e: EntryScore, c: ScoredCall, *, supervisor: bool) -> None:
    e.decided += 1
    e.sent_to_team += c.recommended in TEAM
    e.served += c.served
    if c.disposition:
        e.dispositions[c.disposition] = e.dispositions.get(c.disposition, 0) + 1
    e.backup_requested += c.backup
    e.police_took_over += c.police_took_over
    e.safety_incidents += c.safety_incident
    directions = [_direction(o) for o in c.overrides]
    e.overrides_toward_team += directions.count("toward_team")
    e.overrides_away_from_team += directions.count("away_from_team")
    if (c.recommended not in TEAM and "toward_team" in directions and c.cleared
            and not c.police_took_over):
        e.kept_from_team_cleared_without_police += 1
    for answers, given in ((e.right_responder_team, c.team_answer),
                           (e.right_responder_dispatcher, c.dispatcher_answer)):
        if given in ANSWERS:
            setattr(answers, given, getattr(answers, given) + 1)
    if supervisor:
        assert e.overrides is not None
        last = len(c.overrides) - 1
        e.overrides.extend(OverrideNote(
            call_id=c.call_id, at=o.at, by=o.by, direction=d, reason=o.reason,
            # The call keeps the latest answer: it belongs to the latest override.
            right_responder=c.dispatcher_answer if i == last else None,
            note=c.dispatcher_note if i == last else None)
            for i, (o, d) in enumerate(zip(c.overrides, directions, strict=True)))


def flags_of(e: EntryScore, t: Thresholds) -> list[Flag]:
    """Why an entry looks over-broad or too narrow, in a sentence each."""
    out: list[Flag] = []
    team = e.sent_to_team
    if team >= t.over_broad_min_calls and team:
        share = e.police_took_over / team
        if share >= t.over_broad_share:
            out.append(Flag(kind="over_broad", why=(
                f"{e.police_took_over} of the {team} calls it sent to the team "
                f"({share:.0%}) needed police backup or police took over "
                f"(flagged at {t.over_broad_share:.0%} or more, with at least "
                f"{t.over_broad_min_calls} team calls).")))
    kept = e.kept_from_team_cleared_without_police
    if kept >= t.too_narrow_min_calls:
        out.append(Flag(kind="too_narrow", why=(
            f"{kept} calls it kept from the team were overridden to the team and cleared "
            f"without police (flagged at {t.too_narrow_min_calls} or more).")))
    return out


def score(calls: Iterable[ScoredCall], entries: Sequence[tuple[str, str]], *,
          version: str, since: datetime, until: datetime, thresholds: Thresholds,
          supervisor: bool) -> Scorecard:
    """The scorecard of `calls` (already in scope), one row per entry of `entries`
    ((kind, id), in the policy's order) and any other entry a call names."""
    rows: dict[tuple[str, str], EntryScore] = {}

    def row(kind: str, entry_id: str) -> EntryScore:
        key = (kind, entry_id)
        if key not in rows:
            rows[key] = EntryScore(id=entry_id, kind=kind,  # type: ignore[arg-type]
                                   overrides=[] if supervisor else None)
        return rows[key]

    kinds = {entry_id: kind for kind, entry_id in entries}
    for kind, entry_id in entries:
        row(kind, entry_id)
    n = 0
    for c in calls:
        n += 1
        _count(row(*c.deciding()), c, supervisor=supervisor)
        for entry_id in c.matched_only():
            row(kinds.get(entry_id, "exclusion"), entry_id).matched_not_decided += 1
    for e in rows.values():
        e.flags = flags_of(e, thresholds)
    return Scorecard(policy_version=version, since=since, until=until, calls=n,
                     entries=list(rows.values()), thresholds={
                         "over_broad_share": thresholds.over_broad_share,
                         "over_broad_min_calls": thresholds.over_broad_min_calls,
                         "too_narrow_min_calls": thresholds.too_narrow_min_calls})


def entries_of(documents: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    """(kind, id) of each exclusion, then each rule, of policy documents, first seen first."""
    seen: dict[tuple[str, str], None] = {}
    for doc in documents:
        for kind, key in (("exclusion", "exclusions"), ("rule", "rules")):
            for item in doc.get(key) or []:
                if isinstance(item, dict) and isinstance(item.get("id"), str):
                    seen.setdefault((kind, item["id"]), None)
    exclusions = [k for k in seen if k[0] == "exclusion"]
    return [*exclusions, *(k for k in seen if k[0] == "rule")]


# -- reading ------------------------------------------------------------------------------


def _recommended(decision: dict[str, Any], overrides: Sequence[OverrideSeen]) -> str:
    """The rules' destination: before the first override, else before a backup request."""
    if overrides:
        return overrides[0].from_destination
    backup = decision.get("backup")
    if backup:
        return str(backup["from_destination"])
    return str(decision["destination"])


async def load(engine: AsyncEngine, *, version: str | None, since: datetime,
               until: datetime, agency: str | None = None) -> list[ScoredCall]:
    """Live calls opened in [since, until), of one policy version (None: every one), of
    one agency (None: every agency's)."""
    c = CALL.c
    conds = [c.purpose == "live", c.opened_at >= since, c.opened_at < until]
    if version is not None:
        conds.append(c.policy_version == version)
    if agency is not None:
        conds.append(c.agency_id == agency)
    calls = select(c.id, c.policy_version, c.decision, c.assigned_at, c.unit, c.cleared_at,
                   c.disposition, c.backup_requested_at, c.safety_incident,
                   c.team_right_responder, c.override_right_responder,
                   c.override_right_responder_note).where(*conds).order_by(c.opened_at, c.id)
    d = DECISION.c
    overrides = (select(d.call_id, d.decision).join(CALL, CALL.c.id == d.call_id)
                 .where(d.cause == "override", *conds).order_by(d.call_id, d.id))
    async with engine.connect() as conn:
        call_rows = list((await conn.execute(calls)).mappings())
        seen: dict[str, list[OverrideSeen]] = {}
        for r in (await conn.execute(overrides)).mappings():
            o = json.loads(r["decision"]).get("override")
            if o:
                seen.setdefault(r["call_id"], []).append(OverrideSeen(
                    at=datetime.fromisoformat(o["at"]), by=o["by"], reason=o["reason"],
                    from_destination=o["from_destination"],
                    destination=json.loads(r["decision"])["destination"]))
    out = []
    for r in call_rows:
        decision = json.loads(r["decision"])
        mine = tuple(seen.get(r["id"], ()))
        out.append(ScoredCall(
            call_id=r["id"], policy_version=r["policy_version"], basis=decision["basis"],
            matched_rules=tuple(decision.get("matched_rules") or ()),
            recommended=_recommended(decision, mine),
            served=r["assigned_at"] is not None or r["unit"] is not None,
            cleared=r["cleared_at"] is not None, disposition=r["disposition"],
            backup=r["backup_requested_at"] is not None,
            safety_incident=bool(r["safety_incident"]),
            team_answer=r["team_right_responder"],
            dispatcher_answer=r["override_right_responder"],
            dispatcher_note=r["override_right_responder_note"], overrides=mine))
    return out


# -- CSV ----------------------------------------------------------------------------------

CSV_FIELDS = ("kind", "id", "decided", "matched_not_decided", "sent_to_team", "served",
              *(f"disposition_{d}" for d in DISPOSITIONS), "backup_requested",
              "police_took_over", "safety_incidents", "overrides_toward_team",
              "overrides_away_from_team", "kept_from_team_cleared_without_police",
              *(f"right_responder_team_{a}" for a in ANSWERS),
              *(f"right_responder_dispatcher_{a}" for a in ANSWERS), "flags")


def to_csv(card: Scorecard) -> str:
    """One row per entry; no free text (override reasons stay in the supervisors' JSON)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_FIELDS)
    for e in card.entries:
        writer.writerow([
            e.kind, _csv_safe(e.id), e.decided, e.matched_not_decided, e.sent_to_team, e.served,
            *(e.dispositions.get(d, 0) for d in DISPOSITIONS), e.backup_requested,
            e.police_took_over, e.safety_incidents, e.overrides_toward_team,
            e.overrides_away_from_team, e.kept_from_team_cleared_without_police,
            *(getattr(e.right_responder_team, a) for a in ANSWERS),
            *(getattr(e.right_responder_dispatcher, a) for a in ANSWERS),
            ";".join(f.kind for f in e.flags)])
    return out.getvalue()

