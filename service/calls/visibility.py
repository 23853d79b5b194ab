"""What each role sees of a call, in every output. Pure: a view in, a narrower view out.

42 CFR Part 2 and the CJIS policy ask that only those who need a detail see it. Every
output of a call goes through here: its read model (`GET /v1/calls/{id}`, its EIDO), its
decisions and team statuses (ingest answers, override answers, the CAD's webhook), its
board messages (the live stream and the call's timeline), its repeat-contact history, an
officer's referrals.

Two audiences:
- `full`: the CALL team and supervisors see everything.
- `restricted`: dispatchers, officers and CAD keys see what they need to act: location,
  category, status, safety flags, the decision and its explanation. Never the person's
  details (`PERSONAL`); on protected calls (`PROTECTED_CATEGORIES`) not the free text
  either (`PROTECTED_TEXT`): narrative, notes, backup reason, outcome. Another call's
  outcome (repeat-contact history) is withheld on every call: its own category is not
  at hand, and the disposition code says enough to act.
- `crisis_center`: a crisis centre (988) sees only the calls transferred to it, and of
  them what a counsellor needs to take the call: nature, text, address, the person and
  their callback details the CAD gave, the decision; not the team's notes, a backup
  reason, an outcome or an officer's referral contact.
Analysts see no call at all (figures only, api/metrics.py).

A withheld field is set to null and the output names what was held back in `withheld`,
with the words of `KINDS`: `call.withheld` in a restricted call view (always; everything
held back anywhere in it), `withheld` on a decision, a board message, a history entry, a
webhook body and an officer's referral (when anything was), and a `withheld` line in an
EIDO's routing note.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from routing.decide import backup_step, explain
from routing.models import Backup
from service.access.auth import Principal, Role
from service.store.tables import ANY_AGENCY

SEES_EVERYTHING = frozenset({Role.call_team, Role.supervisor})
# Behavioural-health calls, by the policy's categories. A follow-up's narrative is the
# team's own note about a person it met, whatever the first call was.
PROTECTED_CATEGORIES = frozenset({"mental_health", "substance_use", "crisis_line",
                                  "follow_up"})

# What may be held back, in the words `withheld` uses in every output.
KINDS = ("person", "referral_contact", "care", "narrative", "notes", "backup_reason",
         "outcome")
# `care`: a handoff to care (which provider, its services, notes, why declined) is the
# person's health and social care: the team's and supervisors' alone (issue 16).
PERSONAL = frozenset({"person", "referral_contact", "care"})  # on every call
PROTECTED_TEXT = frozenset({"narrative", "notes", "backup_reason", "outcome"})  # protected
CRISIS_CENTER_WITHHELD = frozenset({"referral_contact", "notes", "backup_reason", "outcome"})

# Where each kind sits, per output: a path of keys, and its kind.
Fields = Mapping[tuple[str, ...], str]
CALL_FIELDS: Fields = {
    ("person",): "person", ("referral_contact",): "referral_contact",
    ("narrative",): "narrative", ("backup_reason",): "backup_reason",
    ("outcome",): "outcome",
}
# Board messages (the live stream, and a call's timeline): status, check-in and
# follow-up notes, the original call's outcome on a follow-up. Their `decision` and
# `history` are narrowed as decisions and histories.
MESSAGE_FIELDS: Fields = {
    ("note",): "notes", ("outcome",): "outcome",
    ("follow_up", "note"): "notes", ("follow_up", "closed_note"): "notes",
    ("follow_up", "original", "outcome"): "outcome",
    ("referral",): "care",
    # Whether the person agreed to a visit after an overdose (a policy's follow-up).
    ("follow_up", "consent"): "person",
}
HISTORY_FIELDS: Fields = {("last_outcome",): "outcome"}
REFERRAL_FIELDS: Fields = {("outcome",): "outcome"}  # one of an officer's referrals
# A team status sent to the CAD's webhook (service/outbox/rows.py): the backup reason.
STATUS_FIELDS: Fields = {("reason",): "backup_reason"}

# Every board message type, so a new one is a decision made here (service/writing/batch.py
# refuses a type not listed; tests/api/test_redaction.py walks each).
MESSAGE_TYPES = frozenset({
    "decision", "call_updated", "call_closed", "status", "checkin", "checkin_missed",
    "checkin_escalated", "follow_up_scheduled", "follow_up_due", "follow_up_opened",
    "follow_up_completed", "follow_up_cancelled",
    # A unit on the roster changed (service/units/): no call's text, no person in crisis;
    # every role that sees the board sees it whole.
    "unit",
    # A care handoff's step (service/lifecycle/care.py): its `referral` is withheld whole
    # from restricted readers, who see that a handoff moved (`event`), not to whom.
    "care",
    # A 911 → 988 transfer's state (service/lifecycle/transfer_record.py): its reason
    # says why the call is decided again, as an override's does (the new decision's
    # explanation quotes it): shown whole to every role that sees the board.
    "transfer",
})
WITHHELD = "withheld"
_BACKUP_STEP = "requested police backup"


class Audience(StrEnum):
    full = "full"
    restricted = "restricted"
    crisis_center = "crisis_center"


def audience_of(who: Principal) -> Audience:
    if who.role is Role.crisis_center:
        return Audience.crisis_center
    return Audience.full if who.role in SEES_EVERYTHING else Audience.restricted


def sees_agency(who: Principal, agency: str | None) -> bool:
    """Whether `who` sees what is of `agency` (a call, its messages): their own
    agency's, or every agency's for the region's people and keys tied to none (issue 17).
    A call no agency claimed (None) is the region's alone."""
    return who.agency == ANY_AGENCY or (agency is not None and agency == who.agency)


