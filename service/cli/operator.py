"""`liaison rejects …`: an operator's view of rejected CAD input, through a running
Liaison's API (so the service stays the only writer)."""

from __future__ import annotations

import json
import sys
from typing import Any

import httpx

from service.access.client_auth import auth_headers, unauthorised_hint


class NotAllowed(Exception):
    """The server wants credentials (401) or refuses this key's role (403)."""


def _check_access(r: httpx.Response) -> None:
    if hint := unauthorised_hint(r.status_code):
        raise NotAllowed(hint)


def _fail(message: str) -> int:
    print(f"liaison rejects: {message}", file=sys.stderr)
    return 2


def _get(client: httpx.Client, path: str, **params: Any) -> Any:
    r = client.get(path, params={k: v for k, v in params.items() if v is not None})
    _check_access(r)
    if r.status_code == 404:
        raise LookupError(r.json().get("message", "not found"))
    r.raise_for_status()
    return r.json()


def rejects_command(action: str, *, url: str, reject_id: int | None = None,
                    source: str | None = None, limit: int = 20,
                    corrected_file: str | None = None) -> int:
    """List, show or re-submit rejects; prints for a person, exits non-zero on failure."""
    body: dict[str, Any] = {}
    if corrected_file:
        try:
            with open(corrected_file, encoding="utf-8") as f:
                body = {"body": json.load(f)}
        except (OSError, ValueError) as exc:
            return _fail(f"cannot read {corrected_file}: {exc}")
    try:
        with httpx.Client(base_url=url.rstrip("/"), timeout=30,
                          headers=auth_headers()) as client:
            if action == "list":
                page = _get(client, "/v1/cad/rejects", source=source, limit=limit)
                print(f"{page['count']} rejected input(s); newest first")
                for r in page["data"]:
                    reasons = "; ".join(f"{e['field']}: {e['reason']}" for e in r["errors"])
                    print(f"  #{r['id']:<6} {r['received_at'][:19]}  {r['source']:<8} {reasons}")
                return 0
            assert reject_id is not None
            if action == "show":
                r = _get(client, f"/v1/cad/rejects/{reject_id}")
                print(f"#{r['id']} from {r['source']} at {r['received_at']} ({r['path']})")
                for e in r["errors"]:
                    print(f"  {e['field']}: {e['reason']}")
                print(r["body"])
                return 0
            resp = client.post(f"/v1/cad/rejects/{reject_id}/resubmit", json=body or None)
            _check_access(resp)
            answer = resp.json()
            if resp.status_code == 202:
                d = answer["decision"]
                print(f"accepted: call {answer['call_id']} -> {d['destination']} "
                      f"({d['explanation']})")
                return 0
            for e in answer.get("detail", []):
                print(f"  {e['field']}: {e['reason']}", file=sys.stderr)
            return _fail(answer.get("message") or f"still refused (HTTP {resp.status_code})")
    except (LookupError, NotAllowed) as exc:
        return _fail(str(exc))
    except httpx.HTTPError as exc:
        return _fail(f"cannot reach Liaison at {url}: {exc}")
