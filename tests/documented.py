"""Every answer the tests get from the API is held to the OpenAPI document: a success status
the route does not document fails, and an answer whose route documents a schema for its
status and content type must match it (api/answers.py and the models beside each route).

tests/conftest.py hooks it into every test server's client, so each API test also checks
the document against what the service really answers, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
from fastapi.routing import iter_route_contexts
from jsonschema import Draft202012Validator
from starlette.routing import compile_path

# Building an app's document takes most of a second, and every test server's client needs
# it. Apps with the same routes (the same paths, methods and endpoints: every app
# create_app builds, whatever its settings) have the same document, so one is kept per
# route table, with its compiled paths and validators.
_BY_ROUTES: dict[tuple[Any, ...], Documented] = {}


def _route_table(app: Any) -> tuple[Any, ...]:
    """Each route's full path, methods and endpoint (by name: FastAPI's own document and
    docs routes are closures made per app), through the routers FastAPI includes lazily."""
    table = []
    for ctx in iter_route_contexts(app.routes):
        route = ctx.original_route
        endpoint = getattr(route, "endpoint", None)
        table.append((ctx.path, tuple(sorted(getattr(route, "methods", None) or ())),
                      getattr(endpoint, "__module__", None),
                      getattr(endpoint, "__qualname__", None),
                      getattr(route, "include_in_schema", None), type(route).__name__))
    return tuple(table)


class Documented:
    """An httpx response hook for one app."""

    def __new__(cls, app: Any) -> Documented:
        key = _route_table(app)
        found = _BY_ROUTES.get(key)
        if found is None:
            found = _BY_ROUTES[key] = super().__new__(cls)
            found.doc = app.openapi()
            found.paths = [(compile_path(path)[0], path) for path in found.doc["paths"]]
            found.validators = {}
        return found

    doc: dict[str, Any]
    paths: list[tuple[Any, str]]
    validators: dict[tuple[str, str, str, str], Draft202012Validator]

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]] | None:
        for regex, template in self.paths:
            if regex.match(path):
                op = self.doc["paths"][template].get(method.lower())
                if op is not None:
                    return template, op
        return None

    def validator(self, template: str, method: str, status: str, ctype: str,
                  schema: dict[str, Any]) -> Draft202012Validator:
        key = (template, method, status, ctype)
        if key not in self.validators:
            # Refs (#/components/schemas/…) resolve against the root: the document's.
            root = {"allOf": [schema], "components": self.doc.get("components", {})}
            self.validators[key] = Draft202012Validator(root)
        return self.validators[key]

    async def __call__(self, response: httpx.Response) -> None:
        request = response.request
        found = self.operation(request.method, request.url.path)
        if found is None:
            return  # not in the document: pages, static files, docs
        template, op = found
        status = str(response.status_code)
        documented = op["responses"].get(status)
        if documented is None:
            assert not status.startswith("2"), (
                f"{request.method} {template} answered {status}, which its document does "
                f"not list ({sorted(op['responses'])})")
            return
        ctype = response.headers.get("content-type", "").split(";")[0].strip()
        content = documented.get("content", {}).get(ctype)
        if not content or "schema" not in content or not re.search(r"[/+]json$", ctype):
            return
        await response.aread()
        errors = sorted(self.validator(template, request.method, status, ctype,
                                       content["schema"]).iter_errors(response.json()),
                        key=lambda e: list(e.absolute_path))
        assert not errors, (
            f"{request.method} {template} {status} does not match its documented schema:\n"
            + "\n".join(f"  at {'/'.join(map(str, e.absolute_path)) or '(top)'}: "
                        f"{e.message[:300]}" for e in errors[:10]))
