"""The simulation of a policy of programs in CAD time (routing/queue_sim.py, issue 13):
hand-made days with fixed service times whose outcomes are worked out by hand."""

from __future__ import annotations

from typing import Any

from routing.whatif import ServiceTimes, SimCall, WhatIfReport, simulate
from rules.evaluate import CompiledPolicy
from tests.factories import compiled, facts, policy_doc

# Tuesday 10 March 2026 in New York (EDT, UTC-4).
DAY = "2026-03-10"
NEXT_DAY = "2026-03-11"
ONE_HOUR = ServiceTimes(distribution="fixed", default_minutes=60.0, by_category={})


def programs_policy(*, limit: float | None = 45, units: int = 1, later: bool = False,
                    hours: list[str] | None = None, max_queued: int | None = None,
                    **field: Any) -> CompiledPolicy:
    """A field program ('field': cat_a and cat_b, one unit, 08:00-20:00, cat_a may wait
    `limit` minutes, referrals deferred); with `later`, a second program ('backup': cat_a,
    one unit, at all hours) after it."""
    doc = policy_doc(rules=[
        {"id": "a", "category": "cat_a", "action": "team", "when": {"nature_code": ["A"]}},
        {"id": "b", "category": "cat_b", "action": "team", "when": {"nature_code": ["B"]}},
    ], exclusions=[{"id": "weapon", "when": {"flags_any": ["weapon"]}}])
    program: dict[str, Any] = {
        "id": "field", "name": "Field team", "categories": ["cat_a", "cat_b"],
        "hours": {"daily": hours or ["08:00-20:00"]}, "units": units,
        "queue": [{"category": "cat_a", "max_wait_minutes": limit}] if limit else [],
        "deferrable": ["officer_referral"], **field}
    if max_queued is not None:
        program["max_queued"] = max_queued
    doc["programs"] = [program]
    if later:
        doc["programs"].append({"id": "backup", "name": "Backup", "categories": ["cat_a"],
                                "units": 1})
    return compiled(doc)


def call(call_id: str, clock: str, code: str = "A", day: str = DAY, **fields: Any
         ) -> SimCall:
    offset = "-04:00"
    return SimCall(call_id, facts(nature_code=code, occurred_at=f"{day}T{clock}:00{offset}",
                                  **fields))


def run(calls: list[SimCall], policy: CompiledPolicy, *, times: ServiceTimes = ONE_HOUR,
        seed: int = 0, may_wait: bool = True) -> WhatIfReport:
    return simulate(calls, policy, policy, service_times=times, seed=seed, keep_calls=True,
                    may_wait=may_wait)


def by_id(report: WhatIfReport) -> dict[str, tuple[str, str | None, bool, float | None]]:
    return {c.call_id: (c.destination, c.program_id, c.waited, c.wait_minutes)
            for c in report.decided}


def test_a_queued_call_is_taken_when_the_unit_frees() -> None:
    # c1 holds the one unit 14:00-15:00; c2 (14:30) waits for it and is taken at 15:00,
    # then holds it until 16:00, so c3 at 15:30 waits too and is taken at 16:00.
    r = run([call("c1", "14:00"), call("c2", "14:30"), call("c3", "15:30")],
            programs_policy())
    assert by_id(r) == {"c1": ("call_team", "field", False, None),
                        "c2": ("call_team", "field", True, 30.0),
                        "c3": ("call_team", "field", True, 30.0)}
    cand = r.candidate
    assert cand.queue is not None
    assert (cand.queue.queued, cand.queue.queued_served, cand.queue.fell_back) == (2, 2, 0)
    assert cand.queue.waited_served == 2
    assert cand.reach == 1.0 and cand.eligible_served == 3
    assert cand.coverage.team_responses == 3
    # busy 14:00-15:30 within the calls' span (14:00-15:30), 12 hours on duty that day
    # are not all in the span: on duty the whole span, 1.5 hours of 1 unit.
    field = cand.programs[0]
    assert field.unit_hours_available == 1.5 and field.unit_hours_busy == 1.5
    assert field.utilisation == 1.0


