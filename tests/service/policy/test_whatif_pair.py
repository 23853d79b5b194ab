"""Both versions decided at once (service/policy/whatif_pair.py): the baseline in a child
forked from the deciding process. Its report is the one deciding both in one process
gives, whole; a child that fails or dies fails the report and says which; and a child
does not outlive its parent."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from typing import Any

import pytest

from routing.whatif import ServiceTimes, replay_of, simulate
from service.policy.whatif_pair import PairFailed, decide_pair, shown_in_parent
from tests.factories import busy_weeks, compiled, one_team_doc, shipped_with


@pytest.mark.parametrize("may_wait", [True, False])
def test_the_pair_reports_what_deciding_both_here_gives(may_wait: bool) -> None:
    calls = busy_weeks(7)
    candidate = shipped_with(1, "one-pair", max_queued=2)
    baseline = shipped_with(3, "three-pairs")
    times = ServiceTimes(distribution="exponential")
    decided = multiprocessing.Array("q", 2, lock=False)
    where = multiprocessing.Array("q", 2, lock=False)  # the process deciding each version

    def counter(slot: int) -> Any:
        def advance(n: int) -> None:
            decided[slot] += n
            where[slot] = os.getpid()
        return advance

    pair = decide_pair(replay_of(calls, service_times=times, seed=7), candidate, baseline,
                       may_wait=may_wait, keep_calls=True, progress=(counter(0), counter(1)))
    assert where[0] == os.getpid() and where[1] not in (0, os.getpid())
    here = simulate(calls, candidate, baseline, service_times=times, seed=7,
                    may_wait=may_wait, keep_calls=True)
    assert here.changed > 50  # many changed calls, each with both explanations
    if may_wait:
        assert here.candidate.queue is not None and here.candidate.queue.queued
    assert pair.model_dump() == here.model_dump()
    assert pair.changed_calls == here.changed_calls
    assert pair.decided == here.decided
    assert list(decided) == [len(calls), len(calls)]  # each version counted every call


def test_against_one_team_the_same_report() -> None:
    calls = busy_weeks(8, 1500)
    one_team = one_team_doc()
    one_team["program"]["units"] = 1
    pair = decide_pair(replay_of(calls, seed=8), compiled(one_team), shipped_with(2, "two"))
    here = simulate(calls, compiled(one_team), shipped_with(2, "two"), seed=8)
    assert here.changed > 0
    assert pair.model_dump() == here.model_dump()
    assert pair.changed_calls == here.changed_calls


def test_a_parent_showing_progress_counts_calls_decided_by_both() -> None:
    shown: list[int] = []
    calls = busy_weeks(11, 1700)
    policy = shipped_with(2, "two")
    decide_pair(replay_of(calls, seed=11), policy, policy,
                progress=shown_in_parent(shown.append))
    assert sum(shown) == len(calls) and len(shown) > 2  # as it went, and whole at the end


def _fail_in_child(n: int) -> None:
    raise RuntimeError("the baseline broke")


def _die_in_child(n: int) -> None:
    os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer would


def _noop(n: int) -> None:
    pass


@pytest.mark.parametrize(("child", "said"), [
    (_fail_in_child, "the baseline's process failed: RuntimeError: the baseline broke"),
    (_die_in_child, "the baseline's process ended before sending its outcomes")])
def test_a_child_that_fails_or_dies_fails_the_report_and_says_so(child: Any, said: str
                                                                  ) -> None:
    replay = replay_of(busy_weeks(9, 600), seed=9)
    policy = shipped_with(2, "two")
    with pytest.raises(PairFailed) as failed:
        decide_pair(replay, policy, policy, progress=(_noop, child))
    assert str(failed.value) == said


def _decide_for_long(child_pid: Any) -> None:
    """A parent deciding long enough to be killed midway; its child says its pid."""
    def mark(n: int) -> None:
        child_pid.value = os.getpid()

    replay = replay_of(busy_weeks(10, 3000) * 40, seed=10)
    policy = shipped_with(1, "one")
    decide_pair(replay, policy, policy, progress=(_noop, mark))


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"  # dead, not yet reaped
    except FileNotFoundError:
        return True


def test_the_child_ends_with_its_parent() -> None:
    """A stopped job's process is terminated: its child must not decide on alone."""
    spawn = multiprocessing.get_context("spawn")
    child_pid = spawn.Value("q", 0, lock=False)
    parent = spawn.Process(target=_decide_for_long, args=(child_pid,))
    parent.start()
    deadline = time.monotonic() + 60
    while not child_pid.value and parent.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    pid = child_pid.value
    assert pid and parent.is_alive(), "the parent ended before its child started deciding"
    parent.kill()
    parent.join()
    deadline = time.monotonic() + 10
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _gone(pid)
