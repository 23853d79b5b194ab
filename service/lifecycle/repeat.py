"""A new call's repeat-contact history inside the writer's batch (service/calls/history.py
reads the stored calls; the batch adds those it opened itself, not stored yet)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.calls.history import latest, pick_history, repeat_keys
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
    for key in keys:
        added = ctx.new_history(key, exclude_call=row["id"])
        if added is None:
            continue
        h = found.setdefault(key, {"count": 0, "last_at": None, "last_outcome": None,
                                   "last_disposition": None})
        h["count"] += added["count"]
        # The batch's calls were opened after the stored ones: one opened at the same
        # moment is the later.
        if h["last_at"] is None or added["last_at"] >= h["last_at"]:
            h.update(last_at=added["last_at"], last_outcome=added["last_outcome"],
                     last_disposition=added["last_disposition"])
    return pick_history(row, found)
