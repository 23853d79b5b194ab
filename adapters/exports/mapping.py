"""Rows of a city's export to generic CAD events, as that city's CAD would have sent them.

`Mapper` compiles a profile once (lookups read, code rules indexed, tests built) and then
maps each row to one outcome: `send` (with its events), `skip` (with the profile's reason)
or `fail` (no event can be formed: no incident number, a time that cannot be read).
A row whose event the contract refuses (no nature code, say) is still sent: the server
answers 422 for it as it would for the CAD, and `profile check` predicts that offline.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from adapters.exports.profile import (
    TIME_COLUMNS,
    CodeRule,
    Column,
    Lookup,
    Match,
    Profile,
    Time,
    When,
)

Row = dict[str, str]
Outcome = Literal["send", "skip", "fail"]

# Some re-hosted exports carry a byte-order mark decoded twice (UTF-8 read as Latin-1).
_BOMS = ("\ufeff", "\u00ef\u00bb\u00bf")


class ExportError(Exception):
    """The export (or a lookup beside it) cannot be read with this profile."""


@dataclass
class Mapped:
    """One export row and what becomes of it."""

    row: int  # 1-based data row number (the header is not counted)
    outcome: Outcome
    reason: str | None = None  # the same for every row that fails the same way
    value: str | None = None  # what this row had that failed (e.g. its time), if any
    incident_id: str | None = None
    code: str | None = None  # the city's nature code
    text: str | None = None  # the city's nature text
    nature_code: str | None = None  # what is sent
    code_rule: int | None = None  # index of the profile's code rule that matched
    category: str | None = None  # the rule's category hint
    channel: str | None = None
    disposition: str | None = None
    at: datetime | None = None  # the created event's time
    closed: datetime | None = None  # the closed event's time
    events: list[dict[str, Any]] = field(default_factory=list)


# Formats strptime reads as fixed-width ASCII fields: a text of exactly that shape is
# read with int(), as strptime would read it (a field out of range fails in datetime(),
# as it fails in strptime); any other text goes to strptime. A year's export is a
# million times: strptime is most of a row's reading.
_FIXED_WIDTH = {"%Y-%m-%d %H:%M:%S": re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})")}


def _strptime(text: str, fmt: str) -> datetime:
    fixed = _FIXED_WIDTH.get(fmt)
    found = fixed.fullmatch(text) if fixed is not None else None
    if found is None:
        return datetime.strptime(text, fmt)
    year, month, day, hour, minute, second = map(int, found.groups())
    return datetime(year, month, day, hour, minute, second)


DIGEST_LENGTH = 12


class TimeUnreadable(ValueError):
    """A time the profile cannot read: `rule` says how (the same for every such row),
    `value` what the row had."""

    def __init__(self, value: str, rule: str) -> None:
        self.value, self.rule = value, rule
        super().__init__(f"'{value}' {rule}")


class TimeReader:
    """One time column's reading: a pattern (optional) cuts out the time, then the formats
    are tried in order; the result is made aware in the profile's zone, DST-correct."""

    def __init__(self, spec: Time, zone: ZoneInfo, column: Column | None = None) -> None:
        # A column's own format comes without time.pattern (another shape altogether); its
        # own pattern alone is read with time.format.
        formats, pattern = spec.format, spec.pattern
        if column is not None and column.format is not None:
            formats, pattern = column.format, column.pattern
        elif column is not None and column.pattern is not None:
            pattern = column.pattern
        self.formats = [formats] if isinstance(formats, str) else list(formats or [])
        self.pattern = re.compile(pattern) if pattern else None
        self.daylight = frozenset(map(_norm, spec.dst.daylight)) if spec.dst else frozenset()
        self.standard = frozenset(map(_norm, spec.dst.standard)) if spec.dst else frozenset()
        self.spec, self.zone = spec, zone

    def _naive(self, text: str) -> datetime:
        for fmt in self.formats:
            try:
                return datetime.fromisoformat(text) if fmt == "iso" else \
                    _strptime(text, fmt)
            except ValueError:
                continue
        want = " or ".join("an ISO 8601 time" if f == "iso" else f"format '{f}'"
                           for f in self.formats)
        raise TimeUnreadable(text, f"is not {want}")

    def read(self, text: str) -> datetime:
        """An export's wall-clock time as an aware datetime in the zone.

        A time given twice (clocks go back) takes what the `dst` part says, else the
        `ambiguous` choice; a time that never happened (clocks go forward) is moved forward
        by the gap, or refused."""
        later = self.spec.ambiguous == "later"
        if self.pattern is not None:
            found = self.pattern.fullmatch(text.strip())
            if found is None:
                raise TimeUnreadable(text, f"does not match pattern '{self.pattern.pattern}'")
            if "dst" in self.pattern.groupindex and found["dst"] is not None:
                mark = _norm(found["dst"])
                later = mark in self.standard if mark in self.standard | self.daylight \
                    else later
            naive = self._naive(found["time"])
        else:
            naive = self._naive(text)
        if naive.tzinfo is not None:
            return naive
        zone = self.zone
        first = naive.replace(tzinfo=zone, fold=0)
        normal = first.astimezone(UTC).astimezone(zone)
        if normal.replace(tzinfo=None) != naive:
            if self.spec.nonexistent == "reject":
                raise TimeUnreadable(text, f"never happened in {zone.key} (clocks went "
                                           "forward)")
            return normal
        return naive.replace(tzinfo=zone, fold=1) if later else first


