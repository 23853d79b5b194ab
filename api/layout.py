"""The pages, in one list: each page's path, title, body, who may open it and where a role
lands after logging in. The page head and the navigation are drawn from it once, for the
shells (api/pages.py) and the figures pages drawn on the server (api/metrics_html.py).

What the pages' scripts share with the service (dispositions, the team's statuses and
their order, who may act) comes from the service's own definitions and is rendered into
each shell as JSON in `<body data-site>` (web/static/common.js reads it), so no script
holds a copy. Adding a page: its entry here, web/pages/<name>.html (what goes in
`<main>`) and web/static/<name>.js.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import web
from api.access import DISPATCHER_ROLES, TEAM_ROLES
from routing.models import Destination
from service.access.auth import Role
from service.calls.visibility import SEES_PLANS
from service.lifecycle.care import NEXT as CARE_NEXT
from service.lifecycle.checkins import CHECKING_IN
from service.lifecycle.providers import SERVICES
from service.lifecycle.team import DISPOSITIONS, TRANSITIONS

BODIES = Path(web.__file__).resolve().parent / "pages"


@dataclass(frozen=True)
class Page:
    path: str
    name: str  # web/pages/<name>.html, web/static/<name>.js, <body class="page-<name>">
    title: str  # in <title>, before " · Liaison"
    nav: str | None  # its link in the navigation; None: not listed
    # Who may open it: the API behind it lets exactly these in (tests/api/test_pages.py
    # checks); () is anyone. The shell itself is public and holds no data.
    roles: tuple[Role, ...]
    home_of: tuple[Role, ...] = ()  # where these roles land after logging in
    live: bool = False  # follows the board stream: a connection badge in the header
    shell: bool = True  # False: drawn on the server per request (api/metrics.py)


_BOARD = (Role.call_team, Role.dispatcher, Role.supervisor)
PAGES: tuple[Page, ...] = (
    Page("/board", "board", "CALL team board", "Board", _BOARD,
         home_of=(Role.call_team,), live=True),
    Page("/dispatch", "dispatch", "Dispatcher console", "Dispatch", _BOARD,
         home_of=(Role.dispatcher,), live=True),
    Page("/refer", "refer", "Refer to CALL", "Refer", (Role.officer, Role.supervisor),
         home_of=(Role.officer,)),
    Page("/refer/mine", "mine", "My referrals", "My referrals",
         (Role.officer, Role.supervisor)),
    Page("/policy", "policy", "Routing policy", "Policy", (Role.supervisor,),
         home_of=(Role.supervisor,)),
    Page("/units", "units", "Unit roster", "Units", (Role.supervisor,)),
    Page("/providers", "providers", "Care providers", "Providers", (Role.supervisor,)),
    Page("/transfers", "transfers", "Crisis centre transfers", "Transfers",
         (Role.crisis_center, Role.supervisor, Role.dispatcher),
         home_of=(Role.crisis_center,)),
    Page("/metrics", "metrics", "Program figures", "Figures",
         (Role.supervisor, Role.analyst), home_of=(Role.analyst,), shell=False),
    Page("/login", "login", "Log in", None, ()),
)
BY_PATH = {p.path: p for p in PAGES}
BRAND_HREF = "/board"

# Words a page shows for a value, where its own name (underscores as spaces) will not do.
LABELS = {"queued": "Queue"}


def label(value: str) -> str:
    return LABELS.get(value, value.replace("_", " ").capitalize())


def site_data() -> dict[str, Any]:
    """What every page's script reads from `<body data-site>`."""
    return {
        "home": {role.value: p.path for p in PAGES for role in p.home_of},
        "dispositions": [{"value": d, "label": label(d)} for d in DISPOSITIONS],
        # The team's flow in order ("queued": a team call nobody has taken yet); a status
        # with no next one is where a call leaves the board.
        "statuses": [{"value": s, "label": label(s), "next": list(nxt)}
                     for s, nxt in TRANSITIONS.items()],
        "checking_in": list(CHECKING_IN),
        # What a dispatcher may send a call to (a crisis centre is not: a transfer is the
        # policy's choice, with a record the centre works).
        "destinations": [d.value for d in Destination if d is not Destination.crisis_center],
        "care_services": list(SERVICES),  # a provider's services (docs/care.md)
        "care_next": {s: list(nxt) for s, nxt in CARE_NEXT.items()},  # a handoff's steps
        # Who may act on a call; the API decides, the pages only offer the buttons.
        "may": {"status": [r.value for r in TEAM_ROLES],
                "override": [r.value for r in DISPATCHER_ROLES],
                "plans": [r.value for r in SEES_PLANS],
                # A transfer's steps: the crisis centre's (api/transfers.py).
                "transfer": [Role.crisis_center.value, Role.supervisor.value]},
    }


def e(value: object) -> str:
    return escape(str(value), quote=True)


def head(title: str, *, stylesheets: Iterable[str] = (), script: str | None = None) -> str:
    """`<!doctype html>` through `</head>`: local styles and scripts only (the CSP)."""
    links = "".join(f'<link rel="stylesheet" href="/static/{e(s)}">\n'
                    for s in ("liaison.css", *stylesheets))
    module = f'<script type="module" src="/static/{e(script)}"></script>\n' if script else ""
    return ('<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{e(title)} · Liaison</title>\n{links}"
            '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">\n'
            f"{module}</head>\n")


def nav(current: str, role: Role | None = None) -> str:
    """The navigation. Each link names the roles that may open its page (`data-roles`:
    common.js hides the others once it knows who is logged in); given `role`, a page drawn
    on the server lists only that role's pages."""
    links = []
    for p in PAGES:
        if p.nav is None or (role is not None and p.roles and role not in p.roles):
            continue
        here = ' aria-current="page"' if p.path == current else ""
        roles = " ".join(r.value for r in p.roles)
        links.append(f'    <a href="{e(p.path)}" data-roles="{e(roles)}"{here}>{e(p.nav)}</a>\n')
    return f'  <nav class="site" aria-label="Pages">\n{"".join(links)}  </nav>\n'


def header(current: str, *, role: Role | None = None, status_line: str = "") -> str:
    return (f'<header class="top">\n  <a class="brand" href="{BRAND_HREF}">Liaison</a>\n'
            f"{nav(current, role)}{status_line}</header>\n")


def shell(page: Page, body: str | None = None) -> str:
    """A page's whole HTML: the head, the header, its body from web/pages inside <main>."""
    if body is None:
        body = (BODIES / f"{page.name}.html").read_text(encoding="utf-8")
    badge = ('<span id="conn" class="conn" data-state="connecting">connecting…</span>'
             if page.live else '<span id="conn" class="conn" data-state="none"></span>')
    status_line = f'  <div class="status-line">{badge}<span id="who" class="who"></span></div>\n'
    # In single quotes: JSON's own double quotes stay readable in the page's source.
    site = escape(json.dumps(site_data(), separators=(",", ":")), quote=False
                  ).replace("'", "&#x27;")
    return (head(page.title, script=f"{page.name}.js")
            + f"<body class=\"page-{e(page.name)}\" data-site='{site}'>\n"
            + header(page.path, status_line=status_line)
            + f'<main id="main">\n{body.strip()}\n</main>\n</body>\n</html>\n')
