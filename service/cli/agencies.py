"""`liaison agency add|update|list`: the agencies (jurisdictions) of a region (issue 17).

Run on the server against the database, as `liaison user` is. An agency added with
`--policy` has that policy published as its first version; without one, its calls go to
police, saying it has no policy in force, until a supervisor publishes one
(`/v1/policies?agency=…`). Running instances pick a new agency up on their next policy
poll.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from routing.jurisdiction import AgencyRecord
from rules.load import PolicyInvalid
from service.errors import DomainError
from service.policy.region import add_agency, list_agencies, update_agency
from service.settings import Settings
from service.store.db import create_engine, migrate

COMMANDS = ("agency",)


def add_parsers(sub: Any) -> None:
    agency = sub.add_parser("agency", help="the agencies (jurisdictions) this Liaison serves")
    asub = agency.add_subparsers(dest="agency_command", required=True)
    add = asub.add_parser("add", help="a new agency, optionally with its first policy")
    update = asub.add_parser("update", help="change an agency's name, districts or boundary")
    for p in (add, update):
        p.add_argument("agency_id", help="lower-case letters, digits, - and _ (e.g. north-city)")
        p.add_argument("--name", required=p is add)
        p.add_argument("--districts", help="comma-separated CAD districts that are its")
        p.add_argument("--boundary", type=Path, help="a GeoJSON file: (Multi)Polygon, "
                       "Feature or FeatureCollection (longitude, latitude)")
    add.add_argument("--timezone", required=True, help="IANA time zone, e.g. America/Chicago")
    add.add_argument("--policy", type=Path, help="its first policy (YAML); its "
                     "program.timezone must be the agency's")
    asub.add_parser("list", help="every agency: id, name, time zone, districts, boundary")
    for p in asub.choices.values():
        p.add_argument("--database-url")


def _record(args: argparse.Namespace, current: AgencyRecord | None) -> AgencyRecord:
    """The agency the arguments describe, over `current` (update) where they are silent."""
    base = current.model_dump() if current else {}
    doc: dict[str, Any] = {**base, "id": args.agency_id}
    if args.name is not None:
        doc["name"] = args.name
    if getattr(args, "timezone", None):
        doc["timezone"] = args.timezone
    if args.districts is not None:
        doc["districts"] = [d for d in args.districts.split(",") if d.strip()]
    if args.boundary is not None:
        try:
            doc["boundary"] = json.loads(args.boundary.read_text())
        except (OSError, ValueError) as exc:
            raise DomainError(f"--boundary {args.boundary}: {exc}") from None
    try:
        return AgencyRecord.model_validate(doc)
    except ValidationError as exc:
        raise DomainError("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                    for e in exc.errors())) from None


async def _run(args: argparse.Namespace) -> int:
    settings = Settings(**({"database_url": args.database_url} if args.database_url else {}))
    engine = create_engine(settings.database_url)
    try:
        await migrate(engine)
        cmd = args.agency_command
        if cmd == "list":
            for a in await list_agencies(engine):
                print(f"{a.id}  name={a.name}  timezone={a.timezone}  "
                      f"districts={','.join(a.districts) or '-'}  "
                      f"boundary={'yes' if a.boundary else 'no'}")
            return 0
        known = {a.id: a for a in await list_agencies(engine)}
        if cmd == "add":
            document = args.policy.read_text() if args.policy else None
            agency = await add_agency(engine, _record(args, None), document, author="cli")
            print(f"agency {agency.id} added ({agency.timezone})"
                  + ("; its policy is published" if document else
                     "; it has no policy yet: its calls go to police until one is published"))
        else:
            if args.agency_id not in known:
                raise DomainError(f"no agency {args.agency_id!r}")
            agency = await update_agency(engine, _record(args, known[args.agency_id]))
            print(f"agency {agency.id} updated")
        return 0
    except (DomainError, PolicyInvalid, OSError) as exc:
        message = exc.message if isinstance(exc, DomainError) else str(exc)
        print(f"liaison: {message}", file=sys.stderr)
        return 2
    finally:
        await engine.dispose()


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))
