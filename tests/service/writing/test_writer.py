"""The writer refuses work it cannot hold instead of growing without bound."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from sqlalchemy import event, func, select, text

from service.errors import Unavailable
from service.lifecycle.ingest import ChangeStatus, RecordReject
from service.lifecycle.team import StatusChange
from service.live.board import BoardRow
from service.store.db import create_engine, migrate
from service.store.tables import BOARD, CALL
from service.writing.batch import Batch, Keys
from service.writing.writer import Writer
from tests.conftest import Server
from tests.factories import compiled, ingest_event, shipped_doc


@pytest.mark.asyncio
async def test_a_full_queue_is_refused_with_503(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")
    writer = Writer(engine, queue_max=0)
    writer.start()
    try:
        with pytest.raises(Unavailable) as refused:
            await writer.submit(RecordReject(source="generic", path="/x", errors=[], body=""))
        assert refused.value.status == 503 and "retry" in refused.value.message
    finally:
        await writer.stop()
        await engine.dispose()


@pytest.mark.asyncio
async def test_a_unit_cleared_and_a_new_call_in_one_batch_frees_the_unit(
        server: Server) -> None:
    """A status change clearing a team call, then a new call, in one writer batch: the new
    call sees the unit freed. (Before, a unit count read after the clear was saved missed
    it, and the new call went to police as units_busy.)"""
    rt = server.runtime
    policy = rt.policy.compiled
    units = policy.policy.program.units
    held = [await rt.writer.submit(ingest_event(policy)) for _ in range(units)]
    assert all(h["decision"]["destination"] == "call_team" for h in held)
    # Submitted in one go, so the writer takes both in one batch, in this order.
    cleared, new = await asyncio.gather(
        rt.writer.submit(ChangeStatus(held[0]["call_id"],
                                      StatusChange(status="cleared", disposition="cancelled"))),
        rt.writer.submit(ingest_event(policy)))
    assert cleared["status"] == "cleared"
    assert new["decision"]["program"]["units_busy"] == units - 1
    assert new["decision"]["destination"] == "call_team"


@pytest.mark.asyncio
async def test_a_batch_of_board_messages_is_delivered_with_the_seqs_stored(
        database_url: str) -> None:
    """Many board messages written in one batch: each is handed to the boards with the seq
    it was stored under, in order (on SQLite the seqs are worked out from the last rowid,
    not returned row by row)."""
    engine = create_engine(database_url)
    await migrate(engine)
    delivered: list[BoardRow] = []
    writer = Writer(engine, on_commit=delivered.extend)
    policy = compiled(shipped_doc())
    writer.start()
    try:
        for _ in range(3):  # the second and third batches number on from the first's
            await asyncio.gather(*(writer.submit(ingest_event(policy)) for _ in range(12)))
        async with engine.connect() as conn:
            stored = [(int(seq), body) for seq, body in await conn.execute(
                select(BOARD.c.seq, BOARD.c.body).order_by(BOARD.c.seq))]
    finally:
        await writer.stop()
        await engine.dispose()
    assert len(stored) == 36
    assert [(row.seq, row.body) for row in delivered] == stored


@pytest.mark.asyncio
async def test_a_batch_reads_the_queue_the_units_and_the_settling_in_one_statement(
        database_url: str) -> None:
    """What the queue and the units (held, on duty) need of an agency is one read per
    batch (a round trip each was a fifth of a small batch's on PostgreSQL), and what it
    reads is what the batch's decisions count: the shipped policy's four units held, six
    calls wait (its `max_queued`), and the rest go on."""
    engine = create_engine(database_url)
    await migrate(engine)
    writer = Writer(engine)
    sent: list[str] = []

    def heard(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        sent.append(" ".join(sql.split()))

    event.listen(writer.write_engine.sync_engine, "before_cursor_execute", heard)
    policy = compiled(shipped_doc())
    writer.start()
    try:
        for _ in range(3):
            await asyncio.gather(*(writer.submit(ingest_event(policy)) for _ in range(4)))
        await writer.stop()
        event.remove(writer.write_engine.sync_engine, "before_cursor_execute", heard)
        async with engine.connect() as conn:
            waiting, held = (await conn.execute(select(
                func.count().filter(CALL.c.wait_program.is_not(None)),
                func.count().filter(CALL.c.holds_unit.is_(True))))).one()
    finally:
        await writer.stop()
        await engine.dispose()
    # (On PostgreSQL a batch's event rows are a part of one INSERT statement: a WITH.)
    batches = sum("INSERT INTO cad_event " in s for s in sent)
    parts = ("queue_settled.settled_until", "holds_unit IS", "wait_program IS NOT NULL",
             "unit.on_duty IS")  # the settling, the units held, the queue, the roster
    state_reads = [s for s in sent
                   if s.startswith("SELECT") and any(part in s for part in parts)]
    assert 3 <= batches <= 12
    assert len(state_reads) == batches, state_reads
    assert all(part in s for s in state_reads for part in parts)
    # One CAD's new events: which of them are stored already is asked in the same read.
    assert all("FROM cad_event" in s for s in state_reads)
    assert not [s for s in sent if s.startswith("SELECT cad_event.event_id")]
    # And its new calls' repeat-contact history (service/calls/history.py): no read of its own.
    assert all("latest_address" in s for s in state_reads)
    assert not [s for s in sent if "latest_address" in s and s not in state_reads]
    # And whether its incidents have calls: none has, so no call is read.
    assert all("'call'" in s for s in state_reads)
    assert not [s for s in sent if s.startswith("SELECT call.id")]
    assert (held, waiting) == (4, 6)


@pytest.mark.asyncio
async def test_a_batch_reads_whole_only_the_calls_its_events_incidents_have(
        database_url: str) -> None:
    """The usual batch asks in its state read which of its incidents have a call, and reads
    only those whole: an update to a stored call is applied to it, a new incident opens a
    call."""
    engine = create_engine(database_url)
    await migrate(engine)
    writer = Writer(engine)
    calls_read: list[Any] = []

    def heard(_conn: Any, _cursor: Any, sql: str, params: Any, *_: Any) -> None:
        if sql.startswith("SELECT call.id"):
            calls_read.append(params)

    policy = compiled(shipped_doc())
    writer.start()
    try:
        first = await writer.submit(ingest_event(policy, incident_id="INC-STORED"))
        event.listen(writer.write_engine.sync_engine, "before_cursor_execute", heard)
        update, new = await asyncio.gather(
            writer.submit(ingest_event(policy, incident_id="INC-STORED", type="updated",
                                       narrative="Now calmer, sitting on the porch.")),
            writer.submit(ingest_event(policy, incident_id="INC-NEW")))
    finally:
        await writer.stop()
        await engine.dispose()
    assert update["call_id"] == first["call_id"] and new["call_id"] != first["call_id"]
    # Read whole: the stored incident, and not the new one (the two may share a batch).
    assert calls_read and all("INC-NEW" not in repr(p) for p in calls_read)
    assert any("INC-STORED" in repr(p) for p in calls_read)


@pytest.mark.asyncio
async def test_a_new_call_counts_the_calls_its_batch_opened_at_its_address_as_they_are_now(
        database_url: str) -> None:
    """Repeat contact inside one batch is looked up by key: a call the batch opened counts
    for a later one where it is now (an update in the same batch moved it), not where it
    was first, and in the order the batch opened them."""
    engine = create_engine(database_url)
    await migrate(engine)
    delivered: list[BoardRow] = []
    writer = Writer(engine, on_commit=delivered.extend)
    policy = compiled(shipped_doc())

    def at(address: str, hour: int, **fields: Any) -> Any:
        return ingest_event(policy, location={"address": address, "district": "D2"},
                            occurred_at=f"2026-03-10T1{hour}:00:00-04:00", **fields)

    writer.start()
    try:
        # Submitted in one go, so the writer takes them in one batch, in this order.
        moved, there, _, after_move, left, last = await asyncio.gather(*(
            writer.submit(c) for c in (
                at("1 Old St", 0, incident_id="INC-MOVED"),
                at("9 New St", 1),
                at("9 New St", 2, incident_id="INC-MOVED", type="updated"),
                at("9 New St", 3),
                at("1 Old St", 4),
                at("9 New St", 5))))
    finally:
        await writer.stop()
        await engine.dispose()
    history: dict[str, Any] = {}  # each call's first decision's, as the batch opened it
    for message in (json.loads(row.body) for row in delivered):
        if message["type"] == "decision":
            history.setdefault(message["call_id"], message.get("history"))
    assert history[there["call_id"]] is None  # the first call there, as the batch stood
    assert history[after_move["call_id"]]["count"] == 2  # "there" and the moved
    assert history[left["call_id"]] is None  # nobody is at the old address any more
    assert history[moved["call_id"]] is None
    assert history[last["call_id"]]["count"] == 3
    assert history[last["call_id"]]["last_at"] == "2026-03-10T17:00:00+00:00"  # after_move


@pytest.mark.asyncio
async def test_a_batchs_usual_statements_go_to_sqlites_cursor_not_through_sqlalchemy(
        database_url: str) -> None:
    """On SQLite the statements every batch of new calls runs (its state read, its call,
    event and decision rows) are sent on the writer's cursor (service/store/direct.py): the
    cursor events hear them, SQLAlchemy's own execution does not run them. On PostgreSQL,
    where that measured no gain, SQLAlchemy runs them, and a batch's call, event, decision
    and board rows are one statement (service/store/unnest.py)."""
    engine = create_engine(database_url)
    await migrate(engine)
    writer = Writer(engine)
    heard: list[str] = []
    executed: list[str] = []
    event.listen(writer.write_engine.sync_engine, "before_cursor_execute",
                 lambda _c, _cur, sql, *_: heard.append(" ".join(sql.split())))
    event.listen(writer.write_engine.sync_engine, "before_execute",
                 lambda _c, clause, *_: executed.append(" ".join(str(clause).split())))
    policy = compiled(shipped_doc())
    writer.start()
    try:
        answers = await asyncio.gather(*(writer.submit(ingest_event(policy)) for _ in range(4)))
    finally:
        await writer.stop()
        await engine.dispose()
    assert all(a["decision"]["destination"] == "call_team" for a in answers)
    sqlite = database_url.startswith("sqlite")
    inserts = ("INSERT INTO call ", "INSERT INTO cad_event ", "INSERT INTO decision ")
    usual = (*inserts, "SELECT 'wait' AS kind") if sqlite else ("SELECT 'wait' AS kind",)
    for start in usual:
        assert any(s.startswith(start) for s in heard), (start, heard)
        assert any(s.startswith(start) for s in executed) is not sqlite, (start, executed)
    if not sqlite:
        written = [s for s in heard if "INSERT INTO " in s]
        assert written and len(written) <= 4  # one a batch: the writer took 1-4 batches
        for s in written:
            assert s.startswith("WITH w0 AS (INSERT INTO call ")
            assert all(f"INSERT INTO {t} " in s
                       for t in ("call", "cad_event", "decision", "board_message")), s


class PlanCacheMode:
    """A command that reads, inside its batch, how PostgreSQL chooses its plans."""

    def keys(self) -> Keys:
        return Keys()

    async def apply(self, ctx: Batch) -> str:
        return str((await ctx.conn.execute(
            text("SELECT current_setting('plan_cache_mode')"))).scalar_one())


@pytest.mark.asyncio
@pytest.mark.postgres
async def test_a_batch_takes_generic_plans_and_the_apis_reads_keep_postgresqls_choice(
        postgres_url: str) -> None:
    """The writer's transaction plans its prepared statements once (PostgreSQL planned
    the state read at every bind); the setting ends with it, so a read of the API on the
    same pooled connection afterwards is planned as PostgreSQL decides."""
    engine = create_engine(postgres_url)
    await migrate(engine)
    writer = Writer(engine)
    writer.start()
    try:
        inside = [await writer.submit(PlanCacheMode()) for _ in range(2)]
        async with engine.connect() as conn:
            after = (await conn.execute(
                text("SELECT current_setting('plan_cache_mode')"))).scalar_one()
    finally:
        await writer.stop()
        await engine.dispose()
    assert inside == ["force_generic_plan"] * 2
    assert after == "auto"
