"""Both versions of a what-if decided at once: the candidate in this process, the
baseline in a child forked from it.

The versions are independent of each other (`routing.whatif.run_version`), so on two
cores a year of calls is decided in about the time one version takes. The child is
forked after the calls are read: it shares them copy-on-write, so they are read once.
It sends back what the comparison needs, small: its figures, and each call's outcome as
an index into the few hundred distinct ones (`routing.whatif.briefs`); then the
explanations of the calls whose destination changed, which it decides afresh while this
process decides the candidate's. The report is the one `routing.whatif.simulate` makes
deciding both here (tests hold it to that).

Fork, not spawn: a spawned child would read the calls again. Call this only from a
process with no other thread (the what-if job's own, and the `liaison simulate` command),
as a forked child has only the thread that forked. The child ends with its parent
(PR_SET_PDEATHSIG on Linux) and never returns into the caller's code.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
from array import array
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, NoReturn

from routing.whatif import (
    EXAMPLES_PER_CHANGE,
    Replay,
    WhatIfReport,
    briefs,
    changed_at,
    compare,
    decided_calls,
    explanations,
    run_version,
    version_report,
)
from rules.evaluate import CompiledPolicy

Progress = Callable[[int], None]


class PairFailed(Exception):
    """The baseline's process failed or ended before it said all it had to."""


def decide_pair(replay: Replay, candidate: CompiledPolicy, baseline: CompiledPolicy, *,
                may_wait: bool = True, examples: int = EXAMPLES_PER_CHANGE,
                keep_calls: bool = False, progress: tuple[Progress, Progress] | None = None
                ) -> WhatIfReport:
    """`simulate`'s report over `replay`, the baseline decided in a forked child.
    `progress`: (candidate's, baseline's) calls decided, each called in its own process
    (give callbacks that write to memory both share, such as a multiprocessing Array)."""
    here, there = multiprocessing.Pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child
        here.close()
        _baseline(replay, baseline, there, parent, may_wait=may_wait,
                  progress=progress[1] if progress else None)
    there.close()
    try:
        cand = run_version(replay, candidate, may_wait=may_wait,
                           progress=progress[0] if progress else None)
        cand_report = version_report(cand, replay)
        base_report, table, codes = _expect(here, "outcomes")
        if progress is not None:
            progress[0](0)  # the child's count is whole now: a parent showing both sees it
        base = [table[c] for c in _codes(codes)]
        changed = changed_at(cand.outcomes, base)
        here.send(changed)
        cand_why = explanations(cand, replay, changed)  # while the child makes its own
        (base_why,) = _expect(here, "explanations")
        return compare(replay, cand_report, base_report, candidate_outcomes=cand.outcomes,
                       baseline_outcomes=base, changed=changed, candidate_why=cand_why,
                       baseline_why=base_why, examples=examples,
                       decided=decided_calls(cand, replay) if keep_calls else None)
    finally:
        here.close()
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # done already, unless this failed first
        os.waitpid(pid, 0)


def shown_in_parent(advance: Progress) -> tuple[Progress, Progress]:
    """`decide_pair`'s progress callbacks for a parent that shows calls decided by both
    versions with `advance(n)` (a progress bar): the child's count is kept in memory the
    two share, and the parent adds it in as it counts its own."""
    decided = multiprocessing.Array("q", 2, lock=False)  # each slot written by one process
    shown = [0]

    def candidate(n: int) -> None:
        decided[0] += n
        both = (decided[0] + decided[1]) // 2
        if both > shown[0]:
            advance(both - shown[0])
            shown[0] = both

    def baseline(n: int) -> None:
        decided[1] += n

    return candidate, baseline


def _codes(data: bytes) -> list[int]:
    codes = array("I")
    codes.frombytes(data)
    return codes.tolist()


def _expect(conn: Connection, what: str) -> tuple[Any, ...]:
    try:
        message = conn.recv()
    except EOFError:
        raise PairFailed(f"the baseline's process ended before sending its {what}") from None
    if message[0] == "failed":
        raise PairFailed(f"the baseline's process failed: {message[1]}")
    return tuple(message[1:])


def _baseline(replay: Replay, baseline: CompiledPolicy, conn: Connection, parent: int, *,
              may_wait: bool, progress: Progress | None) -> NoReturn:
    """The child: decide the baseline, send its outcomes, then the explanations asked
    for; never returns (its exit skips the parent's cleanup: it owns none of it)."""
    code = 0
    try:
        _end_with(parent)
        run = run_version(replay, baseline, may_wait=may_wait, progress=progress)
        table, codes = briefs(run.outcomes)
        conn.send(("outcomes", version_report(run, replay), table, codes.tobytes()))
        changed: list[int] = conn.recv()
        conn.send(("explanations", explanations(run, replay, changed)))
    except BaseException as exc:  # noqa: BLE001 - said to the parent, which raises it
        code = 1
        with contextlib.suppress(Exception):
            conn.send(("failed", f"{type(exc).__name__}: {exc}"))
    finally:
        os._exit(code)


def _end_with(parent: int) -> None:
    """Be killed when the parent ends (a stopped job's process is terminated; its child
    would otherwise decide on alone), where the system can say so."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it ended before that took hold
        os._exit(1)