def local_time(text: str, spec: Time, zone: ZoneInfo) -> datetime:
    """`text` read with the profile's `time` settings (see TimeReader.read)."""
    return TimeReader(spec, zone).read(text)


def _clean_header(name: str) -> str:
    for bom in _BOMS:
        name = name.removeprefix(bom)
    return name.strip()


def read_rows(path: Path, profile: Profile, *, limit: int | None = None
              ) -> Iterator[tuple[int, Row | str]]:
    """(row number, the row's values by column) for each data row; a row whose field count
    differs from the header's comes as a reason instead. Blank lines are not rows."""
    try:
        f = open(path, newline="", encoding=profile.source.encoding)  # noqa: SIM115
    except OSError as exc:
        raise ExportError(f"cannot read {path}: {exc.strerror}") from None
    with f:
        reader = csv.reader(f, delimiter=profile.source.delimiter)
        try:
            header = [_clean_header(h) for h in next(reader)]
        except StopIteration:
            raise ExportError(f"{path} is empty: no header line") from None
        except (UnicodeDecodeError, csv.Error) as exc:
            raise ExportError(f"cannot read the header of {path}: {exc}") from None
        missing = {c: where for c, where in profile.referenced_columns().items()
                   if c not in header}
        if missing:
            named = "; ".join(f"'{c}' (named at {where})" for c, where in missing.items())
            raise ExportError(f"{path} has no column {named}; its columns are: "
                              f"{', '.join(header)}")
        n = 0
        try:
            for values in reader:
                if not values:
                    continue
                n += 1
                if limit is not None and n > limit:
                    return
                if len(values) != len(header):
                    yield n, f"the row has {len(values)} fields, the header {len(header)}"
                else:
                    yield n, dict(zip(header, values, strict=True))
        except (UnicodeDecodeError, csv.Error) as exc:
            raise ExportError(f"{path}: cannot read data row {n + 1}: {exc}") from None


def _norm(v: str) -> str:
    return v.strip().upper()


def value_test(m: Match) -> Callable[[str | None], bool]:
    """A Match as a test on one value (None never holds)."""
    if m.regex is not None:
        rx = re.compile(m.regex, re.IGNORECASE)
        return lambda v: v is not None and rx.search(v.strip()) is not None
    values = tuple(map(_norm, m.values()))
    if m.in_ is not None:
        whole = frozenset(values)
        return lambda v: v is not None and _norm(v) in whole
    if m.prefix is not None:
        return lambda v: v is not None and _norm(v).startswith(values)
    if m.suffix is not None:
        return lambda v: v is not None and _norm(v).endswith(values)
    return lambda v: v is not None and any(part in _norm(v) for part in values)


def _test(w: When) -> Callable[[Row], bool]:
    if w.column is not None:
        col = w.column
        if w.empty is not None:
            want_empty = w.empty
            return lambda row: (row[col].strip() == "") == want_empty
        holds = value_test(w)
        return lambda row: holds(row[col])
    if w.any is not None:
        subs = [_test(s) for s in w.any]
        return lambda row: any(s(row) for s in subs)
    if w.all is not None:
        subs_all = [_test(s) for s in w.all]
        return lambda row: all(s(row) for s in subs_all)
    assert w.not_ is not None
    inner = _test(w.not_)
    return lambda row: not inner(row)


def _names_code(text: str, code: str) -> bool:
    """The text already shows the code (one column gives both): no `[code]` after it."""
    return re.search(rf"(?<!\w){re.escape(code.strip())}(?!\w)", text, re.IGNORECASE) \
        is not None


@dataclass
class _CodeTest:
    """A code rule that is not a list of whole codes: tried in order with the others."""

    index: int
    code: Callable[[str | None], bool] | None
    text: Callable[[str | None], bool] | None
    when: Callable[[Row], bool] | None

    def holds(self, code: str | None, text: str | None, row: Row) -> bool:
        return ((self.code is None or self.code(code)) and (self.text is None or self.text(text))
                and (self.when is None or self.when(row)))