def test_without_waiting_the_same_calls_go_to_police() -> None:
    r = run([call("c1", "14:00"), call("c2", "14:30"), call("c3", "15:30")],
            programs_policy(), may_wait=False)
    assert by_id(r) == {"c1": ("call_team", "field", False, None),
                        "c2": ("police", "field", False, None),
                        "c3": ("call_team", "field", False, None)}
    assert r.candidate.reach == round(2 / 3, 6)
    assert r.candidate.queue is not None and r.candidate.queue.queued == 0
    assert r.candidate.queue.not_served == {"off_hours": 0, "units_busy": 1,
                                            "wait_exceeded": 0, "outside_area": 0,
                                            "override": 0}


def test_a_queued_call_falls_back_at_its_limit() -> None:
    # limit 20 min: c2 queued at 14:30 falls back at 14:50, before the unit frees at 15:00
    r = run([call("c1", "14:00"), call("c2", "14:30")], programs_policy(limit=20))
    assert by_id(r)["c2"] == ("police", "field", True, 20.0)
    d = next(c for c in r.decided if c.call_id == "c2")
    assert d.not_served_reason == "wait_exceeded"
    q = r.candidate.queue
    assert q is not None
    assert (q.queued, q.queued_served, q.fell_back, q.fell_back_to_program) == (1, 0, 1, 0)
    assert q.not_served["wait_exceeded"] == 1
    assert r.candidate.programs[0].fell_back == 1
    assert (q.waits.calls, q.waits.p50_minutes, q.waits.p90_minutes) == (1, 20.0, 20.0)


def test_a_call_falling_back_is_taken_by_a_later_program_with_a_free_unit() -> None:
    # b (13:40, cat_b, 2 hours) holds field's unit until 15:40; x (13:45) finds it busy
    # and the backup takes it until 14:45; c2 (14:30) finds both busy and waits for
    # field (limit 20). The backup frees at 14:45 but c2 waits for field, not for it; at
    # 14:50 c2 falls back and the backup, free, takes it.
    times = ServiceTimes(distribution="fixed", default_minutes=60.0,
                         by_category={"cat_b": 120})
    r = run([call("b", "13:40", code="B"), call("x", "13:45"), call("c2", "14:30")],
            programs_policy(limit=20, later=True), times=times)
    assert by_id(r)["x"] == ("call_team", "backup", False, None)
    assert by_id(r)["c2"] == ("call_team", "backup", True, 20.0)
    q = r.candidate.queue
    assert q is not None and (q.fell_back, q.fell_back_to_program) == (1, 1)
    field, backup = r.candidate.programs
    assert (field.queued, field.fell_back, field.served) == (1, 1, 1)
    assert backup.served == 2
    # busy within the calls' span (13:40-14:30): field 50 min, backup 45 min
    assert (field.unit_hours_busy, backup.unit_hours_busy) == (round(50 / 60, 3), 0.75)


def test_a_unit_freeing_off_duty_offers_nothing() -> None:
    # c1 19:30-20:30; c2 (19:45, limit 60) waits; the unit frees at 20:30, off duty:
    # nothing is offered, and c2 falls back at 20:45.
    r = run([call("c1", "19:30"), call("c2", "19:45")], programs_policy(limit=60))
    assert by_id(r)["c2"] == ("police", "field", True, 60.0)


def test_a_deferred_call_is_taken_at_its_shift_start() -> None:
    # a referral at 22:00 is deferred to 08:00 the next day; the unit is free then
    r = run([call("r1", "22:00", code="B", channel="officer_referral")], programs_policy())
    assert by_id(r) == {"r1": ("call_team", "field", True, 600.0)}
    q = r.candidate.queue
    assert q is not None
    assert (q.deferred, q.deferred_served, q.still_waiting) == (1, 1, 0)
    assert (q.deferred_waits.calls, q.deferred_waits.p50_minutes) == (1, 600.0)
    assert q.queued == 0 and r.candidate.programs[0].deferred == 1


