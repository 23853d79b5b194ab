"""The map's tile source: GET /v1/map, the CSP's img-src widened by exactly the tile host
when one is set, a template that could smuggle anything into the header refused, and
the vendored map library served as what it is."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from service.settings import Settings, tile_origin
from tests.api.test_headers import STRICT, directives
from tests.conftest import running_server


def url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'map.db'}"


@pytest.mark.asyncio
async def test_without_tiles_the_map_has_none_and_the_csp_is_the_strict_one(
        tmp_path: Path) -> None:
    async with running_server(Settings(database_url=url(tmp_path))) as s:
        r = await s.client.get("/v1/map")
        assert r.status_code == 200
        assert r.json() == {"tiles": None, "attribution": ""}
        for path in ("/board", "/v1/map"):
            r = await s.client.get(path)
            assert directives(r.headers["content-security-policy"]) == STRICT


@pytest.mark.asyncio
async def test_with_tiles_the_pages_may_load_images_from_that_host_only(
        tmp_path: Path) -> None:
    template = "https://{s}.tiles.example:8443/base/{z}/{x}/{y}.png?key=k1"
    settings = Settings(database_url=url(tmp_path), map_tiles=template,
                        map_attribution="© Tiles contributors")
    async with running_server(settings) as s:
        r = await s.client.get("/v1/map")
        assert r.json() == {"tiles": template, "attribution": "© Tiles contributors"}
        for path in ("/board", "/dispatch", "/v1/health", "/static/map.js"):
            r = await s.client.get(path)
            assert directives(r.headers["content-security-policy"]) == {
                **STRICT, "img-src": {"'self'", "data:", "https://*.tiles.example:8443"}}, path


@pytest.mark.asyncio
async def test_the_vendored_map_library_is_served_with_its_types(tmp_path: Path) -> None:
    async with running_server(Settings(database_url=url(tmp_path))) as s:
        expected = {
            "/static/vendor/leaflet/leaflet.js": "text/javascript",
            "/static/vendor/leaflet/leaflet.css": "text/css",
            "/static/vendor/leaflet/images/layers.png": "image/png",
            "/static/map.js": "text/javascript",
            "/static/map.css": "text/css",
        }
        for path, ctype in expected.items():
            r = await s.client.get(path)
            assert r.status_code == 200, path
            # nosniff (api/headers.py): the browser runs it only as the type it is sent as.
            assert r.headers["content-type"].split(";")[0] in (
                ctype, "application/javascript" if ctype == "text/javascript" else ctype), path
            assert r.headers["x-content-type-options"] == "nosniff"
        js = (await s.client.get("/static/vendor/leaflet/leaflet.js")).text
        assert js.startswith("/* @preserve\n * Leaflet 1.9.4,")


def test_tile_origin() -> None:
    assert tile_origin("https://tiles.example/{z}/{x}/{y}.png") == "https://tiles.example"
    assert tile_origin("http://10.1.2.3:8080/t/{z}/{x}/{-y}.png") == "http://10.1.2.3:8080"
    assert tile_origin("https://{s}.tile.example/{z}/{x}/{y}{r}.png") == \
        "https://*.tile.example"


@pytest.mark.parametrize(("template", "reason"), [
    ("https://tiles.example/{z}/{x}.png", "no {y}"),
    ("tiles.example/{z}/{x}/{y}.png", "must be an http(s) URL template"),
    ("javascript:alert(1)//{z}/{x}/{y}", "must be an http(s) URL template"),
    # What would add a directive, or a source, to the header.
    ("https://tiles.example;script-src *;/{z}/{x}/{y}.png", "must be an http(s) URL template"),
    ("https://tiles.example 'unsafe-inline'/{z}/{x}/{y}.png", "must be an http(s) URL template"),
    ("https://tiles.example/{z}/{x}/{y}.png, https://evil.example", "must be an http"),
    ("https://*.example/{z}/{x}/{y}.png", "must be an http(s) URL template"),
])
def test_a_template_that_is_not_a_plain_tile_url_is_refused(template: str, reason: str) -> None:
    with pytest.raises(ValidationError) as err:
        Settings(map_tiles=template)
    assert reason in str(err.value)
