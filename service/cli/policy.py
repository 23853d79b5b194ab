"""`liaison policy list|show|create|validate|test|publish|unschedule|rollback|diff|dry-run`: the
policy workbench on the command line, through a running Liaison's `/v1/policies` API (the
same documents the API takes, so a city can keep its policy in git)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import httpx

from rules.load import PolicyInvalid, self_contained_text
from service.access.client_auth import auth_headers, unauthorised_hint

COMMANDS = ("list", "show", "create", "validate", "test", "publish", "unschedule", "rollback",
            "diff", "dry-run")


def add_parsers(psub: Any) -> None:
    """Add the workbench subcommands beside `liaison policy check`."""
    def sub(name: str, text: str, *, version: bool = False) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = psub.add_parser(name, help=text)
        if version:
            p.add_argument("version", help="a version label, or <policy id>@<version>")
        p.add_argument("--url", default="http://127.0.0.1:8000", help="the running Liaison")
        p.add_argument("--agency", help="whose policy (several agencies: docs/agencies.md); "
                       "default: the key's agency, or the default agency")
        return p

    sub("list", "every stored version: status, author, times")
    show = sub("show", "one version", version=True)
    show.add_argument("--yaml", action="store_true", help="print the YAML document (export)")
    create = sub("create", "store a YAML file as a draft")
    create.add_argument("file")
    create.add_argument("--author", default="",
                        help="ignored: the server records the key's (or user's) name")
    create.add_argument("--comment", default="")
    sub("validate", "errors and static-analysis warnings of a YAML file").add_argument("file")
    sub("test", "run a version's test cases", version=True)
    sub("publish", "publish a version now, or --at a time", version=True).add_argument(
        "--at", help="RFC 3339 time with offset for a scheduled publish")
    sub("unschedule", "cancel a version's scheduled publish", version=True)
    sub("rollback", "re-publish an earlier version", version=True)
    sub("diff", "unified diff against the published version", version=True).add_argument(
        "--against", help="another version instead of the published one")
    dry = sub("dry-run", "decide a call (JSON file) with a version, with the full trace",
              version=True)
    dry.add_argument("--call", required=True, help="JSON: call fields, optional units_busy")


def _print_errors(body: dict[str, Any]) -> None:
    for e in body.get("errors", []) or body.get("detail", []):
        where = e.get("path") or e.get("field") or ""
        print(f"  {where}: {e.get('reason', '')}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Run one workbench command; 0 done, 1 refused (invalid, tests failing), 2 not reached."""
    cmd = args.policy_command
    try:
        with httpx.Client(base_url=args.url.rstrip("/"), timeout=60,
                          headers=auth_headers(),
                          params={"agency": args.agency} if args.agency else None) as client:
            return _run(client, cmd, args)
    except OSError as exc:
        print(f"liaison policy {cmd}: {exc}", file=sys.stderr)
        return 2
    except httpx.HTTPError as exc:
        print(f"liaison policy {cmd}: cannot reach Liaison at {args.url}: {exc}",
              file=sys.stderr)
        return 2


def _run(client: httpx.Client, cmd: str, args: argparse.Namespace) -> int:
    path = f"/v1/policies/{getattr(args, 'version', '')}".rstrip("/")
    if cmd == "list":
        r = client.get("/v1/policies")
    elif cmd == "show":
        r = client.get(path, params={"format": "yaml" if args.yaml else "json"})
    elif cmd in ("create", "validate"):
        # The API keeps the text alone: area files beside the policy go in with it.
        try:
            text = self_contained_text(args.file)
        except PolicyInvalid as exc:
            print(f"liaison policy {cmd}: {exc}", file=sys.stderr)
            return 2
        body = {"document": text, "author": args.author, "comment": args.comment} \
            if cmd == "create" else {"document": text}
        r = client.post("/v1/policies" + ("/validate" if cmd == "validate" else ""), json=body)
    elif cmd == "test":
        r = client.post(f"{path}/test")
    elif cmd == "publish":
        r = client.post(f"{path}/publish", json={"at": args.at} if args.at else {})
    elif cmd in ("unschedule", "rollback"):
        r = client.post(f"{path}/{cmd}")
    elif cmd == "diff":
        r = client.get(f"{path}/diff", params={"against": args.against} if args.against else {})
    else:
        call = json.loads(Path(args.call).read_text(encoding="utf-8"))
        r = client.post(f"{path}/dry-run", json=call)

    if hint := unauthorised_hint(r.status_code):
        print(f"liaison policy {cmd}: {hint}", file=sys.stderr)
        return 2
    if r.status_code == 404:
        print(f"liaison policy {cmd}: {r.json().get('message', 'not found')}", file=sys.stderr)
        return 2
    if cmd == "show" and args.yaml and r.is_success:
        print(r.text, end="")
        return 0
    body = r.json()
    if not r.is_success:
        print(f"liaison policy {cmd}: {body.get('message') or body.get('error')}",
              file=sys.stderr)
        _print_errors(body)
        for t in body.get("failed", []) or []:
            print(f"  FAIL {t.get('name')}: {'; '.join(t.get('failures', []))}",
                  file=sys.stderr)
        return 1
    if cmd == "list":
        print(f"in force: {body['in_force']}")
        for v in body["versions"]:
            print(f"  {v['label']:<32} {v['status']:<11} {v['author'] or '-':<16} "
                  f"{v['created_at'][:19]}  {v['comment'] or ''}")
            if v.get("publish_at"):
                print(f"      scheduled to publish at {v['publish_at']}")
            if v.get("schedule_note"):
                print(f"      {v['schedule_note']}")
    elif cmd == "validate":
        if not body["valid"]:
            _print_errors(body)
            return 1
        print(f"{body['version']} is valid; {len(body['warnings'])} warning(s)")
        for w in body["warnings"]:
            print(f"  WARN  {w['kind']}: {w['message']}")
    elif cmd == "diff":
        print(body.get("diff") or "(no difference)")
    elif cmd == "test":
        results = body.get("results", [])
        for t in results:
            print(f"  {'PASS' if t['passed'] else 'FAIL'}  {t['name']}")
            for f in t.get("failures", []):
                print(f"        {f}")
        failed = sum(1 for t in results if not t["passed"])
        print(f"{len(results) - failed} passed, {failed} failed")
        return 1 if failed else 0
    elif cmd == "dry-run":
        d = body["decision"]
        print(f"{d['destination']} ({d['mode']}), category {d['category']}, "
              f"version {d['policy_version']}")
        print(f"  {d['explanation']}")
        for t in body["trace"]:
            mark = "HELD" if t["matched"] else "    "
            print(f"  {mark} {t['kind']:<9} {t['rule_id']}")
            for c in t["checks"]:
                print(f"         {'✓' if c['held'] else '✗'} {c['field']} {c['op']} "
                      f"{c['expected']} (call: {c['actual']})")
    else:
        print(json.dumps(body, indent=2))
    return 0