def test_a_deferred_call_waits_for_a_unit_busy_at_its_shift_start() -> None:
    # shifts 08:00-12:00 and 13:00-20:00; c1 (11:50, 90 min) holds the unit until 13:20;
    # the referral at 12:10 is deferred to 13:00, finds the unit busy, and is taken when
    # it frees at 13:20 (70 minutes after the referral).
    times = ServiceTimes(distribution="fixed", default_minutes=60.0, by_category={"cat_a": 90})
    r = run([call("c1", "11:50"), call("r1", "12:10", code="B", channel="officer_referral")],
            programs_policy(hours=["08:00-12:00", "13:00-20:00"]), times=times)
    assert by_id(r)["r1"] == ("call_team", "field", True, 70.0)


def test_units_freed_off_duty_take_the_waiting_calls_at_the_next_shift() -> None:
    # shifts 08:00-10:00 and 13:00-14:00; c1 (09:55, five hours) holds the unit until
    # 14:55. The referral at 09:58 finds it busy: deferred to 13:00, when it is still busy;
    # it frees at 14:55, off duty. The next shift's start (08:00 the next day) gives the
    # free unit the referral: 22 h 02 min after it came in, not never.
    times = ServiceTimes(distribution="fixed", default_minutes=60.0,
                         by_category={"cat_a": 300})
    r = run([call("c1", "09:55"), call("r1", "09:58", code="B", channel="officer_referral")],
            programs_policy(hours=["08:00-10:00", "13:00-14:00"]), times=times)
    assert by_id(r)["r1"] == ("call_team", "field", True, 22 * 60 + 2.0)
    q = r.candidate.queue
    assert q is not None and (q.deferred_served, q.still_waiting) == (1, 0)


def test_queue_waits_p50_and_p90_by_hand() -> None:
    # One unit, an hour a call. c0 09:00-10:00; c1, c2, c3 (09:10, 09:20, 09:30) queue
    # and are taken at 10:00, 11:00, 12:00: waits 50, 100 and 150 minutes. Nearest rank:
    # p50 is the 2nd of 3 (100), p90 the 3rd (150). The cat_b call at 09:40 has no limit:
    # police, units busy.
    r = run([call("c0", "09:00"), call("c1", "09:10"), call("c2", "09:20"),
             call("c3", "09:30"), call("b", "09:40", code="B")], programs_policy(limit=600))
    q = r.candidate.queue
    assert q is not None
    assert [by_id(r)[c][3] for c in ("c1", "c2", "c3")] == [50.0, 100.0, 150.0]
    assert (q.waits.calls, q.waits.p50_minutes, q.waits.p90_minutes) == (3, 100.0, 150.0)
    assert q.waits_by_category["cat_a"] == q.waits
    assert q.waits_by_program["field"] == q.waits
    assert r.candidate.programs[0].waits == q.waits
    assert by_id(r)["b"] == ("police", "field", False, None)
    assert q.not_served["units_busy"] == 1


def test_the_more_urgent_queued_call_is_offered_first() -> None:
    r = run([call("c0", "09:00"), call("low", "09:10", priority=4),
             call("high", "09:20", priority=1)], programs_policy(limit=600))
    assert by_id(r)["high"][3] == 40.0 and by_id(r)["low"][3] == 110.0


def test_calls_alike_at_one_instant_see_the_queue_grow() -> None:
    # Alike in every field, at the same time: the first waits (position 1), the second
    # finds the queue full (max_queued 1) and goes to police: no outcome is reused
    # across different queue states.
    r = run([call("c0", "14:00"), call("c1", "14:30"), call("c2", "14:30")],
            programs_policy(max_queued=1))
    assert by_id(r)["c1"] == ("call_team", "field", True, 30.0)
    assert by_id(r)["c2"] == ("police", "field", False, None)