def sees_call_agency(who: Principal, agency: str | None, helper: str | None) -> bool:
    """Whether `who` sees a call of `agency` that `helper` (None: nobody) helps with by
    mutual aid: the helping agency's people see it too, as its unit goes."""
    return sees_agency(who, agency) or (helper is not None and sees_agency(who, helper))


def may_read(call: Mapping[str, Any], who: Principal) -> bool:
    """Whether `who` may see this call at all (a call they may not see is 'not found')."""
    if not sees_call_agency(who, call.get("agency_id"), call.get("aid_agency_id")):
        return False
    if who.role in SEES_EVERYTHING or who.role is Role.dispatcher:
        return True
    if who.role is Role.officer:
        return bool(who.officer_id) and call.get("referred_by") == who.officer_id
    if who.role is Role.cad:
        return who.source == "*" or call.get("source") == who.source
    if who.role is Role.crisis_center:  # a call transferred to it, now or before
        return call.get("destination") == "crisis_center" or call.get("transferred") is True
    return False


# Who sees a team call's unit recommendation and assignment (the roster's units, where
# they are, what they can do): those who see the board. No person's detail is in it.
SEES_UNITS = frozenset({Role.call_team, Role.supervisor, Role.dispatcher})


def sees_units(who: Principal) -> bool:
    return who.role in SEES_UNITS


# Who reads a person's crisis plan and an address's cautions (issue 16): the team that
# goes, and supervisors; read one call at a time and audited (api/plans.py). No other
# role, and no call output (view, board message, webhook, EIDO, figure) carries them.
SEES_PLANS = (Role.call_team, Role.supervisor)


def protected(call: Mapping[str, Any]) -> bool:
    """A call (or a decision: same `category`) whose free text stays with the team."""
    return call.get("category") in PROTECTED_CATEGORIES


def withheld_kinds(audience: Audience, *, is_protected: bool) -> frozenset[str]:
    """What an audience does not see of a call."""
    if audience is Audience.full:
        return frozenset()
    if audience is Audience.crisis_center:  # the person and the text: it takes the call
        return CRISIS_CENTER_WITHHELD
    return PERSONAL | PROTECTED_TEXT if is_protected else PERSONAL


def _ordered(kinds: Iterable[str]) -> list[str]:
    found = set(kinds)
    return [k for k in KINDS if k in found]


def _withheld(obj: Mapping[str, Any]) -> list[str]:
    return list(obj.get(WITHHELD) or ())


def _mark(obj: dict[str, Any], removed: Iterable[str]) -> dict[str, Any]:
    """`obj` naming what was held back from it, when anything was (a copy then)."""
    kinds = _ordered(removed)
    return {**obj, WITHHELD: kinds} if kinds else obj


