"""`liaison user add|disable|reset|list` and `liaison key create|rotate|revoke|list`.

They work on the database directly (the operator is on the server), so the first
supervisor can be made before anyone can log in. Passwords are asked for on the
terminal, or generated and printed once; key secrets are printed once.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from datetime import timedelta
from typing import Any

from service.access import auth
from service.access.auth import PEOPLE_ROLES, Role
from service.errors import DomainError
from service.settings import Settings
from service.store.db import create_engine, migrate
from service.store.tables import ANY_AGENCY, DEFAULT_AGENCY

COMMANDS = ("user", "key")


def add_parsers(sub: Any) -> None:
    user = sub.add_parser("user", help="people who log in to the pages")
    usub = user.add_subparsers(dest="user_command", required=True)
    add = usub.add_parser("add", help="add a person with a role")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=[r.value for r in PEOPLE_ROLES])
    add.add_argument("--name", help="display name")
    add.add_argument("--officer-id", help="an officer's badge or unit (default: username)")
    add.add_argument("--agency", default=DEFAULT_AGENCY,
                     help="the agency whose calls, units, policy and figures they see and "
                          "act on (`liaison agency list`); '*' for a regional role that "
                          f"sees every agency's (default {DEFAULT_AGENCY})")
    add.add_argument("--generate-password", action="store_true",
                     help="make a random password and print it once, instead of asking")
    for name, text in (("disable", "stop a person logging in; ends their sessions"),
                       ("reset", "set a new password (asked, or --generate-password); "
                                 "re-enables the account and ends its sessions")):
        p = usub.add_parser(name, help=text)
        p.add_argument("username")
        if name == "reset":
            p.add_argument("--generate-password", action="store_true")
    usub.add_parser("list", help="every account, its role and whether it is disabled")
    key = sub.add_parser("key", help="API keys for CAD adapters (and automation)")
    ksub = key.add_subparsers(dest="key_command", required=True)
    create = ksub.add_parser("create", help="a new key; its secret is printed once")
    create.add_argument("--client", required=True, help="who uses it, e.g. pinellas-cad")
    create.add_argument("--role", default="cad", choices=[r.value for r in Role])
    create.add_argument("--source", default="*", help="a CAD key's source name: its generic "
                        "events are stored under it and it reads back only those calls; "
                        "'*' (default) for a single CAD")
    create.add_argument("--agency", default=ANY_AGENCY,
                        help="tie the key to one agency: its calls are that agency's and it "
                             "reads only those; '*' (default): the event or where the call "
                             "is names the agency")
    rotate = ksub.add_parser("rotate", help="a new key for the client; the old ones keep "
                             "working for --grace-hours, then stop")
    rotate.add_argument("--client", required=True)
    rotate.add_argument("--grace-hours", type=float, default=None,
                        help="default LIAISON_KEY_ROTATION_GRACE_HOURS (24)")
    revoke = ksub.add_parser("revoke", help="stop a key now")
    revoke.add_argument("key_id", help="the id shown by `key list` (lk_<id>.…)")
    ksub.add_parser("list", help="every key: client, role, created, expires, revoked, last used")
    for p in (add, *usub.choices.values(), *ksub.choices.values()):
        if not any(a.dest == "database_url" for a in p._actions):
            p.add_argument("--database-url")


def _password(generate: bool) -> tuple[str, bool]:
    if generate or not sys.stdin.isatty():
        return auth.new_password(), True
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise DomainError("the two passwords differ")
    return first, False


def _show(rows: list[dict[str, Any]], cols: tuple[str, ...]) -> None:
    for r in rows:
        print("  ".join(f"{c}={r[c]}" for c in cols if r.get(c) is not None))


async def _run(args: argparse.Namespace) -> int:
    settings = Settings(**({"database_url": args.database_url} if args.database_url else {}))
    engine = create_engine(settings.database_url)
    try:
        await migrate(engine)
        if args.command == "user":
            cmd = args.user_command
            if cmd == "add":
                password, generated = _password(args.generate_password)
                await auth.add_user(engine, args.username, Role(args.role), password,
                                    display_name=args.name, officer_id=args.officer_id,
                                    agency=args.agency)
                print(f"user {args.username} added with role {args.role}, agency "
                      f"{args.agency}")
                if generated:
                    print(f"password: {password}  (shown once)")
            elif cmd == "disable":
                done = await auth.disable_user(engine, args.username)
                print(f"user {args.username} disabled; {done['sessions_ended']} session(s) "
                      "ended")
            elif cmd == "reset":
                password, generated = _password(args.generate_password)
                done = await auth.reset_password(engine, args.username, password)
                print(f"password of {args.username} reset; {done['sessions_ended']} "
                      "session(s) ended")
                if generated:
                    print(f"password: {password}  (shown once)")
            else:
                _show(await auth.list_users(engine),
                      ("username", "role", "agency_id", "officer_id", "disabled_at"))
        else:
            cmd = args.key_command
            if cmd == "create":
                token, row = await auth.create_key(engine, args.client, role=Role(args.role),
                                                   source=args.source, agency=args.agency)
                print(f"key {row['id']} for {args.client} (role {args.role}, source "
                      f"{row['source']}, agency {row['agency_id']})")
                print(f"secret: {token}  (shown once; send it as Authorization: Bearer …)")
            elif cmd == "rotate":
                grace = args.grace_hours
                if grace is None:
                    grace = settings.key_rotation_grace_hours
                token, row, old = await auth.rotate_key(engine, args.client,
                                                        timedelta(hours=grace))
                print(f"new key {row['id']} for {args.client}; the old "
                      f"({', '.join(old)}) keep working for {grace:g} h")
                print(f"secret: {token}  (shown once)")
            elif cmd == "revoke":
                key_id = args.key_id.removeprefix(auth.KEY_PREFIX).split(".", 1)[0]
                await auth.revoke_key(engine, key_id)
                print(f"key {key_id} revoked")
            else:
                _show(await auth.list_keys(engine), (
                    "id", "client", "role", "source", "agency_id", "created_at",
                    "expires_at", "revoked_at", "last_used_at"))
        return 0
    except DomainError as exc:
        print(f"liaison: {exc.message}", file=sys.stderr)
        return 2
    finally:
        await engine.dispose()


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))


async def demo_accounts(engine: Any, agencies: list[str] | None = None
                        ) -> tuple[list[tuple[str, str, str, str]], dict[str, str]]:
    """For `liaison demo` only: accounts with a random password, as (role, agency, name,
    password), and the simulator's keys. `demo-supervisor` is the region's (agency `*`:
    every agency's calls and policies); `demo-<role>` are the default agency's people and
    `demo-<agency>-<role>` each other agency's. Made anew at each start: earlier demo
    accounts get new passwords (an account's agency is what is stored, as listed), and
    the simulator keys of earlier starts are revoked, so they do not pile up. The keys
    are the region's, as a regional answering point's CAD is."""
    wanted: list[tuple[Role, str, str]] = [(Role.supervisor, ANY_AGENCY, "demo-supervisor")]
    for agency in [DEFAULT_AGENCY, *(a for a in agencies or [] if a != DEFAULT_AGENCY)]:
        for person in PEOPLE_ROLES:
            if agency == DEFAULT_AGENCY and person is Role.supervisor:
                continue  # the regional one above
            infix = "" if agency == DEFAULT_AGENCY else f"{agency}-"
            wanted.append((person, agency, f"demo-{infix}{person.value.replace('_', '-')}"))
    passwords = {}
    for role, agency, name in wanted:
        password = auth.new_password()
        try:
            await auth.add_user(engine, name, role, password, agency=agency)
        except DomainError:
            await auth.reset_password(engine, name, password)
        passwords[name] = password
    stored = {u["username"]: u for u in await auth.list_users(engine)}
    accounts = [(str(stored[name]["role"]), str(stored[name]["agency_id"]), name,
                 passwords[name]) for _, _, name in wanted]
    keys = {}
    clients = {f"demo-simulator-{r.value}": r for r in (Role.cad, Role.call_team)}
    for old in await auth.list_keys(engine):
        if old["client"] in clients and old["revoked_at"] is None:
            await auth.revoke_key(engine, old["id"])
    for client, key_role in clients.items():
        token, _ = await auth.create_key(engine, client, role=key_role, agency=ANY_AGENCY)
        keys[key_role.value] = token
    return accounts, keys
