"""The rule scorecard as a section of the figures page (/metrics): each rule and
exclusion of the version in force, its figures, and its flags said in words. Server-drawn
HTML under the page's CSP (no script, no style attribute); every value escaped."""

from __future__ import annotations

from urllib.parse import urlencode

from api import layout
from api.metrics_html import table
from service.figures.scorecard import Scorecard

e = layout.e
HEAD = ["Rule", "Kind", "Decided", "Matched, not deciding", "Sent to team", "Served",
        "Backup", "Police took over", "Safety incidents", "Overrides to team",
        "Overrides away", "Right responder? team yes/no/unsure",
        "Right responder? dispatcher yes/no/unsure", "Flags"]


def section(card: Scorecard) -> str:
    qs = urlencode({"since": card.since.isoformat(), "until": card.until.isoformat(),
                    "format": "csv"})
    out = ['<section class="panel" aria-labelledby="h-scorecard" id="scorecard">'
           f'<h2 id="h-scorecard">Rule scorecard ({e(card.policy_version)})</h2>',
           f"<p>{card.calls} calls decided by this version in the range (all districts)."
           "</p>"]
    flagged = [(x, f) for x in card.entries for f in x.flags]
    if flagged:
        out.append('<ul class="flags">')
        out.extend(f'<li data-rule="{e(x.id)}" data-flag="{e(f.kind)}"><strong>{e(x.id)}: '
                   f'{e(f.kind.replace("_", "-"))}</strong> {e(f.why)}</li>'
                   for x, f in flagged)
        out.append("</ul>")
    rows = ([x.id, x.kind, x.decided, x.matched_not_decided, x.sent_to_team, x.served,
             x.backup_requested, x.police_took_over, x.safety_incidents,
             x.overrides_toward_team, x.overrides_away_from_team,
             "/".join(str(v) for v in x.right_responder_team.model_dump().values()),
             "/".join(str(v) for v in x.right_responder_dispatcher.model_dump().values()),
             ", ".join(f.kind.replace("_", "-") for f in x.flags) or "-"]
            for x in card.entries)
    out.append(table("Each rule and exclusion: how its calls went", HEAD, rows))
    out.append(f'<p><a href="/v1/policies/{e(card.policy_version)}/scorecard?{e(qs)}" '
               "download>Download the scorecard (CSV)</a></p></section>")
    return "".join(out)
