"""A new call's repeat-contact history inside the writer's batch (service/calls/history.py
reads the stored calls; the batch adds those it opened itself, not stored yet)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.calls.history import latest, pick_history, repeat_keys
from service.writing.batch import Batch, add_history, no_history


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
        # The batch's calls were opened after the stored ones.
        added = ctx.new_history(key, exclude_call=row["id"])
        if added is not None:
            add_history(found.setdefault(key, no_history()), added)
    return pick_history(row, found)
