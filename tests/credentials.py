"""Real credentials for tests: an API key per role and a person per role, made in the
test's database, and an httpx auth that picks, for each request, a key whose role the
route allows (the route table says which). Tests about access itself use their own
clients with one credential at a time."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi.routing import iter_route_contexts
from starlette.routing import compile_path

from api.access import Public
from service.access.auth import PEOPLE_ROLES, Role, add_user, create_key
from service.errors import Conflict
from service.store.db import create_engine

# Where a route allows several roles, the first of these is used: supervisors see whole
# calls, which is what most tests look at.
PREFERENCE = (Role.supervisor, Role.cad, Role.call_team, Role.dispatcher, Role.officer,
              Role.analyst, Role.crisis_center)
PASSWORD = "correct horse battery staple"
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Credentials:
    keys: dict[Role, str] = field(default_factory=dict)
    users: dict[Role, str] = field(default_factory=dict)  # role -> username
    password: str = PASSWORD

    def bearer(self, role: Role) -> dict[str, str]:
        return {"authorization": f"Bearer {self.keys[role]}"}


async def make_credentials(engine: Any) -> Credentials:
    creds = Credentials()
    for role in Role:
        token, _ = await create_key(engine, f"test-{role.value}", role=role, source="*")
        creds.keys[role] = token
    for role in PEOPLE_ROLES:
        name = f"test-{role.value}"
        # A second server on the same database finds them made already.
        with contextlib.suppress(Conflict):
            await add_user(engine, name, role, PASSWORD, officer_id=f"badge-{role.value}"
                           if role is Role.officer else None)
        creds.users[role] = name
    return creds


async def liaison_key_create(database_url: str, client: str, source: str) -> str:
    """`liaison key create --client … --source …` as an operator runs it; the key printed."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "api.cli", "key", "create", "--client", client,
        "--source", source, "--database-url", database_url, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    found = re.search(r"secret: (lk_\S+)", out.decode())
    assert found, out.decode()
    return found.group(1)


async def credentials_for(database_url: str) -> Credentials:
    """For a database a subprocess has migrated."""
    engine = create_engine(database_url)
    try:
        return await make_credentials(engine)
    finally:
        await engine.dispose()


@dataclass(frozen=True)
class RouteEntry:
    path: str
    methods: frozenset[str] | None  # None: a websocket or a mount
    regex: Any
    route: Any  # the route as declared, with its dependencies


def route_table(app: Any) -> list[RouteEntry]:
    """Every route the app serves, with its full path (FastAPI includes routers lazily)."""
    table = []
    for ctx in iter_route_contexts(app.routes):
        path = ctx.path or ""
        methods = getattr(ctx.original_route, "methods", None)
        regex, _, _ = compile_path(path) if path else (None, None, None)
        table.append(RouteEntry(path, frozenset(methods) if methods else None, regex,
                                ctx.original_route))
    return table


_TABLES: dict[int, list[RouteEntry]] = {}


def allowed_roles(app: Any, method: str, path: str) -> tuple[Role, ...]:
    table = _TABLES.setdefault(id(app), route_table(app))
    for entry in table:
        if entry.regex is not None and entry.regex.match(path) and (
                entry.methods is None or method in entry.methods):
            return route_roles(entry.route)
    return ()


def declaration(route: Any) -> str | tuple[Role, ...] | None:
    """What a route declares (api/access.py): "public", the roles allowed, or None."""
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return None
    roles: tuple[Role, ...] = ()
    stack = list(dependant.dependencies)
    while stack:
        dep = stack.pop()
        if isinstance(dep.call, Public):
            return "public"
        roles += tuple(getattr(dep.call, "roles", ()))
        stack.extend(dep.dependencies)
    return roles or None


def route_roles(route: Any) -> tuple[Role, ...]:
    found = declaration(route)
    return found if isinstance(found, tuple) else ()


class RoleAuth(httpx.Auth):
    """Adds a key allowed on the route, unless the request carries credentials already."""

    def __init__(self, app: Any, creds: Credentials) -> None:
        self.app = app
        self.creds = creds

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if "authorization" not in request.headers and "cookie" not in request.headers:
            roles = allowed_roles(self.app, request.method, request.url.path)
            for role in PREFERENCE:
                if role in roles:
                    request.headers["authorization"] = f"Bearer {self.creds.keys[role]}"
                    break
        yield request
