"""What each role sees of a call. Pure: a view in, a narrower view out.

42 CFR Part 2 and the CJIS policy ask that only those who need a detail see it. The
CALL team and supervisors see everything. Dispatchers, officers and CAD keys see what
they need to act: location, category, status, safety flags and the decision; never the
person's details (name, phone, age, contact), and, on behavioural-health calls, not the
narrative, notes or outcome text either. Analysts see no call at all (figures only).
"""

from __future__ import annotations

import copy
from typing import Any

from service.auth import Principal, Role

SEES_EVERYTHING = frozenset({Role.call_team, Role.supervisor})
# Substance-use and mental-health calls, by the policy's categories.
PROTECTED_CATEGORIES = frozenset({"mental_health", "substance_use", "crisis_line"})
_PERSONAL = ("person", "referral_contact")
_TEXT = ("narrative", "outcome", "backup_reason")
_TIMELINE_TEXT = ("note", "outcome", "reason")
WITHHELD = "withheld"


def may_read(call: dict[str, Any], who: Principal) -> bool:
    """Whether `who` may see this call at all (a call they may not see is 'not found')."""
    if who.role in SEES_EVERYTHING or who.role is Role.dispatcher:
        return True
    if who.role is Role.officer:
        return bool(who.officer_id) and call.get("referred_by") == who.officer_id
    if who.role is Role.cad:
        return who.source == "*" or call.get("source") == who.source
    return False


def protected(call: dict[str, Any]) -> bool:
    return call.get("category") in PROTECTED_CATEGORIES


def call_view(view: dict[str, Any], who: Principal) -> dict[str, Any]:
    """`view` as service.queries.get_call returns it, narrowed for `who`."""
    if who.role in SEES_EVERYTHING:
        return view
    out = copy.deepcopy(view)
    call = out["call"]
    hidden: list[str] = []
    for key in _PERSONAL:
        if call.get(key) is not None:
            call[key] = None
            hidden.append(key)
    if protected(call):
        for key in _TEXT:
            if call.get(key) is not None:
                call[key] = None
                hidden.append(key)
        for item in out.get("timeline", []):
            for key in _TIMELINE_TEXT:
                if item.get(key):
                    item[key] = None
    call[WITHHELD] = hidden
    out["deliveries"] = [delivery_view(d, who) for d in out.get("deliveries", [])]
    return out


def delivery_view(delivery: dict[str, Any], who: Principal) -> dict[str, Any]:
    """A webhook delivery narrowed for `who`: the CAD's reply in `last_error` may echo the
    body it refused (a narrative, a name), so only those who see everything read it; the
    others get what failed ("HTTP 422", "ConnectError")."""
    error = delivery.get("last_error")
    if who.role in SEES_EVERYTHING or not error:
        return delivery
    return {**delivery, "last_error": error.split(":", 1)[0]}