def _code_test(i: int, rule: CodeRule) -> _CodeTest:
    return _CodeTest(i, value_test(rule.code) if isinstance(rule.code, Match) else None,
                     value_test(rule.text) if rule.text else None,
                     _test(rule.when) if rule.when else None)


def _load_lookup(spec: Lookup, where: str, dirs: list[Path]) -> dict[str, str]:
    for d in dirs:
        path = d / spec.file
        if path.is_file():
            break
    else:
        raise ExportError(f"{where}.lookup: no file '{spec.file}' in "
                          f"{' or '.join(str(d) for d in dirs)}")
    table: dict[str, str] = {}
    with open(path, newline="", encoding=spec.encoding) as f:
        reader = csv.DictReader(f)
        reader.fieldnames = [_clean_header(h) for h in reader.fieldnames or []]
        for need in (spec.key, spec.value):
            if need not in reader.fieldnames:
                raise ExportError(f"{where}.lookup: {path} has no column '{need}'; its "
                                  f"columns are: {', '.join(reader.fieldnames)}")
        for rec in reader:
            key, value = _norm(rec[spec.key] or ""), (rec[spec.value] or "").strip()
            # The first entry wins: San Diego's list names a code twice now and then.
            if key and value:
                table.setdefault(key, value)
    return table


def _getter(spec: Column | None, where: str, dirs: list[Path]
            ) -> Callable[[Row], str | None]:
    if spec is None:
        return lambda row: None
    cols = spec.columns
    nulls = frozenset(map(_norm, spec.null_values))
    mapping = {_norm(k): v for k, v in spec.map.items()}
    table = _load_lookup(spec.lookup, where, dirs) if spec.lookup else None
    join = spec.join
    if len(cols) == 1 and not mapping and table is None:
        # One column as it is (an incident number, a time): what `get` gives it, read on
        # every row of a year without a list made and joined.
        col = cols[0]

        def get_one(row: Row) -> str | None:
            v = row[col].strip()
            return v if v and (not nulls or _norm(v) not in nulls) else None

        return get_one

    def get(row: Row) -> str | None:
        parts = [v for v in (row[c].strip() for c in cols) if v and _norm(v) not in nulls]
        if not parts:
            return None
        value = join.join(parts)
        if mapping:
            value = mapping.get(_norm(value), value)
        if table is not None:
            return table.get(_norm(value))
        return value

    return get


def _number(value: str | None, kind: type[int] | type[float]) -> Any:
    # What does not parse is sent as it is, so the contract's 422 names the field.
    if value is None:
        return None
    try:
        return kind(value)
    except ValueError:
        return value


