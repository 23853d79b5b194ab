"""The provider directory (issue 16): who offers care, to whom, when, with how many
places today. Supervisors keep it (one at a time, or a CSV file at once); the team hands
people to its providers (service/lifecycle/care.py). A provider is retired, never deleted:
the handoffs made to it keep pointing at it. Writes are writer commands, like the roster's.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field, ValidationError, field_validator
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.errors import DomainError, NotFound, field_errors
from service.store.tables import PROVIDER, iso_utc, utcnow
from service.writing.batch import Batch, Keys

PROVIDER_ID = r"^[a-z0-9][a-z0-9_-]{0,59}$"
Service = Literal["mental_health", "substance_use", "housing", "shelter", "medical", "food",
                  "peer_support", "warm_line", "youth", "veterans", "other"]
SERVICES: tuple[str, ...] = get_args(Service)
WARM_LINE = "warm_line"  # a provider offering it is a warm line to peer responders
# The CSV file's columns: id, name and services are needed; services split on ";".
CSV_COLUMNS = ("id", "name", "services", "eligibility", "hours", "capacity", "contact")
CSV_REQUIRED = ("id", "name", "services")
CSV_MAX_ROWS = 5000


class ProviderInput(BaseModel):
    """A provider as a supervisor writes it (PUT /v1/providers/{id}, a CSV row)."""

    model_config = {"extra": "forbid"}

    name: str = Field(min_length=1, max_length=200)
    services: list[Service] = Field(min_length=1, description="what it offers: "
                                    + ", ".join(SERVICES))
    eligibility: str | None = Field(default=None, max_length=2000,
                                    description="who it takes, in its words")
    hours: str | None = Field(default=None, max_length=500,
                              description="when it is open, as it states them")
    capacity: int | None = Field(default=None, ge=0, le=100000,
                                 description="open places today; null: not known")
    contact: str | None = Field(default=None, max_length=500,
                                description="how the team reaches it")

    @field_validator("name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a name is needed")
        return value.strip()


class Provider(ProviderInput):
    id: str
    active: bool
    updated_at: str | None
    updated_by: str | None


def view(row: dict[str, Any]) -> Provider:
    return Provider(id=row["id"], name=row["name"], services=json.loads(row["services"]),
                    eligibility=row["eligibility"], hours=row["hours"],
                    capacity=row["capacity"], contact=row["contact"],
                    active=bool(row["active"]), updated_at=iso_utc(row["updated_at"]),
                    updated_by=row["updated_by"])


async def provider_row(conn: AsyncConnection, provider_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(PROVIDER).where(PROVIDER.c.id == provider_id))
           ).mappings().first()
    return dict(row) if row else None


async def list_providers(engine: AsyncEngine, service: str | None = None, *,
                         retired: bool = False) -> list[Provider]:
    """The directory by name; `service`: only those offering it."""
    stmt = select(PROVIDER).order_by(PROVIDER.c.name, PROVIDER.c.id)
    if not retired:
        stmt = stmt.where(PROVIDER.c.active.is_(True))
    async with engine.connect() as conn:
        rows = [view(dict(r)) for r in (await conn.execute(stmt)).mappings()]
    # Services are a JSON list: filtered here (a directory is a few hundred rows).
    return [p for p in rows if service is None or service in p.services]


async def _put(ctx: Batch, provider_id: str, p: ProviderInput, by: str | None) -> bool:
    """Write one provider (a retired one comes back); True when it is new."""
    values = {"name": p.name, "services": json.dumps(sorted(set(p.services))),
              "eligibility": p.eligibility, "hours": p.hours, "capacity": p.capacity,
              "contact": p.contact, "active": True, "updated_at": utcnow(), "updated_by": by}
    before = await provider_row(ctx.conn, provider_id)
    if before is None:
        await ctx.conn.execute(insert(PROVIDER), {"id": provider_id, **values})
    else:
        await ctx.conn.execute(update(PROVIDER).where(PROVIDER.c.id == provider_id)
                               .values(**values))
    ctx.wrote = True
    return before is None or not before["active"]


@dataclass
class PutProvider:
    provider_id: str
    provider: ProviderInput
    by: str | None

    def keys(self) -> Keys:
        return Keys()

    async def apply(self, ctx: Batch) -> tuple[Provider, bool]:
        created = await _put(ctx, self.provider_id, self.provider, self.by)
        row = await provider_row(ctx.conn, self.provider_id)
        assert row is not None
        return view(row), created


@dataclass
class RetireProvider:
    provider_id: str
    by: str | None

    def keys(self) -> Keys:
        return Keys()

    async def apply(self, ctx: Batch) -> Provider:
        row = await provider_row(ctx.conn, self.provider_id)
        if row is None or not row["active"]:
            raise NotFound(f"no provider {self.provider_id}")
        values = {"active": False, "updated_at": utcnow(), "updated_by": self.by}
        await ctx.conn.execute(update(PROVIDER).where(PROVIDER.c.id == self.provider_id)
                               .values(**values))
        ctx.wrote = True
        return view({**row, **values})


@dataclass
class ImportProviders:
    """Rows checked beforehand (parse_csv): all are written, in one transaction."""

    rows: list[tuple[str, ProviderInput]]
    by: str | None

    def keys(self) -> Keys:
        return Keys()

    async def apply(self, ctx: Batch) -> dict[str, int]:
        created = 0
        for provider_id, p in self.rows:
            created += await _put(ctx, provider_id, p, self.by)
        return {"imported": len(self.rows), "created": created,
                "updated": len(self.rows) - created}


class BadImport(DomainError):
    """A CSV file with bad rows: 422 naming each (line, field, reason); nothing imported."""

    status = 422
    code = "invalid"


def _bad(problems: list[dict[str, Any]]) -> BadImport:
    lines = sorted({p["line"] for p in problems if p.get("line")})
    where = f"on line{'s' if len(lines) > 1 else ''} {', '.join(map(str, lines))}" \
        if lines else "in its header"
    return BadImport(f"the file has problems {where}: nothing was imported",
                     detail=problems)


def parse_csv(text: str) -> list[tuple[str, ProviderInput]]:
    """A CSV file with a header row (CSV_COLUMNS, any order; services split on ";"), as
    (id, provider) rows. Every bad row is named with its line and field; one bad row and
    nothing is imported (BadImport), so a file is never half in."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise _bad([{"line": 1, "field": "(header)", "reason": "the file is empty",
                     "type": "value_error"}]) from None
    problems: list[dict[str, Any]] = []
    for name in header:
        if name not in CSV_COLUMNS:
            problems.append({"line": 1, "field": name or "(blank)", "type": "value_error",
                             "reason": "not a column (one of: " + ", ".join(CSV_COLUMNS)
                             + ")"})
    for name in CSV_REQUIRED:
        if name not in header:
            problems.append({"line": 1, "field": name, "reason": "a needed column is "
                             "missing", "type": "value_error"})
    if len(set(header)) != len(header):
        problems.append({"line": 1, "field": "(header)", "reason": "a column is named "
                         "twice", "type": "value_error"})
    if problems:
        raise _bad(problems)
    rows: list[tuple[str, ProviderInput]] = []
    seen: dict[str, int] = {}
    for cells in reader:
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue  # a blank line
        if len(rows) >= CSV_MAX_ROWS:
            raise _bad([{"line": line, "field": "(file)", "type": "value_error",
                         "reason": f"more than {CSV_MAX_ROWS} providers in one file"}])
        if len(cells) != len(header):
            problems.append({"line": line, "field": "(row)", "type": "value_error",
                             "reason": f"{len(cells)} cells for {len(header)} columns"})
            continue
        row = {k: v.strip() for k, v in zip(header, cells, strict=True)}
        provider_id = row.pop("id")
        if not _is_id(provider_id):
            problems.append({"line": line, "field": "id", "type": "value_error",
                             "reason": "lower-case letters, digits, _ and - (at most 60), "
                                       "starting with a letter or digit"})
        elif provider_id in seen:
            problems.append({"line": line, "field": "id", "type": "value_error",
                             "reason": f"also on line {seen[provider_id]}"})
        seen.setdefault(provider_id, line)
        doc: dict[str, Any] = {k: v or None for k, v in row.items()}
        doc["services"] = [s.strip() for s in row.get("services", "").split(";")
                           if s.strip()]
        try:
            rows.append((provider_id, ProviderInput.model_validate(doc)))
        except ValidationError as exc:
            problems += [{"line": line, **err} for err in field_errors(exc.errors())]
    if problems:
        raise _bad(problems)
    return rows


def _is_id(value: str) -> bool:
    return re.fullmatch(PROVIDER_ID, value) is not None
