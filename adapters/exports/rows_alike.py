"""An export's rows as the calls `liaison simulate` decides, rows alike mapped once.

A year's export repeats a few thousand kinds of row: the same call type, priority,
beat and address, another incident number and time. What a row becomes (skipped, failed,
refused by the CAD contract, or a call's facts) depends on the columns the profile reads;
of them, the incident number and the times only give the call its id and its time and
decide whether the row fails or is refused (`Mapper.read_times`, `takes_ids`,
`takes_time`). So the first row of each kind is mapped, checked against the contract and
folded in full (the plain path), and a later row alike in every other column the profile
reads takes its outcome, with its own id and time checked and given. Anything else a
later row might do differently (a time that fails, a close before the call, an offset
not seen yet) is sent down the plain path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from operator import itemgetter
from typing import Any, Literal

from adapters.exports.check import contract_problem
from adapters.exports.mapping import DIGEST_LENGTH, Mapped, Mapper, Row
from routing.whatif import SharedValues, SimCall
from rules.call import CallFacts
from service.calls.event import takes_ids, takes_time
from service.calls.fold import fold

Outcome = tuple[Literal["skip", "fail", "refused"], str] | tuple[Literal["call"], SimCall]
# The columns that give only the call's id and times: a row's kind leaves them out.
_OWN = ("incident_id", "received_at", "closed_at")
# The contract tests only the events' ids' lengths, and a row's digest always has as
# many digits: a row alike is checked with this one in place of its own.
_ANY_DIGEST = "0" * DIGEST_LENGTH


@dataclass(frozen=True)
class _Skipped:
    reason: str


class RowsAlike:
    """Each row's outcome (`__call__`): the plain path's, rows alike mapped once."""

    def __init__(self, mapper: Mapper) -> None:
        self.mapper = mapper
        self.shared = SharedValues()
        # Every column the profile reads but those read only for the id and the times
        # (one a test or another field also reads counts).
        kind = sorted(mapper.profile.referenced_columns(leave_out=_OWN))
        self._kind = (itemgetter(*kind) if len(kind) > 1 else
                      (lambda row: (row[kind[0]],)) if kind else (lambda row: ()))
        self._known: dict[Any, _Skipped | CallFacts] = {}

    def __call__(self, n: int, row: Row | str) -> Outcome:
        if isinstance(row, str):
            return self._plain(n, row, None)
        kind = self._kind(row)
        known = self._known.get(kind)
        if known is None:
            return self._plain(n, row, kind)
        if isinstance(known, _Skipped):
            return "skip", known.reason
        out = Mapped(n, "send", incident_id=self.mapper.incident_id(row))
        failed = self.mapper.read_times(out, row)
        if failed is not None:
            return "fail", failed.reason or "?"
        at, closed, incident = out.at, out.closed, out.incident_id
        assert at is not None and incident is not None
        created_id, closed_id = self.mapper.event_ids(incident, _ANY_DIGEST)
        facts = None
        if (takes_ids(created_id, incident) and takes_time(at)
                and (closed is None or (takes_ids(closed_id, incident) and takes_time(closed)
                                        and closed.astimezone(UTC) >= at.astimezone(UTC)))):
            facts = self.shared.at(known, at)
        if facts is None:
            return self._plain(n, row, None)
        return "call", SimCall(call_id=incident, facts=facts)

    def _plain(self, n: int, row: Row | str, kind: Any) -> Outcome:
        """The row mapped, checked and folded in full; remembered by its kind (`kind`
        None: not) when later rows alike can take it."""
        m = self.mapper.map_row(n, row)
        if m.outcome == "skip":
            if kind is not None:
                self._known[kind] = _Skipped(m.reason or "?")
            return "skip", m.reason or "?"
        if m.outcome == "fail":
            return "fail", m.reason or "?"
        problem, events = contract_problem(m.events)
        if problem is not None:
            return "refused", problem
        facts = self.shared(fold(events).facts())
        assert m.at is not None
        if kind is not None and (m.closed is None
                                 or m.closed.astimezone(UTC) >= m.at.astimezone(UTC)):
            self._known[kind] = facts
        return "call", SimCall(call_id=m.incident_id or f"row {m.row}", facts=facts)