def _set(obj: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """A copy of `obj` with `value` at `path`, copying only the dicts along it."""
    head, *rest = path
    return {**obj, head: _set(obj[head], tuple(rest), value) if rest else value}


def _strip(obj: dict[str, Any], fields: Fields, hide: frozenset[str]
           ) -> tuple[dict[str, Any], list[str]]:
    """`obj` with each field whose kind is hidden set to null, and the kinds nulled.
    Copy on write: the input is never changed, and comes back as is when nothing is
    hidden (most board messages: the writer makes a restricted form of each)."""
    out, removed = obj, []
    for path, kind in fields.items():
        if kind not in hide:
            continue
        parent: Any = out
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if isinstance(parent, dict) and parent.get(path[-1]) not in (None, ""):
            out = _set(out, path, None)
            removed.append(kind)
    return out, removed


# -- each kind of output ---------------------------------------------------------------

def decision_view(decision: dict[str, Any], audience: Audience, *,
                  is_protected: bool) -> dict[str, Any]:
    """A decision (as stored: `Decision.model_dump(mode="json")`) for an audience. The
    backup reason is in `backup.reason` and in one step of the explanation; that step
    is told again without it (routing.decide.backup_step), and the explanation rebuilt
    from the steps."""
    backup = decision.get("backup")
    if ("backup_reason" not in withheld_kinds(audience, is_protected=is_protected)
            or not isinstance(backup, dict) or not backup.get("reason")):
        return decision
    reason = str(backup["reason"])
    try:
        parsed = Backup.model_validate(backup)
        told: str | None = backup_step(parsed)
        short = backup_step(parsed, withhold_reason=True)
    except ValidationError:  # a malformed record: no step can be told again
        told, short = None, "The team on scene requested police backup (reason withheld)."
    # A backup step told another way (an older wording) that still quotes the reason is
    # replaced whole: never shown, whatever its wording.
    factors = [short if f == told or (_BACKUP_STEP in f and reason in f) else f
               for f in decision.get("factors", [])]
    return _mark({**decision, "factors": factors, "explanation": explain(factors),
                  "backup": {**backup, "reason": None}}, ["backup_reason"])


def history_view(history: dict[str, Any] | None, audience: Audience
                 ) -> dict[str, Any] | None:
    """Repeat contact: earlier calls about the person (or at the address). The last one's
    outcome is another call's text: withheld from every restricted reader."""
    if history is None:
        return None
    out, removed = _strip(history, HISTORY_FIELDS, withheld_kinds(audience, is_protected=True))
    return _mark(out, removed)


def message_view(message: dict[str, Any], audience: Audience, *,
                 is_protected: bool) -> dict[str, Any]:
    """A board message (or a timeline item: the same) for an audience; the message
    itself when nothing is held back."""
    if audience is Audience.full:
        return message
    out, removed = _strip(message, MESSAGE_FIELDS,
                          withheld_kinds(audience, is_protected=is_protected))
    decision, history = out.get("decision"), out.get("history")
    if isinstance(decision, dict):
        narrowed = decision_view(decision, audience, is_protected=is_protected)
        if narrowed is not decision:
            out = {**out, "decision": narrowed}
            removed += _withheld(narrowed)
    if isinstance(history, dict):
        narrowed_history = history_view(history, audience)
        if narrowed_history is not history:
            out = {**out, "history": narrowed_history}
            removed += _withheld(narrowed_history or {})
    return _mark(out, removed)


def restricted_message(message: dict[str, Any], call: Mapping[str, Any] | None
                       ) -> dict[str, Any]:
    """The restricted form of a board message about `call` (its row), made once when the
    message is written (service/writing/batch.py) and stored beside the full one. Without the
    call at hand it is treated as protected."""
    if message.get("type") not in MESSAGE_TYPES:
        raise ValueError(f"board message type {message.get('type')!r} is not in "
                         "service/calls/visibility.py MESSAGE_TYPES: say there what it may carry")
    return message_view(message, Audience.restricted,
                        is_protected=call is None or protected(call))


def call_view(view: dict[str, Any], who: Principal) -> dict[str, Any]:
    """A call's read model narrowed for `who`: THE function for any output of a call.

    `view` is shaped as service.lifecycle.queries.get_call returns it: `call` (required: its
    `category` decides protection) and any of `decision`, `decisions`, `timeline`,
    `history`, `deliveries`. A list of calls narrows each item. Check `may_read` first.
    For a restricted reader `call.withheld` names everything held back anywhere in it.
    """
    audience = audience_of(who)
    out = dict(view)
    if "deliveries" in out:
        out["deliveries"] = [delivery_view(d, who) for d in out["deliveries"]]
    if audience is Audience.full:
        return out
    is_protected = protected(view["call"])
    call, removed = _strip(view["call"], CALL_FIELDS,
                           withheld_kinds(audience, is_protected=is_protected))
    if isinstance(out.get("decision"), dict):
        out["decision"] = decision_view(out["decision"], audience, is_protected=is_protected)
        removed += _withheld(out["decision"])
    if "decisions" in out:
        out["decisions"] = [
            {**d, "decision": decision_view(d["decision"], audience,
                                            is_protected=is_protected)}
            for d in out["decisions"]]
        removed += [k for d in out["decisions"] for k in _withheld(d["decision"])]
    if "timeline" in out:
        out["timeline"] = [message_view(m, audience, is_protected=is_protected)
                           for m in out["timeline"]]
        removed += [k for m in out["timeline"] for k in _withheld(m)]
    if out.get("history") is not None:
        out["history"] = history_view(out["history"], audience)
        removed += _withheld(out["history"])
    out["call"] = {**call, WITHHELD: _ordered(removed)}  # always, in a restricted view
    return out


def answer_view(answer: dict[str, Any], who: Principal) -> dict[str, Any]:
    """An ingest answer (`{call_id, event_id, decision, …}`: a CAD's event, an EIDO, an
    officer's referral) for whoever sent it."""
    decision = answer.get("decision")
    if not isinstance(decision, dict):
        return answer
    return {**answer, "decision": decision_view(decision, audience_of(who),
                                                is_protected=protected(decision))}


def referral_view(referral: dict[str, Any], decision: dict[str, Any] | None,
                  who: Principal) -> dict[str, Any]:
    """One of an officer's referrals and what became of it (`outcome`; `explanation`
    from its `decision`, when given), for `who`."""
    audience = audience_of(who)
    out = dict(referral)
    if decision is not None:
        decision = decision_view(decision, audience, is_protected=protected(referral))
        out["explanation"] = decision.get("explanation")
    if audience is Audience.full:
        return out
    out, removed = _strip(out, REFERRAL_FIELDS,
                          withheld_kinds(audience, is_protected=protected(referral)))
    return _mark(out, [*removed, *_withheld(decision or {})])


def care_reached(handoffs: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """What the referring officer sees of a call's handoffs to care (issue 16): whether
    the person reached care and what kind (the services of the providers that connected),
    never the provider, the notes or why a handoff was declined."""
    connected = [h for h in handoffs if h.get("status") == "connected"]
    return {"connected": bool(connected),
            "services": sorted({s for h in connected for s in h.get("services") or ()})}


def webhook_body(payload: dict[str, Any], call: Mapping[str, Any]) -> dict[str, Any]:
    """The webhook body for the CAD, which is the `cad` role: the restricted view. A
    `decision` body narrows its decision; a team `status` body its backup reason."""
    if payload.get("type") == "status":
        out, removed = _strip(payload, STATUS_FIELDS,
                              withheld_kinds(Audience.restricted, is_protected=protected(call)))
        return _mark(out, removed)
    decision = decision_view(payload["decision"], Audience.restricted,
                             is_protected=protected(call))
    return _mark({**payload, "decision": decision}, _withheld(decision))


def delivery_view(delivery: dict[str, Any], who: Principal) -> dict[str, Any]:
    """A webhook delivery narrowed for `who`: the CAD's reply in `last_error` may echo the
    body it refused (a narrative, a name), so only those who see everything read it; the
    others get what failed ("HTTP 422", "ConnectError")."""
    error = delivery.get("last_error")
    if who.role in SEES_EVERYTHING or not error:
        return delivery
    return {**delivery, "last_error": error.split(":", 1)[0]}