def test_training_calls_hold_no_unit_and_never_wait() -> None:
    r = run([call("t", "14:00", purpose="training"), call("c1", "14:10")],
            programs_policy())
    assert by_id(r) == {"t": ("call_team", "field", False, None),
                        "c1": ("call_team", "field", False, None)}
    assert r.candidate.coverage.team_responses == 1


def test_reach_per_program_and_overall() -> None:
    # field takes cat_a in D1 only; backup takes cat_a everywhere. c1 (D1) -> field;
    # c2 (D2) -> backup; c3 (D2, 14:10) finds backup busy and has no queue there: police.
    doc_policy = programs_policy(limit=None, later=True, area={"districts": ["D1"]})
    r = run([call("c1", "14:00", district="D1"), call("c2", "14:05", district="D2"),
             call("c3", "14:10", district="D2")], doc_policy)
    cand = r.candidate
    field, backup = cand.programs
    assert (field.eligible, field.served, field.reach) == (1, 1, 1.0)
    assert (backup.eligible, backup.served, backup.reach) == (3, 1, round(1 / 3, 6))
    assert (cand.eligible_served, cand.coverage.eligible, cand.reach) == (2, 3,
                                                                          round(2 / 3, 6))


def test_safety_exclusions_never_reach_a_team() -> None:
    r = run([call("w", "14:00", flags=["weapon"]), call("c1", "14:00")], programs_policy())
    assert by_id(r)["w"][0] == "police" and r.candidate.safety_exclusions_to_team == 0


def test_same_seed_same_report_and_the_seed_matters() -> None:
    times = ServiceTimes(default_minutes=50.0, by_category={})  # lognormal
    calls = [call(f"c{i}", f"{9 + i // 6:02d}:{i % 6 * 10:02d}") for i in range(48)]
    p = programs_policy(limit=90)
    one, two = run(calls, p, times=times, seed=3), run(calls, p, times=times, seed=3)
    assert one.model_dump() == two.model_dump()
    assert one.decided == two.decided
    other = run(calls, p, times=times, seed=4)
    assert [c.wait_minutes for c in other.decided] != [c.wait_minutes for c in one.decided]


def test_a_run_keeps_only_the_results_of_calls_still_waiting() -> None:
    """A year of calls must fit in memory: a call that did not wait is final on arrival,
    released (ProgramsRun.release), and its result is the one `finish` would give."""
    from routing.queue_sim import CallResult, ProgramsRun

    policy = programs_policy()
    calls = [call("c1", "14:00"), call("c2", "14:30"), call("c3", "14:40", "B"),
             call("c4", "15:30"), call("c5", "21:00", channel="officer_referral")]

    def service_s(i: int, category: str | None) -> float:
        return 3600.0

    def sim() -> ProgramsRun:
        return ProgramsRun(policy, service_s, key_fields=("nature_code", "occurred_at",
                                                          "channel", "priority"),
                           span_end=None)

    kept, released = sim(), sim()
    out: dict[int, CallResult] = {}
    for i, c in enumerate(calls):
        kept.arrive(i, c.facts)
        released.arrive(i, c.facts)
        r = released.release(i)
        if r is not None:
            out[i] = r
        out.update(released.release_settled())
        # Only calls still waiting stay in the run.
        assert set(released.results) == set(released.waiting) == {
            j for j in range(i + 1) if j not in out}
    # c1 took the unit, c3 (cat_b may not wait) went to police, c2 and c4 (queued) were
    # taken at 15:00 and 16:00, before c5 came at 21:00; c5 (a referral) is deferred.
    assert set(out) == {0, 1, 2, 3}
    assert released.release(4) is None  # c5 still waits
    out |= released.finish()
    assert out == kept.finish()