class Mapper:
    """A profile compiled for one export: rows in, `Mapped` out."""

    def __init__(self, profile: Profile, *, lookup_dirs: list[Path],
                 agency: str | None = None) -> None:
        self.profile = profile
        # Whose calls the rows are (issue 17): the command's --agency, else the profile's.
        self.agency = agency or profile.profile.agency
        c = profile.columns
        self.zone = ZoneInfo(profile.time.timezone)
        self._get = {name: _getter(getattr(c, name), f"columns.{name}", lookup_dirs)
                     for name in type(c).model_fields}
        self._officer = [(r.action, r.channel, _test(r.when)) for r in profile.officer_rules]
        self._times = {name: TimeReader(profile.time, self.zone, getattr(c, name))
                       for name in TIME_COLUMNS}
        self._skips = [(r.reason, _test(r.when)) for r in profile.skip]
        self._channels = [(r.channel, _test(r.when)) for r in profile.channel.rules]
        minutes = profile.events.assume_closed_after_minutes
        self._assumed_close = timedelta(minutes=minutes) if minutes else None
        # Whole codes are looked up; the other rules (a test on the code or the text, or
        # `when` alone) are tried in order, so the first rule that holds wins either way.
        self._codes: dict[str, list[_CodeTest]] = {}
        self._tests: list[_CodeTest] = []
        for i, rule in enumerate(profile.codes):
            test = _code_test(i, rule)
            if isinstance(rule.code, list):
                for code in rule.code:
                    self._codes.setdefault(_norm(code), []).append(test)
            else:
                self._tests.append(test)

    @classmethod
    def for_export(cls, profile: Profile, export: Path, profile_dir: Path | None = None,
                   *, agency: str | None = None) -> Mapper:
        """Lookups are read from beside the export, then from beside the profile."""
        dirs = [export.resolve().parent, *([profile_dir] if profile_dir else [])]
        return cls(profile, lookup_dirs=dirs, agency=agency)

    def code_rule(self, code: str | None, text: str | None, row: Row) -> int | None:
        """The index of the first code rule that holds for this row, if any."""
        found = None
        if code is not None:
            found = next((t.index for t in self._codes.get(_norm(code), ())
                          if t.holds(code, text, row)), None)
        for t in self._tests:
            if found is not None and t.index > found:
                break
            if t.holds(code, text, row):
                return t.index
        return found

    def map_row(self, n: int, row: Row | str) -> Mapped:
        if isinstance(row, str):
            return Mapped(n, "fail", row)
        get = self._get
        code = get["nature_code"](row)
        text = get["nature_text"](row)
        out = Mapped(n, "send", incident_id=get["incident_id"](row), code=code, text=text,
                     disposition=get["disposition"](row))
        channel: str | None = None
        for action, tagged, holds in self._officer:
            if holds(row):
                if action == "skip":
                    out.outcome, out.reason = "skip", "officer_initiated"
                    return out
                channel = tagged
                break
        for reason, test in self._skips:
            if test(row):
                out.outcome, out.reason = "skip", reason
                return out
        failed = self.read_times(out, row)
        if failed is not None:
            return failed
        assert out.at is not None  # read_times gives a failure or the call's time

        rule_i = self.code_rule(code, text, row)
        rule = self.profile.codes[rule_i] if rule_i is not None else None
        out.code_rule = rule_i
        out.nature_code = (rule.nature_code if rule and rule.nature_code else code)
        out.category = rule.category if rule else None
        if channel is None:
            channel = next((ch for ch, test in self._channels if test(row)),
                           self.profile.channel.default)
        out.channel = channel

        if code and out.nature_code != code and not (text and _names_code(text, code)):
            # The city's own code stays in view for a dispatcher who knows it.
            text = f"{text} [{code}]" if text else f"[{code}]"
        address, cross = get["address"](row), get["cross_street"](row)
        if cross:
            address = f"{address} / {cross}" if address else cross
        location = {k: v for k, v in (
            ("address", address), ("district", get["district"](row)),
            ("lat", _number(get["lat"](row), float)), ("lon", _number(get["lon"](row), float)),
        ) if v is not None}
        created_id, closed_id = self.event_ids(out.incident_id, self.digest(row))
        created: dict[str, Any] = {
            "event_id": created_id, "incident_id": out.incident_id,
            "type": "created", "occurred_at": out.at.isoformat(), "channel": channel,
            "nature_code": out.nature_code,
        }
        if text is not None:
            created["nature_text"] = text
        priority = _number(get["priority"](row), int)
        if priority is not None:
            created["priority"] = priority
        if location:
            created["location"] = location
        created["flags"] = sorted(set(rule.flags)) if rule else []
        if self.agency is not None:
            created["agency"] = self.agency  # later events keep their call's agency
        out.events.append(created)
        if out.closed is not None:
            out.events.append({"event_id": closed_id,
                               "incident_id": out.incident_id, "type": "closed",
                               "occurred_at": out.closed.isoformat()})
        return out

    def read_times(self, out: Mapped, row: Row) -> Mapped | None:
        """The row's call time and close time onto `out` (its incident number already
        there); `out` as a failure when there is no incident number or a time cannot
        be read, else None."""
        get = self._get
        if out.incident_id is None:
            return self._fail(out, "no incident number (columns.incident_id is empty)")
        received = get["received_at"](row)
        if received is None:
            return self._fail(out, "no call time (columns.received_at is empty)")
        try:
            out.at = self._times["received_at"].read(received)
            closed_text = get["closed_at"](row)
            if closed_text is not None:
                out.closed = self._times["closed_at"].read(closed_text)
            elif self._assumed_close is not None:
                out.closed = (out.at.astimezone(UTC) + self._assumed_close).astimezone(self.zone)
        except TimeUnreadable as exc:
            # The reason without the value, so rows that fail alike count together.
            which = "received_at" if out.at is None else "closed_at"
            out.value = exc.value
            return self._fail(out, f"columns.{which}: {exc.rule}")
        return None

    def incident_id(self, row: Row) -> str | None:
        return self._get["incident_id"](row)

    @staticmethod
    def digest(row: Row) -> str:
        """DIGEST_LENGTH hex digits of the whole row, for its events' ids."""
        return hashlib.sha1("\x1f".join(row.values()).encode(), usedforsecurity=False
                            ).hexdigest()[:DIGEST_LENGTH]

    def event_ids(self, incident_id: str | None, digest: str) -> tuple[str, str]:
        """The ids of a row's created and closed events, from its `digest`: the same row
        always gives the same (a replay's retry is recognised), another row others."""
        base = f"{self.profile.profile.id}:{incident_id}"
        return f"{base}:created:{digest}", f"{base}:closed:{digest}"

    @staticmethod
    def _fail(out: Mapped, reason: str) -> Mapped:
        out.outcome, out.reason = "fail", reason
        return out

    def map_file(self, path: Path, *, limit: int | None = None) -> Iterator[Mapped]:
        for n, row in read_rows(path, self.profile, limit=limit):
            yield self.map_row(n, row)
