"""A new call's repeat-contact history inside the writer's batch (service/calls/history.py
reads the stored calls; the batch adds those it opened itself, not stored yet)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.calls.history import latest, pick_history, repeat_keys
from service.store.tables import as_utc
from service.writing.batch import Batch


async def history_in_batch(ctx: Batch, row: Mapping[str, Any]) -> dict[str, Any] | None:
    """A new call's history inside the writer's batch: the stored calls sharing its keys
    (read for the whole batch by prefetch, or now for a key it did not name) plus the
    calls this batch opened before it, not stored yet."""
    keys = repeat_keys(row.get("person_key"), row.get("address_key"))
    if not keys:
        return None
    missing = [k for k in keys if k not in ctx.repeat_read]
    if missing:
        ctx.repeat.update(await latest(ctx.conn, missing))
        ctx.repeat_read.update(missing)
    found = {k: dict(ctx.repeat[k]) for k in keys if k in ctx.repeat}
    for other_id in ctx.new_call_ids:
        other: Mapping[str, Any] | None = ctx.calls.get(other_id)
        if other is None or other_id == row["id"]:
            continue
        for key in keys:
            if other[f"{key[0]}_key"] != key[1]:
                continue
            h = found.setdefault(key, {"count": 0, "last_at": None, "last_outcome": None,
                                       "last_disposition": None})
            h["count"] += 1
            opened = as_utc(other["opened_at"])
            if h["last_at"] is None or opened >= h["last_at"]:
                h.update(last_at=opened, last_outcome=other["outcome"],
                         last_disposition=other["disposition"])
    return pick_history(row, found)
