"""Whose call it is (routing/jurisdiction.py): pure, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from routing.jurisdiction import (
    AgencyRecord,
    Jurisdictions,
    UnknownAgency,
    kept,
    unclaimed,
    with_claim,
)
from routing.models import Destination

SQUARE = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
NORTH = AgencyRecord(id="north", name="North", timezone="America/Chicago",
                     districts=["N1", "shared"], boundary=SQUARE)
SOUTH = AgencyRecord(id="south", name="South", timezone="America/New_York",
                     districts=["S1", "shared"])
REGION = Jurisdictions([NORTH, SOUTH])


def test_a_tied_key_wins_then_the_event_then_the_district_then_the_boundary() -> None:
    assert REGION.claim(key_agency="south", district="N1").agency == "south"
    assert REGION.claim(named="south", district="N1", lat=0.5, lon=0.5).how == "event"
    assert REGION.claim(district="s1").agency == "south"  # districts ignore case
    c = REGION.claim(district="elsewhere", lat=0.5, lon=0.5)
    assert (c.agency, c.how) == ("north", "boundary")
    # A district two agencies list decides nothing: the place does.
    assert REGION.claim(district="shared", lat=0.5, lon=0.5).agency == "north"
    nobody = REGION.claim(district="shared", lat=5.0, lon=5.0)
    assert (nobody.agency, nobody.how) == (None, "none")
    assert nobody.step == ("No agency has this call: no agency claims it (district shared, "
                           "at 5.00000,5.00000, and the event names none).")


def test_an_unknown_or_foreign_agency_is_refused() -> None:
    with pytest.raises(UnknownAgency, match="no agency 'east'"):
        REGION.claim(named="east")
    with pytest.raises(UnknownAgency, match="posts for agency 'north', not 'south'"):
        REGION.claim(key_agency="north", named="south")
    gone = REGION.claim(key_agency="east")
    assert gone.agency is None and "no longer exists" in gone.step


def test_the_only_agency_has_every_call() -> None:
    alone = Jurisdictions([SOUTH])
    assert not alone.several
    c = alone.claim(district="anywhere")
    assert (c.agency, c.how) == ("south", "sole")


def test_a_bad_agency_record_says_what_is_wrong() -> None:
    with pytest.raises(ValidationError, match="unknown time zone 'Mars/Base'"):
        AgencyRecord(id="x", name="X", timezone="Mars/Base")
    with pytest.raises(ValidationError, match="coordinates"):
        AgencyRecord(id="x", name="X", timezone="UTC",
                     boundary={"type": "Polygon", "coordinates": [[[0, 0], [500, 0],
                                                                   [0, 1], [0, 0]]]})
    with pytest.raises(ValidationError, match="id"):
        AgencyRecord(id="Has Spaces", name="X", timezone="UTC")


def test_a_call_nobody_can_take_goes_to_police_saying_why() -> None:
    at = datetime(2026, 3, 10, 12, tzinfo=UTC)
    d = unclaimed(kept(NORTH, "north").step, at, no_policy="north")
    assert (d.destination, d.basis, d.eligible) == (Destination.police, "no_agency", False)
    assert d.explanation == ("Agency 'north' (North, America/Chicago) has this call. "
                             "Agency 'north' has no policy in force yet. "
                             "Sent to police, the safe default.")
    # The claim step goes first, once.
    again = with_claim(d, "Agency 'north' (North, America/Chicago) has this call.")
    assert again is d
    other = with_claim(d, "A step.")
    assert other.factors[0] == "A step." and other.explanation.startswith("A step. Agency")
