"""`liaison units list|add|duty|retention`: the roster on the command line, through a
running Liaison's `/v1/units` API (so every change is audited and told to the board as
the page's are). The key in LIAISON_TOKEN: a supervisor's to change the roster, a
team member's to sign a unit on or off."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import httpx

from service.access.client_auth import auth_headers, unauthorised_hint

COMMANDS = ("units",)


def add_parsers(sub: Any) -> None:
    units = sub.add_parser("units", help="the roster: list, add, duty, retention")
    usub = units.add_subparsers(dest="units_command", required=True)

    def cmd(name: str, text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = usub.add_parser(name, help=text)
        p.add_argument("--url", default="http://127.0.0.1:8000", help="the running Liaison")
        return p

    listing = cmd("list", "the units, their duty, status and call")
    listing.add_argument("--program", help="only this program's units")
    add = cmd("add", "add a unit (or change one: the whole unit is given)")
    add.add_argument("id", help="e.g. CALL-3")
    add.add_argument("--program", required=True, help="a program of the policy in force")
    add.add_argument("--call-sign", default="", help="default: the id")
    add.add_argument("--member", action="append", default=[], help="repeat per member")
    add.add_argument("--capability", action="append", default=[],
                     help="repeat: clinician, peer, emt, youth_trained, …")
    add.add_argument("--on-duty", action="store_true", help="sign it on now")
    duty = cmd("duty", "sign a unit on or off")
    duty.add_argument("id")
    duty.add_argument("state", choices=["on", "off"])
    keep = cmd("retention", "show, or set (--hours), how long positions are kept")
    keep.add_argument("--hours", type=float, help="0: none but each on-duty unit's latest")


def run(args: argparse.Namespace) -> int:
    """0 done, 1 refused (bad input), 2 not reached or not allowed."""
    cmd = args.units_command
    try:
        with httpx.Client(base_url=args.url.rstrip("/"), timeout=60,
                          headers=auth_headers()) as client:
            return _run(client, cmd, args)
    except httpx.HTTPError as exc:
        print(f"liaison units {cmd}: cannot reach Liaison at {args.url}: {exc}",
              file=sys.stderr)
        return 2


def _request(client: httpx.Client, cmd: str, args: argparse.Namespace) -> httpx.Response:
    if cmd == "list":
        return client.get("/v1/units", params={"program": args.program} if args.program
                          else {})
    if cmd == "add":
        body: dict[str, Any] = {"program_id": args.program, "call_sign": args.call_sign,
                                "members": args.member, "capabilities": args.capability}
        if args.on_duty:
            body["on_duty"] = True
        return client.put(f"/v1/units/{args.id}", json=body)
    if cmd == "duty":
        return client.post(f"/v1/units/{args.id}/duty", json={"on_duty": args.state == "on"})
    if args.hours is None:
        return client.get("/v1/roster/retention")
    return client.put("/v1/roster/retention", json={"position_retention_hours": args.hours})


def _line(u: dict[str, Any]) -> str:
    on = f"on duty since {u['duty_since'][:16]}" if u["on_duty"] else "off duty"
    call = f" on call {u['call_id']}" if u["call_id"] else ""
    caps = ",".join(u["capabilities"]) or "-"
    return (f"{u['id']:<14} {u['program_id']:<14} {u['call_sign']:<14} {u['status']:<17}"
            f"{on}{call}  [{caps}]  {'; '.join(u['members'])}")


def _run(client: httpx.Client, cmd: str, args: argparse.Namespace) -> int:
    r = _request(client, cmd, args)
    if hint := unauthorised_hint(r.status_code):
        print(f"liaison units {cmd}: {hint}", file=sys.stderr)
        return 2
    body = r.json()
    if not r.is_success:
        print(f"liaison units {cmd}: {body.get('message') or body.get('error')}",
              file=sys.stderr)
        for e in body.get("detail", []) or []:
            print(f"  {e.get('field', '')}: {e.get('reason', '')}", file=sys.stderr)
        return 2 if r.status_code == 404 else 1
    if cmd == "list":
        for u in body["units"]:
            print(_line(u))
        if not body["units"]:
            print("no units on the roster: each program has its policy's unit count")
    elif cmd == "add":
        print(("added " if body["created"] else "changed ") + _line(body["unit"]))
    elif cmd == "duty":
        print(_line(body))
    else:
        by = f" (set by {body['updated_by']} at {body['updated_at'][:19]})" \
            if body["updated_by"] else " (the default)"
        print(f"positions are kept {body['position_retention_hours']:g} h{by}")
    return 0
