"""The pages come from one list (api/layout.py): each is served with the one head and
navigation, opens for the roles the API behind it lets in, sends each role to a page it may
open, and carries the service's own constants; no page body or script keeps a copy."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from html import unescape
from pathlib import Path

import pytest
import pytest_asyncio

import web
from api.layout import PAGES, site_data
from service.access.auth import PEOPLE_ROLES, Role
from service.lifecycle.checkins import CHECKING_IN
from service.lifecycle.team import DISPOSITIONS, TRANSITIONS
from service.settings import Settings
from tests.conftest import Server, route_app, running_server
from tests.credentials import route_roles, route_table

WEB = Path(web.__file__).resolve().parent

# The API each page is for, written here: a page listed for other roles than its API lets
# in is caught (its nav link would lead someone to a page that refuses them, or hide it
# from someone it serves).
PAGE_API = {
    "/board": ("WS", "/v1/board"),
    "/dispatch": ("WS", "/v1/board"),
    "/refer": ("POST", "/v1/referrals"),
    "/refer/mine": ("GET", "/v1/referrals"),
    "/policy": ("GET", "/v1/policies"),
    "/units": ("PUT", "/v1/units/{unit_id}"),
    "/providers": ("PUT", "/v1/providers/{provider_id}"),
    "/metrics": ("GET", "/metrics"),
    "/transfers": ("GET", "/v1/transfers"),
}
NAV = ["/board", "/dispatch", "/refer", "/refer/mine", "/policy", "/units", "/providers",
       "/transfers",
       "/metrics"]


def api_roles(method: str, path: str) -> frozenset[Role]:
    for entry in route_table(route_app()):
        if entry.path == path and (entry.methods is None if method == "WS"
                                   else method in (entry.methods or ())):
            return frozenset(route_roles(entry.route))
    raise AssertionError(f"no route {method} {path}")


def test_each_page_opens_for_the_roles_its_api_lets_in() -> None:
    assert {p.path for p in PAGES if p.roles} == set(PAGE_API)
    for page in PAGES:
        if page.roles:
            assert frozenset(page.roles) == api_roles(*PAGE_API[page.path]), page.path


def test_every_person_lands_on_a_page_they_may_open() -> None:
    home = site_data()["home"]
    assert set(home) == {r.value for r in PEOPLE_ROLES}
    for role in PEOPLE_ROLES:
        assert role in api_roles(*PAGE_API[home[role.value]]), (role, home[role.value])


@pytest_asyncio.fixture
async def plain(tmp_path: Path) -> AsyncIterator[Server]:
    async with running_server(Settings(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'p.db'}")) as s:
        yield s


def nav_links(html: str) -> list[tuple[str, bool]]:
    """(href, is the current page) of each link in the page's one <nav>."""
    navs = re.findall(r'<nav class="site"[^>]*>(.*?)</nav>', html, re.S)
    assert len(navs) == 1, navs
    tags = re.findall(r"<a ([^>]*)>", navs[0])
    return [(re.search(r'href="([^"]+)"', t)[1], "aria-current" in t)  # type: ignore[index]
            for t in tags]


@pytest.mark.asyncio
async def test_every_shell_has_the_one_head_nav_and_the_services_constants(
        plain: Server) -> None:
    for page in PAGES:
        if not page.shell:
            continue
        r = await plain.client.get(page.path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        html = r.text
        assert html.count("<head>") == html.count("<main") == 1, page.path
        assert f"<title>{page.title} · Liaison</title>" in html
        assert f'<script type="module" src="/static/{page.name}.js"></script>' in html
        assert nav_links(html) == [(p, p == page.path) for p in NAV], page.path
        site = json.loads(unescape(re.search(r"data-site='([^']*)'", html)[1]))  # type: ignore[index]
        assert [d["value"] for d in site["dispositions"]] == list(DISPOSITIONS)
        assert {s["value"]: tuple(s["next"]) for s in site["statuses"]} == TRANSITIONS
        assert site["checking_in"] == list(CHECKING_IN)
        # Revalidated on each load; unchanged, it is not sent again.
        again = await plain.client.get(page.path, headers={"if-none-match": r.headers["etag"]})
        assert again.status_code == 304 and again.headers["cache-control"] == "no-cache"


@pytest.mark.asyncio
async def test_the_figures_page_lists_only_the_readers_pages(plain: Server) -> None:
    creds = plain.creds
    as_analyst = await plain.client.get("/metrics", headers=creds.bearer(Role.analyst))
    assert nav_links(as_analyst.text) == [("/metrics", True)]
    as_supervisor = await plain.client.get("/metrics", headers=creds.bearer(Role.supervisor))
    assert nav_links(as_supervisor.text) == [(p, p == "/metrics") for p in NAV]
    report = await plain.client.get("/reports/monthly?month=2026-03",
                                    headers=creds.bearer(Role.analyst))
    assert report.status_code == 200 and "<nav" not in report.text  # printed: no nav


def test_no_page_body_or_script_keeps_a_copy() -> None:
    for body in (WEB / "pages").glob("*.html"):
        text = body.read_text()
        for part in ("<head", "<nav", "<header", "<main", "<script", "<body"):
            assert part not in text, f"{body.name} holds {part}: api/layout.py draws it"
    for script in (WEB / "static").glob("*.js"):
        text = script.read_text()
        for disposition in DISPOSITIONS:
            assert f'"{disposition}"' not in text, f"{script.name} names {disposition}"
        assert "PAGE_ROLES" not in text and '"/refer/mine"' not in text, script.name
