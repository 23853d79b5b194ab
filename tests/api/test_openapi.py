"""The OpenAPI document describes every answer: each operation's success answers name what
they hold. (That the answers match it, every test's client checks: tests/documented.py.)"""

from __future__ import annotations

from typing import Any

from starlette.routing import Match

from tests.conftest import route_app


def described(schema: dict[str, Any] | None, components: dict[str, Any]) -> bool:
    """A schema that says something: a reference, a type with properties or items, or a
    string (CSV, YAML, JSON lines); not `{}` nor an object of anything."""
    if not schema:
        return False
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return described(components.get(name), components)
    if schema.get("type") == "object":
        return bool(schema.get("properties"))
    if schema.get("type") == "array":
        return described(schema.get("items"), components)
    return schema.get("type") == "string"


def test_every_success_answer_is_described() -> None:
    doc = route_app().openapi()
    components = doc["components"]["schemas"]
    vague = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            answers = {code: r for code, r in op["responses"].items() if code.startswith("2")}
            assert answers, f"{method.upper()} {path} documents no success answer"
            for code, answer in answers.items():
                content = answer.get("content") or {}
                if not content:
                    vague.append(f"{method.upper()} {path} {code}: no content")
                for ctype, media in content.items():
                    if not described(media.get("schema"), components):
                        vague.append(f"{method.upper()} {path} {code} {ctype}: "
                                     f"{media.get('schema')}")
    assert not vague, "answers the document does not describe:\n" + "\n".join(vague)


def test_a_cad_event_is_matched_by_the_first_router_tried() -> None:
    """Starlette tries the routes in turn: the CAD's events, the most frequent request,
    come first, before every other router (only the framework's documentation pages,
    single paths, stand before them)."""
    scope = {"type": "http", "path": "/v1/cad/events", "method": "POST", "root_path": "",
             "headers": [], "query_string": b""}
    tried = [r for r in route_app().router.routes
             if getattr(r, "path", None) not in ("/openapi.json", "/docs",
                                                 "/docs/oauth2-redirect", "/redoc")]
    assert tried[0].matches(scope)[0] is Match.FULL
