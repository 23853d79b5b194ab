"""The program figures as one HTML page: charts as inline SVG drawn here on the server,
each chart's numbers beside it as a table for screen readers (and for print).

No script, no style attribute, no style block: the page holds under the CSP
`script-src 'self'; style-src 'self'`. Charts are coloured with SVG presentation
attributes, so a saved copy of the page still shows them; layout and print rules are in
web/static/metrics.css. Every piece of data is escaped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from urllib.parse import urlencode

from api import layout
from service.access.auth import Role
from service.figures.care import CareRow
from service.figures.metrics import (
    DAYS,
    SUPERVISOR_ONLY,
    TABLES,
    Figures,
    Metrics,
    OverrideRow,
    RecommendationRow,
    ReferralRow,
    UnitUtilisationRow,
    fmt_seconds,
    heatmap_grid,
)

COLORS = {"call_team": "#117a65", "joint": "#8e44ad", "police": "#1f4e9c",
          "crisis_center": "#b9770e"}
REASON_COLORS = {"off_hours": "#b9770e", "units_busy": "#b03a2e", "override": "#6c3483",
                 "no_rule": "#5d6d7e", "wait_exceeded": "#a04000",
                 "outside_area": "#117864"}
LABELS = {"call_team": "CALL team", "joint": "Joint", "police": "Police",
          "crisis_center": "Crisis centre (988)",
          "off_hours": "Off hours", "units_busy": "Units busy", "override": "Override",
          "no_rule": "No rule matched", "none": "(none)",
          "wait_exceeded": "Wait limit passed", "outside_area": "Outside the area"}
MEASURES = {"to_decision": "CAD receipt to decision", "to_en_route": "Receipt to en route",
            "to_on_scene": "Receipt to on scene", "on_scene": "Time on scene"}
TABLE_TITLES = {
    "volume_daily": "Calls per day by channel, category, destination",
    "volume_hour_of_week": "Calls per hour of week by channel, category, destination",
    "outcomes": "Program outcomes", "follow_ups": "Follow-ups",
    "timeliness": "Timeliness", "coverage_by_reason": "Coverage gap by reason",
    "coverage_heatmap": "Coverage gap by hour of week",
    "coverage_by_district": "Coverage gap by district",
    "equity_district": "Figures by district", "equity_age_group": "Figures by age group",
    "equity_flags": "Equity gaps flagged", "referrals_by_officer": "Referrals per officer",
    "referrals_by_unit": "Referrals per unit",
    "overrides_by_dispatcher": "Overrides by dispatcher",
    "overrides_by_reason": "Overrides by reason",
    "overrides_by_change": "Overrides by change of destination",
    "programs": "Reach and queue by program",
    "queue_waits": "Queue waits by program and category",
    "recommendations": "Unit recommendation, taken and timed",
    "recommendations_by_assigner": "Unit recommendation by who assigned",
    "units": "Units: hours on duty, busy and utilisation",
    "care_by_service": "Care after the call by service type",
    "care_by_district": "Care after the call by district",
    "care_by_age_group": "Care after the call by age group",
    "care_declined_reasons": "Care handoffs declined, by reason",
    "transfers": "Transfers to the crisis centre by outcome",
    "transfer_reasons": "Transfers declined or returned, by reason",
    "by_agency": "Agencies side by side",
}
PAGE = layout.BY_PATH["/metrics"]
e = layout.e


def label(value: str) -> str:
    return LABELS.get(value, value)


def _minutes(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}" if value in (0, 1) else f"{value:.1%}"


# -- charts --------------------------------------------------------------------------------


def _svg(width: int, height: int, title: str, body: Iterable[str], tid: str) -> str:
    return (f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
            f'aria-labelledby="{tid}" preserveAspectRatio="xMinYMin meet" '
            f'font-family="system-ui, sans-serif" font-size="12">'
            f'<title id="{tid}">{e(title)}</title>{"".join(body)}</svg>')


def hbar_chart(tid: str, title: str, items: Sequence[tuple[str, float, str]], *,
               fmt: str = "count", color: str = "#117a65") -> str:
    """Horizontal bars: (label, value, shown value)."""
    if not items:
        return f'<p class="empty">No calls for "{e(title)}" in this range.</p>'
    top = max((v for _, v, _ in items), default=0) or 1
    row, left, width = 26, 150, 640
    body = []
    for i, (name, value, shown) in enumerate(items):
        y = i * row + 4
        w = max(value / top * (width - left - 70), 0)
        fill = COLORS.get(name, REASON_COLORS.get(name, color))
        body.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end" fill="#17202a">'
                    f'{e(label(name))[:24]}</text>'
                    f'<rect x="{left}" y="{y}" width="{w:.1f}" height="18" fill="{fill}"/>'
                    f'<text x="{left + w + 4:.1f}" y="{y + 14}" fill="#17202a">{e(shown)}</text>')
    return _svg(width, len(items) * row + 8, title, body, tid)


def stacked_days(tid: str, title: str, days: list[date],
                 series: dict[str, dict[date, int]]) -> str:
    if not days:
        return f'<p class="empty">No calls for "{e(title)}" in this range.</p>'
    keys = [k for k in ("call_team", "joint", "police", "crisis_center") if k in series] + sorted(
        k for k in series if k not in COLORS)
    totals = [sum(series[k].get(d, 0) for k in keys) for d in days]
    top = max(totals) or 1
    width, height, left, bottom = 640, 220, 36, 40
    step = (width - left - 8) / len(days)
    bar = max(step * 0.8, 1)
    body = [f'<line x1="{left}" y1="{height - bottom}" x2="{width - 4}" y2="{height - bottom}" '
            f'stroke="#aab7b8"/>',
            f'<text x="{left - 4}" y="14" text-anchor="end" fill="#5d6d7e">{top}</text>',
            f'<text x="{left - 4}" y="{height - bottom}" text-anchor="end" '
            f'fill="#5d6d7e">0</text>']
    scale = (height - bottom - 10) / top
    every = max(1, len(days) // 8)
    for i, d in enumerate(days):
        x = left + i * step + (step - bar) / 2
        y: float = height - bottom
        for k in keys:
            n = series[k].get(d, 0)
            if n:
                h = n * scale
                y -= h
                body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                            f'fill="{COLORS.get(k, "#7f8c8d")}"/>')
        if i % every == 0:
            body.append(f'<text x="{x + bar / 2:.1f}" y="{height - bottom + 16}" '
                        f'text-anchor="middle" fill="#5d6d7e">{d:%b %d}</text>')
    for j, k in enumerate(keys):  # legend
        x = left + j * 120
        body.append(f'<rect x="{x}" y="{height - 14}" width="12" height="12" '
                    f'fill="{COLORS.get(k, "#7f8c8d")}"/><text x="{x + 16}" y="{height - 4}" '
                    f'fill="#17202a">{e(label(k))}</text>')
    return _svg(width, height, title, body, tid)


def heatmap(tid: str, title: str, grid: list[list[int]], color: str = "#b03a2e") -> str:
    top = max(max(r) for r in grid) or 1
    cell, left, topm = 24, 40, 18
    body = []
    for h in range(0, 24, 3):
        body.append(f'<text x="{left + h * cell + cell / 2}" y="12" text-anchor="middle" '
                    f'fill="#5d6d7e">{h:02d}</text>')
    for d, day in enumerate(DAYS):
        y = topm + d * cell
        body.append(f'<text x="{left - 6}" y="{y + 16}" text-anchor="end" '
                    f'fill="#17202a">{day}</text>')
        for h in range(24):
            n = grid[d][h]
            opacity = 0.06 if n == 0 else 0.2 + 0.8 * n / top
            body.append(f'<rect x="{left + h * cell}" y="{y}" width="{cell - 2}" '
                        f'height="{cell - 2}" fill="{color}" fill-opacity="{opacity:.2f}">'
                        f'<title>{day} {h:02d}:00: {n}</title></rect>')
    return _svg(left + 24 * cell + 4, topm + 7 * cell + 4, title, body, tid)


# -- tables --------------------------------------------------------------------------------


def table(caption: str, head: Sequence[str], rows: Iterable[Sequence[object]], *,
          numbers_for: str | None = None, report: bool = False) -> str:
    """A data table. `numbers_for`: the table holds a chart's numbers (shown in print and
    in the report, visually hidden on screen but read by screen readers)."""
    # A table cannot be shrunk to nothing; its wrapper can.
    cls = "table-wrap" if numbers_for is None or report else "table-wrap sr-only"
    out = [f'<div class="{cls}"><table class="data"><caption>{e(caption)}</caption>'
           "<thead><tr>" + "".join(f'<th scope="col">{e(h)}</th>' for h in head)
           + "</tr></thead><tbody>"]
    count = 0
    for row in rows:
        count += 1
        cells = list(row)
        out.append("<tr>" + f'<th scope="row">{e(cells[0])}</th>'
                   + "".join(f"<td>{e(c)}</td>" for c in cells[1:]) + "</tr>")
    if count == 0:
        out.append(f'<tr><td colspan="{len(head)}">none</td></tr>')
    out.append("</tbody></table></div>")
    return "".join(out)


def heat_table(caption: str, grid: list[list[int]], report: bool) -> str:
    return table(caption, ["Day", *(f"{h:02d}" for h in range(24))],
                 ([DAYS[d], *grid[d]] for d in range(7)), numbers_for="heatmap", report=report)


FIGURE_HEAD = ["Group", "Calls", "Eligible", "Reach", "Police share of eligible",
               "Contacts", "Unique clients", "Without police", "Backup requests",
               "Backup rate", "Safety incidents", "Destination changed"]


def figure_row(f: Figures) -> list[object]:
    return [label(f.group), f.calls, f.eligible, pct(f.reach), pct(f.police_share_of_eligible),
            f.contacts, f.unique_clients, pct(f.without_police_share), f.backup_requests,
            pct(f.backup_rate), f.safety_incidents, f.destination_changed]


def referral_table(caption: str, rows: list[ReferralRow]) -> str:
    return table(caption, ["Who", "Referrals", "To the team", "Without police", "Backup",
                           "Cleared", "Resolved on scene", "Referred to services",
                           "Transported", "Police took over", "Refused services",
                           "Safety incidents"],
                 ([r.group, r.referrals, r.to_team, r.without_police, r.backup_requests,
                   r.cleared, r.resolved_on_scene, r.referred_to_services, r.transported,
                   r.police_took_over, r.refused_services, r.safety_incidents] for r in rows))


def override_table(caption: str, rows: list[OverrideRow]) -> str:
    return table(caption, ["Group", "Overrides", "To police", "To the team", "Cleared",
                           "Backup requests", "Safety incidents"],
                 ([r.group, r.overrides, r.to_police, r.to_team, r.cleared,
                   r.backup_requests, r.safety_incidents] for r in rows))


# -- the page ------------------------------------------------------------------------------


def recommendation_table(caption: str, rows: list[RecommendationRow]) -> str:
    return table(caption, ["Group", "Assignments", "Recommended", "Taken", "Taken share",
                           "To assign median (min)", "To assign 90th percentile (min)",
                           "Distance median (km)", "Estimate median (min)",
                           "To scene median (min)", "Actual − estimate median (min)"],
                 ([label(r.group), r.assignments, r.recommended, r.taken, pct(r.taken_share),
                   _minutes(r.to_assign_p50_minutes), _minutes(r.to_assign_p90_minutes),
                   "–" if r.distance_p50_km is None else f"{r.distance_p50_km:.2f}",
                   _minutes(r.eta_p50_minutes), _minutes(r.to_scene_p50_minutes),
                   _minutes(r.eta_error_p50_minutes)] for r in rows))


def care_table(caption: str, rows: list[CareRow]) -> str:
    return table(caption, ["Group", "Handoffs", "Connected", "Connected share",
                           "Confirmed in time", "Confirmed in time share", "Declined",
                           "Open", "Follow-ups raised", "Warm line"],
                 ([label(r.group), r.handoffs, r.connected, pct(r.connected_share),
                   r.confirmed_in_time, pct(r.confirmed_share), r.declined, r.open,
                   r.follow_ups_raised, r.warm_line] for r in rows))


def _hours(value: float | None) -> str:
    return "–" if value is None else f"{value:,.1f}"


def unit_table(caption: str, rows: list[UnitUtilisationRow]) -> str:
    return table(caption, ["Unit", "Call sign", "Program", "Hours on duty", "Hours busy",
                           "Calls", "Utilisation"],
                 ([r.unit, r.call_sign or "–", label(r.program or "none"),
                   _hours(r.duty_hours), _hours(r.busy_hours), r.calls, pct(r.utilisation)]
                  for r in rows))


def _days(m: Metrics) -> list[date]:
    seen = sorted({r.day for r in m.volume_daily})
    if not seen:
        return []
    out, d = [], seen[0]
    while d <= seen[-1]:
        out.append(d)
        d += timedelta(days=1)
    return out


def _local(dt: datetime, m: Metrics) -> str:
    from zoneinfo import ZoneInfo

    return dt.astimezone(ZoneInfo(m.timezone)).strftime("%Y-%m-%d %H:%M")


def render(m: Metrics, *, title: str, report: bool, query: dict[str, str],
           form: dict[str, str] | None = None, role: Role | None = None,
           extra: str = "", agencies: Sequence[tuple[str, str]] = ()) -> str:
    """`extra`: sections drawn elsewhere (the rule scorecard), before the downloads.
    `agencies`: (id, name) of the region's agencies, for a regional person's choice of
    one (none or one: no choice, and no word of agencies)."""
    o, fu = m.outcomes, m.follow_ups
    s: list[str] = []
    add = s.append
    qs = urlencode({k: v for k, v in query.items() if v})
    scope = f"{_local(m.start, m)} to {_local(m.end, m)} ({m.timezone})" + (
        f", district {m.district}" if m.district else ", all districts")
    if len(agencies) > 1:
        scope += f", agency {m.agency}" if m.agency else ", every agency"

    # Agencies side by side (a regional person's figures over several agencies).
    if m.by_agency is not None:
        names = dict(agencies)
        add('<section class="panel" aria-labelledby="h-agencies" id="by-agency">'
            '<h2 id="h-agencies">Agencies side by side</h2>'
            '<p class="hint">Each agency\'s calls; "none": calls no agency claimed.</p>')
        add(table("Figures by agency", FIGURE_HEAD,
                  ([f"{names[f.group]} ({f.group})" if f.group in names else label(f.group),
                    *figure_row(f)[1:]] for f in m.by_agency)))
        add("</section>")

    # Summary
    add('<section class="panel" aria-labelledby="h-summary"><h2 id="h-summary">'
        'Program outcomes</h2><dl class="kpis">')
    for name, value, hint in (
        ("Calls", o.calls, "live calls opened in the range"),
        ("Team contacts", o.contacts, "CALL team or joint"),
        ("Unique clients", o.unique_clients,
         f"{o.contacts_without_identity} contacts without a known person"),
        ("Without police", pct(o.without_police_share),
         f"{o.without_police} team contacts with no police"),
        ("Backup requests", o.backup_requests, f"{pct(o.backup_rate)} of contacts"),
        ("Safety incidents", o.safety_incidents, "team member hurt or threatened"),
        ("Eligible reached", pct(o.reach), f"{o.eligible_served} of {o.eligible} eligible"),
        ("Follow-ups", f"{fu.scheduled} / {fu.completed}", "scheduled / completed"),
        ("Follow-ups after an overdose", f"{fu.after_exclusion_scheduled} / "
         f"{fu.after_exclusion_completed}", "the policy's, after police/EMS went: "
         "scheduled / completed"),
        ("Destination changed", o.destination_changed, "after the first decision"),
    ):
        add(f'<div class="kpi"><dt>{e(name)}</dt><dd><span class="num">{e(value)}</span>'
            f'<span class="hint">{e(hint)}</span></dd></div>')
    add("</dl></section>")

    # Equity flags first: what a supervisor must see.
    if m.equity_flags:
        add('<section class="panel warn flags" aria-labelledby="h-flags">'
            '<h2 id="h-flags">Equity gaps</h2><ul>')
        for f in m.equity_flags:
            add(f'<li class="flag" data-dimension="{e(f.dimension)}" data-rate="{e(f.rate)}">'
                f"{e(f.message)}</li>")
        add("</ul></section>")

    # Volume
    days = _days(m)
    by_dest: dict[str, dict[date, int]] = defaultdict(dict)
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in m.volume_daily:
        if r.dimension == "destination":
            by_dest[r.value][r.day] = r.calls
        totals[r.dimension][r.value] += r.calls
    add('<section class="panel" aria-labelledby="h-volume"><h2 id="h-volume">Volume</h2>')
    add('<figure class="chart-box">' + stacked_days("c-daily", "Calls per day by destination",
                                                   days, dict(by_dest)))
    add("<figcaption>Calls per day, by destination (program's local days).</figcaption>"
        "</figure>")
    dests = [k for k in ("call_team", "joint", "police", "crisis_center") if k in by_dest]
    add(table("Calls per day by destination", ["Day", *map(label, dests), "Total"],
              ([d.isoformat(), *(by_dest[k].get(d, 0) for k in dests),
                sum(by_dest[k].get(d, 0) for k in dests)] for d in days),
              numbers_for="c-daily", report=report))
    add('<div class="two">')
    for dim, words in (("channel", "Calls by channel"), ("category", "Calls by category")):
        items = sorted(totals[dim].items(), key=lambda kv: -kv[1])
        add('<figure class="chart-box">'
            + hbar_chart(f"c-{dim}", words, [(k, v, str(v)) for k, v in items])
            + f"<figcaption>{e(words)}.</figcaption></figure>")
        add(table(words, [dim.title(), "Calls"], ((label(k), v) for k, v in items),
                  numbers_for=dim, report=report))
    add("</div>")
    grid = [[0] * 24 for _ in range(7)]
    for hv in m.volume_hour_of_week:
        if hv.dimension == "destination":
            grid[hv.hour_of_week // 24][hv.hour] += hv.calls
    add('<figure class="chart-box">' + heatmap("c-how", "Calls by hour of week (local time)",
                                               grid, "#1f4e9c")
        + "<figcaption>Calls by hour of week, local time: darker is more.</figcaption>"
          "</figure>")
    add(heat_table("Calls by hour of week (rows: days; columns: hours)", grid, report))
    add("</section>")

    # Timeliness
    add('<section class="panel" aria-labelledby="h-time"><h2 id="h-time">Timeliness</h2>'
        '<p class="hint">From the CAD opening the call. Median and 90th percentile.</p>')
    on_scene = [t for t in m.timeliness if t.measure == "to_on_scene"
                and t.dimension == "category"]
    add('<figure class="chart-box">' + hbar_chart(
        "c-onscene", "Median time from receipt to on scene, by category",
        [(t.value, t.median_seconds, fmt_seconds(t.median_seconds)) for t in on_scene])
        + "<figcaption>Median time from receipt to on scene, by category.</figcaption>"
          "</figure>")
    add(table("Timeliness by destination and category",
              ["Measure", "By", "Group", "Calls", "Median", "90th percentile"],
              ([MEASURES[t.measure], t.dimension, label(t.value), t.calls,
                fmt_seconds(t.median_seconds), fmt_seconds(t.p90_seconds)]
               for t in m.timeliness)))
    add("</section>")

    # Coverage gap
    gap = heatmap_grid(m.coverage_heatmap)
    add('<section class="panel" aria-labelledby="h-gap"><h2 id="h-gap">Coverage gap</h2>'
        '<p class="hint">Eligible calls the team did not serve, and calls no rule '
        "recognised: where to add hours or staff.</p>")
    add('<figure class="chart-box">' + hbar_chart(
        "c-reasons", "Not served, by reason",
        [(r.reason, r.calls, str(r.calls)) for r in m.coverage_by_reason])
        + "<figcaption>Not served, by reason.</figcaption></figure>")
    add(table("Not served, by reason", ["Reason", "Calls"],
              ((label(r.reason), r.calls) for r in m.coverage_by_reason),
              numbers_for="c-reasons", report=report))
    add('<figure class="chart-box">' + heatmap("c-gap", "Not served, by hour of week "
                                               "(local time)", gap)
        + "<figcaption>Not served, by hour of week: darker is more.</figcaption></figure>")
    add(heat_table("Not served by hour of week (rows: days; columns: hours)", gap, report))
    by_d: dict[str, dict[str, int]] = defaultdict(dict)
    for g in m.coverage_by_district:
        by_d[g.district][g.reason] = g.calls
    reasons = [r.reason for r in m.coverage_by_reason]
    add(table("Not served, by district", ["District", *map(label, reasons), "Total"],
              ([d, *(by_d[d].get(r, 0) for r in reasons), sum(by_d[d].values())]
               for d in sorted(by_d))))
    add("</section>")

    # Programs: reach and the queue (issue 13)
    add('<section class="panel" aria-labelledby="h-programs"><h2 id="h-programs">Programs'
        '</h2><p class="hint">Per response program: eligible calls it served, calls that '
        "waited for it (queued for a unit, or deferred to a shift) and how their waits "
        "ended; waits in minutes, from when a call began to wait; utilisation: the hours its "
        "units held calls, of its units' hours available: on duty, for a program that "
        "keeps a roster, else on shift in the policy in force.</p>")
    add(table("Reach and queue by program",
              ["Program", "Eligible", "Served", "Reach", "Queued", "Deferred",
               "Waited, then served", "Fell back", "Wait median (min)",
               "Wait 90th percentile (min)", "Unit-hours busy", "Unit-hours available",
               "Utilisation"],
              ([label(p.program), p.eligible, p.served, pct(p.reach), p.queued, p.deferred,
                p.waited_served, p.fell_back, _minutes(p.wait_p50_minutes),
                _minutes(p.wait_p90_minutes), f"{p.unit_hours_busy:,.1f}",
                _hours(p.unit_hours_available)
                + (" (roster)" if p.units_from == "roster" else ""),
                pct(p.utilisation)] for p in m.programs)))
    add(table("Queue waits by program and category",
              ["Program", "Category", "Waits", "Median (min)", "90th percentile (min)"],
              ([label(w.program), label(w.category), w.waits, _minutes(w.wait_p50_minutes),
                _minutes(w.wait_p90_minutes)] for w in m.queue_waits)))
    add("</section>")

    # The unit recommendation (issue 14)
    add('<section class="panel" aria-labelledby="h-rec"><h2 id="h-rec">Unit recommendation'
        '</h2><p class="hint">Team calls assigned in the range: minutes from when the call '
        "was ready to assign (decided, or its wait ended) to its assignment; the distance "
        "and estimated time recommended; for calls the recommended unit was sent to, the "
        "minutes it took from assigned to on scene and how far off the estimate was; and "
        "how often the recommendation was taken.</p>")
    add(recommendation_table("By basis (distance: nearest; load: no position known)",
                             m.recommendations))
    if m.recommendations_by_assigner is not None:
        add(recommendation_table("By who assigned", m.recommendations_by_assigner))
    add("</section>")

    # Units' utilisation (issue 14)
    add('<section class="panel" aria-labelledby="h-units"><h2 id="h-units">Units</h2>'
        '<p class="hint">Each unit: its hours on duty in the range (signed on to signed '
        "off; still on duty: to the range's end or now), its hours busy on calls opened in "
        "the range (assigned to cleared or closed) and the calls it took; utilisation: "
        "busy of on duty.</p>")
    add(unit_table("Units: hours on duty, busy and utilisation", m.units))
    add("</section>")

    # Care after the call (issue 16)
    add('<section class="panel" aria-labelledby="h-care"><h2 id="h-care">Care after the '
        'call</h2><p class="hint">Warm handoffs of the calls in the range to the providers '
        "of the directory: how many reached care (connected), how many were confirmed "
        "within the confirmation time of being offered (else a follow-up was raised), and "
        "how many were declined. A provider of several services counts under each.</p>")
    add(care_table("By service type", m.care_by_service))
    add(care_table("By district", m.care_by_district))
    add(care_table("By age group", m.care_by_age_group))
    if m.care_declined_reasons is not None:
        add(table("Declined, by reason", ["Reason", "Declined"],
                  ([r.reason, r.declined] for r in m.care_declined_reasons)))
    # 911 → 988 transfers (issue 16)
    add('<section class="panel" aria-labelledby="h-transfers"><h2 id="h-transfers">'
        'Transfers to the crisis centre</h2><p class="hint">Calls opened in the range that '
        "the policy sent to a crisis centre: where each transfer stands, the share accepted "
        "of those answered, and the time from the offer to its acceptance (nearest rank)."
        "</p>")
    add(table("Transfers to the crisis centre by outcome",
              ["Centre", "Transfers", "Offered", "Accepted", "Declined", "Completed",
               "Returned", "Withdrawn", "Accepted of answered", "To accept p50",
               "To accept p90"],
              ([r.program, r.transfers, r.offered, r.accepted, r.declined, r.completed,
                r.returned, r.withdrawn, pct(r.accept_share), fmt_seconds(r.to_accept_p50_s),
                fmt_seconds(r.to_accept_p90_s)] for r in m.transfers)))
    if m.transfer_reasons is not None:
        add(table("Transfers declined or returned, by reason",
                  ["Centre", "Step", "Reason", "Transfers"],
                  ([r.program, r.status, r.reason, r.transfers]
                   for r in m.transfer_reasons)))
    add("</section>")

    # Equity
    add('<section class="panel" aria-labelledby="h-equity"><h2 id="h-equity">Equity</h2>')
    add('<div class="two">')
    for tid, words, groups in (("c-eq-d", "Share of eligible calls handled by police, by "
                                "district", m.equity_district),
                               ("c-eq-a", "Share of eligible calls handled by police, by "
                                "age group", m.equity_age_group)):
        shares: list[tuple[str, float, str]] = [
            (g.group, g.police_share_of_eligible or 0.0, pct(g.police_share_of_eligible))
            for g in groups if g.eligible]
        add('<figure class="chart-box">' + hbar_chart(tid, words, shares, color="#1f4e9c")
            + f"<figcaption>{e(words)}.</figcaption></figure>")
    add("</div>")
    add(table("Figures by district", FIGURE_HEAD, map(figure_row, m.equity_district)))
    add(table("Figures by age group", FIGURE_HEAD, map(figure_row, m.equity_age_group)))
    add("</section>")

    # Officer feedback
    add('<section class="panel" aria-labelledby="h-ref"><h2 id="h-ref">Officer referrals'
        "</h2>")
    add(referral_table("Referrals per unit, and what happened", m.referrals_by_unit))
    if m.referrals_by_officer is not None:
        add(referral_table("Referrals per officer, and what happened",
                           m.referrals_by_officer))
    add("</section>")

    # Override review
    add('<section class="panel" aria-labelledby="h-ovr"><h2 id="h-ovr">Override review</h2>')
    add(override_table("Overrides by change of destination (first recommendation -> "
                       "final)", m.overrides_by_change))
    if m.overrides_by_dispatcher is not None:
        add(override_table("Overrides by dispatcher", m.overrides_by_dispatcher))
    if m.overrides_by_reason is not None:
        add(override_table("Overrides by reason", m.overrides_by_reason))
    add("</section>")

    add(extra)

    # Exports
    add('<section class="panel exports" aria-labelledby="h-csv"><h2 id="h-csv">Download '
        "(CSV)</h2><ul>")
    for name in TABLES:
        if getattr(m, name) is None and (name in SUPERVISOR_ONLY or name == "by_agency"):
            continue
        add(f'<li><a href="/v1/metrics/{name}.csv?{e(qs)}" download>'
            f"{e(TABLE_TITLES[name])}</a></li>")
    add("</ul></section>")

    return _shell(title, scope, "".join(s), report=report, form=form, role=role,
                  agencies=agencies)


def _agency_choice(form: dict[str, str], agencies: Sequence[tuple[str, str]]) -> str:
    """A regional person's choice of agency (empty: every agency, side by side)."""
    if len(agencies) < 2:
        return ""
    chosen = form.get("agency", "")
    options = ['<option value="">Every agency</option>'] + [
        f'<option value="{e(i)}"{" selected" if i == chosen else ""}>{e(n)}</option>'
        for i, n in agencies]
    return f'<label>Agency <select name="agency">{"".join(options)}</select></label>'


