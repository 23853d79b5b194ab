"""Mutual aid (routing/mutual_aid.py, routing/decide.py): another agency's program takes an
eligible call its own agency's programs cannot take now, judged by that agency's policy.
Pure, no I/O."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from routing.decide import apply_override, decide_call, fall_back, redecide
from routing.models import Aid, Availability, Destination, Mode, ProgramState
from routing.mutual_aid import AidOffer
from rules.evaluate import CompiledPolicy
from rules.load import PolicyInvalid
from tests.factories import compiled, facts, one_team_doc, programs_doc

NONE = Availability(units_total=0, units_busy=0)
AID = [{"agency": "west", "program": "field"}]


def east(**changes: Any) -> CompiledPolicy:
    """Three programs in New York (tests/factories.programs_doc), asking West County's
    field team for help."""
    return compiled(programs_doc(**{"mutual_aid": AID, **changes}))


def west_policy(units: int = 1) -> CompiledPolicy:
    """West County, in Chicago: a field team of `units` on shift 08:00-21:00 every day,
    serving its own district W1 only."""
    doc = programs_doc()
    doc["policy"] = {"id": "west", "version": "1"}
    doc["program"]["timezone"] = "America/Chicago"
    field = doc["programs"][0]
    field.update(name="West field team", hours={"daily": ["08:00-21:00"]}, units=units,
                 area={"districts": ["W1"]}, queue=[])
    field.pop("dates_off")
    return compiled(doc)


def offers(busy: int = 0, units: int = 1) -> dict[str, AidOffer]:
    return {"west": AidOffer(agency="west", name="West County", policy=west_policy(units),
                             state={"field": ProgramState(units_busy=busy)})}


# Tuesday 21:30 in New York: the east field team's shift ended at 20:00; it is 20:30 in
# Chicago, inside West County's. Homelessness (VAG) is the field team's alone.
EVENING = "2026-03-10T21:30:00-04:00"


def vag(at: str = EVENING, **more: Any) -> Any:
    return facts(nature_code="VAG", district="D1", occurred_at=at, **more)


def test_another_agencys_program_takes_what_none_of_ours_can_now() -> None:
    d = decide_call(vag(), east(), NONE, state={}, aid=offers())
    assert (d.destination, d.mode) == (Destination.call_team, Mode.call_with_police_standby)
    assert d.aid == Aid(agency="west", program="field")
    assert d.eligible and d.needs_field_unit and d.not_served_reason is None
    # The program on the decision is the helping one, in its own time zone and count.
    assert (d.program.id, d.program.timezone, d.program.local_time) == (
        "field", "America/Chicago", "Tue 20:30")
    assert (d.program.units_total, d.program.units_busy) == (1, 0)
    assert d.factors[-3].startswith("Program 'field' (Field team) cannot take it now: "
                                    "outside its hours")
    assert d.factors[-2] == ("Mutual aid: agency 'west' (West County)'s program 'field' "
                             "(West field team) takes the call: within its hours "
                             "(Tue 20:30 local); 1 of 1 units free.")
    assert d.factors[-1].startswith("Its program phase 2: team-led response")


def test_a_busy_or_closed_helper_leaves_the_call_to_police_and_says_why() -> None:
    busy = decide_call(vag(), east(), NONE, state={}, aid=offers(busy=1))
    assert busy.destination is Destination.police and busy.aid is None
    assert busy.not_served_reason == "off_hours"  # ours: the reason it was not served
    assert ("Mutual aid: agency 'west' (West County)'s program 'field' (West field team) "
            "cannot take it now: all 1 of its units are busy.") in busy.factors
    assert busy.factors[-1] == ("No program, nor mutual aid, can take it now: eligible "
                                "but not served, police respond.")
    late = decide_call(vag("2026-03-10T22:30:00-04:00"), east(), NONE, state={},
                       aid=offers())
    assert late.destination is Destination.police
    assert ("cannot take it now: outside its hours (daily 08:00-21:00, America/Chicago; "
            "call at Tue 21:30 its local time).") in late.explanation


def test_a_helper_not_known_here_or_not_taking_the_category_is_not_asked() -> None:
    unknown = decide_call(vag(), east(), NONE, state={})  # a caller that knows one agency
    assert unknown.destination is Destination.police
    assert "Mutual aid: agency 'west' has no policy in force here; not asked." \
        in unknown.factors
    no_such = decide_call(vag(), east(mutual_aid=[{"agency": "west", "program": "nope"}]),
                          NONE, state={}, aid=offers())
    assert "has no program 'nope' in force; not asked." in no_such.explanation
    # An entry for other categories is passed over without a word.
    only_mh = east(mutual_aid=[{**AID[0], "categories": ["mental_health"]}])
    d = decide_call(vag(), only_mh, NONE, state={}, aid=offers())
    assert d.destination is Destination.police
    assert not any(f.startswith("Mutual aid:") for f in d.factors)


def test_what_our_own_programs_take_is_never_asked_of_others() -> None:
    # Inside the east team's hours the call is its own, whatever the helper could do.
    d = decide_call(vag("2026-03-10T14:00:00-04:00"), east(), NONE, state={}, aid=offers())
    assert (d.program.id, d.aid) == ("field", None)
    assert d.program.timezone == "America/New_York"
    assert "Mutual aid" not in d.explanation


def test_a_call_that_may_wait_waits_for_ours_and_asks_for_aid_when_its_limit_passes() -> None:
    # 14:00 Tuesday, both east field units busy: homelessness waits 45 min for one.
    busy = {"field": ProgramState(units_busy=2)}
    at_two = vag("2026-03-10T14:00:00-04:00")
    queued = decide_call(at_two, east(), NONE, state=busy, aid=offers())
    assert queued.queued is not None and queued.aid is None
    # A full queue asks for mutual aid at once.
    full = {"field": ProgramState(units_busy=2, queued=3)}
    now = decide_call(at_two, east(), NONE, state=full, aid=offers())
    assert now.aid == Aid(agency="west", program="field")
    # The wait limit passes with no east unit free: West County takes it then.
    later = fall_back(at_two, east(), queued, queued.decided_at.replace(hour=18, minute=45),
                      "wait_limit", availability=NONE, state=busy, aid=offers())
    assert later.aid == Aid(agency="west", program="field")
    assert later.destination is Destination.call_team
    assert any(f.startswith("Queued for program 'field' since") for f in later.factors)


def test_an_update_keeps_the_helping_unit_unless_the_call_is_no_longer_the_teams() -> None:
    full = {"field": ProgramState(units_busy=2, queued=3)}
    at_two = vag("2026-03-10T14:00:00-04:00")
    helped = decide_call(at_two, east(), NONE, state=full, aid=offers())
    assert helped.aid is not None
    # An east unit came free meanwhile: the West unit on its way keeps the call.
    again = redecide(vag("2026-03-10T14:00:00-04:00", priority=3), east(), NONE, helped,
                     closed=False, state={}, aid=offers())
    assert again == helped
    # A dispatcher's override of the helped call is kept once, not said again.
    overridden = apply_override(helped, destination=Destination.joint, by="d1",
                                reason="weapons in the home", at=helped.decided_at)
    kept = redecide(vag("2026-03-10T14:00:00-04:00", priority=3), east(), NONE,
                    overridden, closed=False, state={}, aid=offers())
    assert kept == overridden
    assert sum("overrode" in f for f in kept.factors) == 1
    armed = redecide(vag("2026-03-10T14:00:00-04:00", flags=["weapon"]), east(), NONE,
                     helped, closed=False, state={}, aid=offers())
    assert (armed.destination, armed.basis, armed.aid) == (Destination.police,
                                                           "exclusion", None)


def test_a_one_team_policy_says_its_own_refusal_before_asking() -> None:
    doc = one_team_doc()
    doc["mutual_aid"] = AID
    policy = compiled(doc)
    # 03:00 in New York: the one team (08:00-24:00) is off; West County at 02:00 too.
    call = facts(nature_code="VAG", occurred_at="2026-03-10T03:00:00-04:00")
    d = decide_call(call, policy, Availability(units_total=4, units_busy=0), aid=offers())
    assert d.destination is Destination.police
    steps = [f for f in d.factors if f.startswith(("The team cannot", "Mutual aid"))]
    assert steps[0].startswith("The team cannot take it now: outside its hours")
    assert steps[1].startswith("Mutual aid: agency 'west' (West County)'s program 'field'")


def test_the_policy_names_its_own_categories_once_each() -> None:
    bad = programs_doc(mutual_aid=[{"agency": "west", "program": "field",
                                    "categories": ["burglary"]}, copy.deepcopy(AID[0]),
                                   copy.deepcopy(AID[0])])
    with pytest.raises(PolicyInvalid) as err:
        compiled(bad)
    text = str(err.value)
    assert "mutual_aid[0].categories[0]" in text and "'burglary'" in text
    assert "mutual_aid[2]" in text and "named by an earlier entry" in text
