"""What /v1/health says about storage: does the database answer, and do writes work.

A ping alone says nothing of a full disk (reads work, every write fails), so the writer
remembers that its last write failed, and while it does health tries a real write of its
own (`ProbeWrite`, one row per instance in `write_probe`): the first that commits clears
the failure, so an instance a load balancer took out of rotation comes back by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

from service.errors import Unavailable
from service.store.db import Pinger
from service.store.tables import WRITE_PROBE, iso_utc, utcnow
from service.writing.batch import Batch, Keys
from service.writing.writer import Writer


@dataclass(frozen=True)
class ProbeWrite:
    """A writer command that writes one small row and nothing else."""

    instance: str

    def keys(self) -> Keys:
        return Keys()

    async def apply(self, ctx: Batch) -> None:
        now = utcnow()
        row = WRITE_PROBE.c
        done = await ctx.conn.execute(update(WRITE_PROBE).where(row.instance == self.instance)
                                      .values(written_at=now))
        if not done.rowcount:
            await ctx.conn.execute(insert(WRITE_PROBE).values(instance=self.instance,
                                                              written_at=now))
            # Instances that stopped long ago leave their row; one new row clears them.
            await ctx.conn.execute(delete(WRITE_PROBE).where(
                row.written_at < now - timedelta(days=1)))
        ctx.wrote = True


class StorageCheck:
    def __init__(self, writer: Writer, deadline: float) -> None:
        self.pinger = Pinger(deadline)
        self.writer = writer
        self.instance = f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"[:80]

    async def problems(self, engine: AsyncEngine) -> list[str]:
        """What is wrong with storage (nothing: []); `engine` is the one to ping."""
        found = await asyncio.gather(self.pinger.problem(engine), self._writes())
        return [p for p in found if p]

    async def _writes(self) -> str | None:
        writer = self.writer
        stalled = writer.stalled_for()
        if stalled > writer.patience.most:  # a busy database is waited for until then
            return (f"writes are not completing: a commit has waited {stalled:.0f} s for the "
                    "database")
        if writer.last_error is None:
            return None
        if writer.running:
            with contextlib.suppress(Unavailable):
                await writer.submit(ProbeWrite(self.instance))
        if writer.last_error is None:
            return None
        return f"writes are failing since {iso_utc(writer.failing_since)}: {writer.last_error}"