def _shell(title: str, scope: str, body: str, *, report: bool,
           form: dict[str, str] | None, role: Role | None,
           agencies: Sequence[tuple[str, str]] = ()) -> str:
    controls = ""
    if form is not None:
        monthly = urlencode({k: v for k, v in (("month", form.get("month", "")),
                                               ("agency", form.get("agency", ""))) if v})
        controls = (
            '<form class="inline filters" method="get" action="/metrics">'
            f'<label>From <input type="date" name="from" value="{e(form.get("from", ""))}" '
            "required></label>"
            f'<label>To (not included) <input type="date" name="to" '
            f'value="{e(form.get("to", ""))}" required></label>'
            f'<label>District <input name="district" maxlength="120" '
            f'value="{e(form.get("district", ""))}" placeholder="all"></label>'
            + _agency_choice(form, agencies)
            + '<button type="submit" class="primary">Show</button>'
            f'<a class="report-link" href="/reports/monthly?{e(monthly)}">'
            "Monthly report</a></form>")
    page_class = "page-metrics report" if report else "page-metrics"
    # The report is for printing: no navigation.
    top = "" if report else layout.header(PAGE.path, role=role)
    return (
        layout.head(title, stylesheets=("metrics.css",))
        + f'<body class="{page_class}">{top}<main id="main">'
        f'<section class="panel head"><h1>{e(title)}</h1><p class="scope">{e(scope)}</p>'
        f"<p class=\"hint\">Test and training calls are left out.</p>{controls}</section>"
        f"{body}</main></body></html>")
