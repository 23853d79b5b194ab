"""The scorecard's arithmetic, pure: hand-made calls in, counts and flags out."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

from service.figures.scorecard import (
    DEFAULT,
    OverrideSeen,
    ScoredCall,
    Thresholds,
    entries_of,
    score,
    to_csv,
)

T0 = datetime(2026, 11, 1, tzinfo=UTC)
T1 = datetime(2026, 12, 1, tzinfo=UTC)
ENTRIES = [("exclusion", "weapon"), ("exclusion", "violence"), ("rule", "mental-health"),
           ("rule", "truancy")]


def team_call(n: int, rule: str = "mental-health", **kw: Any) -> ScoredCall:
    base: dict[str, object] = dict(
        call_id=f"c{n}", policy_version="p@1", basis="rule", matched_rules=(rule,),
        recommended="call_team", served=True, cleared=True,
        disposition="resolved_on_scene", backup=False, safety_incident=False)
    base.update(kw)
    return ScoredCall(**base)  # type: ignore[arg-type]


def to_team(n: int, reason: str = "known client, calm") -> OverrideSeen:
    return OverrideSeen(at=T0.replace(day=n % 28 + 1), by=f"d{n}", reason=reason,
                        from_destination="police", destination="call_team")


def kept(n: int, **kw: Any) -> ScoredCall:
    base: dict[str, Any] = dict(
        basis="exclusion", matched_rules=("weapon",), recommended="police", served=False,
        cleared=False, disposition=None)
    base.update(kw)
    return team_call(n, **base)


def card(calls: list[ScoredCall], *, supervisor: bool = True,
         t: Thresholds = Thresholds()):  # type: ignore[no-untyped-def]
    return score(calls, ENTRIES, version="p@1", since=T0, until=T1, thresholds=t,
                 supervisor=supervisor)


def by_id(c):  # type: ignore[no-untyped-def]
    return {e.id: e for e in c.entries}


def test_counts_go_to_the_deciding_entry_and_matched_exclusions_count_apart() -> None:
    calls = [
        team_call(1),
        team_call(2, disposition="police_took_over"),
        team_call(3, backup=True, disposition="resolved_on_scene", safety_incident=True,
                  team_answer="no"),
        team_call(4, served=False, cleared=False, disposition=None, team_answer="yes"),
        # Two exclusions held: the first decided, the second only matched.
        kept(5, matched_rules=("weapon", "violence", "truancy")),
        team_call(6, basis="no_rule", matched_rules=(), recommended="police", served=False,
                  cleared=False, disposition=None),
    ]
    e = by_id(card(calls))
    mh = e["mental-health"]
    assert (mh.decided, mh.sent_to_team, mh.served) == (4, 4, 3)
    assert mh.dispositions == {"resolved_on_scene": 2, "police_took_over": 1}
    assert (mh.backup_requested, mh.police_took_over, mh.safety_incidents) == (1, 2, 1)
    assert mh.right_responder_team.model_dump() == {"yes": 1, "no": 1, "unsure": 0}
    assert (e["weapon"].decided, e["weapon"].matched_not_decided) == (1, 0)
    assert (e["violence"].decided, e["violence"].matched_not_decided) == (0, 1)
    assert e[DEFAULT].decided == 1 and e[DEFAULT].kind == "default"
    assert (e["truancy"].decided, e["truancy"].matched_not_decided) == (0, 1)
    assert e["truancy"].kind == "rule"
    assert [x.id for x in card(calls).entries][:4] == ["weapon", "violence",
                                                        "mental-health", "truancy"]


def test_over_broad_needs_the_share_and_the_minimum() -> None:
    # 10 team calls, 2 police took over + 1 backup = 30 %: flagged.
    calls = [team_call(i) for i in range(7)]
    calls += [team_call(7, disposition="police_took_over"),
              team_call(8, disposition="police_took_over"), team_call(9, backup=True)]
    mh = by_id(card(calls))["mental-health"]
    assert mh.police_took_over == 3 and mh.sent_to_team == 10
    assert [f.kind for f in mh.flags] == ["over_broad"]
    assert "3 of the 10 calls" in mh.flags[0].why and "30%" in mh.flags[0].why
    # One call fewer: 3 of 9 is a higher share, but under the minimum of calls.
    assert by_id(card(calls[1:]))["mental-health"].flags == []
    # 2 of 10 (20 %): under the share.
    calls[9] = team_call(9)
    assert by_id(card(calls))["mental-health"].flags == []


def test_too_narrow_counts_calls_kept_overridden_to_the_team_and_cleared_without_police(
) -> None:
    good = [kept(i, overrides=(to_team(i),), served=True, cleared=True,
                 disposition="resolved_on_scene", dispatcher_answer="no",
                 dispatcher_note="team fits") for i in range(3)]
    not_counted = [
        kept(10, overrides=(to_team(10),), served=True, cleared=True,
             disposition="police_took_over"),  # police took over
        kept(11, overrides=(to_team(11),), served=True, cleared=True, backup=True,
             disposition="resolved_on_scene"),  # backup
        kept(12, overrides=(to_team(12),), served=True, cleared=False),  # not cleared
    ]
    w = by_id(card(good[:2] + not_counted))["weapon"]
    assert w.kept_from_team_cleared_without_police == 2 and w.flags == []
    assert w.overrides_toward_team == 5 and w.overrides_away_from_team == 0
    w = by_id(card(good + not_counted))["weapon"]
    assert [f.kind for f in w.flags] == ["too_narrow"]
    assert w.flags[0].why.startswith("3 calls it kept from the team")
    assert w.right_responder_dispatcher.no == 3
    assert w.sent_to_team == 0  # the rules kept them all from the team
    # Supervisors see the reasons, with the dispatcher's answer on the latest override.
    assert {(o.call_id, o.reason, o.direction, o.right_responder)
            for o in w.overrides or []} >= {("c0", "known client, calm", "toward_team", "no")}


def test_overrides_away_from_the_team_and_analysts_get_counts_without_reasons() -> None:
    away = OverrideSeen(at=T0, by="d1", reason="caller mentioned a gun",
                        from_destination="call_team", destination="police")
    calls = [team_call(1, overrides=(away,), served=False, cleared=False, disposition=None,
                       dispatcher_answer="unsure")]
    sup = by_id(card(calls))["mental-health"]
    assert sup.overrides_away_from_team == 1
    assert sup.overrides is not None and sup.overrides[0].reason == "caller mentioned a gun"
    ana = by_id(card(calls, supervisor=False))["mental-health"]
    assert ana.overrides is None and ana.overrides_away_from_team == 1
    assert ana.right_responder_dispatcher.unsure == 1
    assert "caller mentioned" not in card(calls, supervisor=False).model_dump_json()


def test_thresholds_come_from_settings() -> None:
    calls = [kept(i, overrides=(to_team(i),), served=True, cleared=True,
                  disposition="resolved_on_scene") for i in range(2)]
    assert by_id(card(calls))["weapon"].flags == []
    flagged = by_id(card(calls, t=Thresholds(too_narrow_min_calls=2)))["weapon"]
    assert [f.kind for f in flagged.flags] == ["too_narrow"]


def test_csv_has_one_row_per_entry_and_no_free_text() -> None:
    away = OverrideSeen(at=T0, by="d1", reason="=HYPERLINK(1)", from_destination="call_team",
                        destination="police")
    text = to_csv(card([team_call(1, overrides=(away,))]))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["id"] for r in rows] == ["weapon", "violence", "mental-health", "truancy"]
    mh = rows[2]
    assert (mh["decided"], mh["overrides_away_from_team"],
            mh["disposition_resolved_on_scene"]) == ("1", "1", "1")
    assert "HYPERLINK" not in text


def test_entries_of_lists_exclusions_then_rules_first_seen_first() -> None:
    docs = [{"exclusions": [{"id": "weapon"}], "rules": [{"id": "a"}, {"id": "b"}]},
            {"exclusions": [{"id": "weapon"}, {"id": "medical"}], "rules": [{"id": "c"}]}]
    assert entries_of(docs) == [("exclusion", "weapon"), ("exclusion", "medical"),
                                ("rule", "a"), ("rule", "b"), ("rule", "c")]
