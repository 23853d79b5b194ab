"""Board replays shared by the boards opening together (service/live/replay.py): one read
for the boards that asked before it began, never one that began before a board asked."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from service.calls.visibility import Audience
from service.live.board import BoardRow
from service.live.replay import PIECE, Replays
from service.store.tables import ANY_AGENCY, utcnow

pytestmark = pytest.mark.asyncio


class Store:
    """Stored board messages; each read is counted and may be held until released."""

    def __init__(self) -> None:
        self.rows: list[BoardRow] = []
        self.reads: list[tuple[int, bool, str]] = []
        self.gate: asyncio.Event | None = None
        self.fail: Exception | None = None
        self.began = asyncio.Event()  # a read has begun

    def add(self, n: int) -> None:
        start = len(self.rows)
        self.rows += [BoardRow(seq, f'{{"type":"call","n":{seq}}}',
                               f'{{"type":"call","r":{seq}}}', "a" if seq % 2 else "b")
                      for seq in range(start + 1, start + n + 1)]

    async def read(self, after: int, live_since: datetime | None, agency: str,
                   limit: int) -> list[BoardRow]:
        self.reads.append((after, live_since is not None, agency))
        self.began.set()
        seen = list(self.rows)  # what is committed when the read begins
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return [r for r in seen if r.seq > after and r.for_agency(agency)][:limit]


async def test_boards_asking_together_share_one_read_and_its_frames() -> None:
    store = Store()
    store.add(5)
    replays = Replays(store.read, limit=3)
    asks = [replays.page(0, live_since=utcnow(), agency=ANY_AGENCY, audience=Audience.full)
            for _ in range(50)]
    pages = await asyncio.gather(*asks)
    assert len(store.reads) == 1
    assert all(p is pages[0] for p in pages)
    assert [m.seq for m in pages[0].messages] == [1, 2, 3] and pages[0].more
    assert b"".join(data for _, data in pages[0].pieces) == b"".join(
        m.frame for m in pages[0].messages)
    # The next page, for all of them again: one more read.
    nxt = await asyncio.gather(*[replays.page(3, live_since=utcnow(), agency=ANY_AGENCY,
                                              audience=Audience.full) for _ in range(50)])
    assert len(store.reads) == 2 and [m.seq for m in nxt[0].messages] == [4, 5]
    assert not nxt[0].more


async def test_a_board_asking_during_a_read_gets_a_read_of_its_own_after_it() -> None:
    store = Store()
    store.add(2)
    store.gate = asyncio.Event()
    replays = Replays(store.read)

    def ask() -> asyncio.Task[object]:
        return asyncio.create_task(replays.page(0, live_since=None, agency=ANY_AGENCY,
                                                audience=Audience.full))

    first = ask()
    await store.began.wait()  # the first read has begun, with the 2 messages stored then
    store.add(1)  # a message committed after that read began, before these asked
    later = [ask() for _ in range(10)]
    await asyncio.sleep(0)  # one turn of the loop: each of them has asked (FIFO)
    assert all(not t.done() for t in later)
    assert len(store.reads) == 1, "reads of one page run one at a time"
    store.gate.set()
    early = await first
    pages = await asyncio.gather(*later)
    assert [m.seq for m in early.messages] == [1, 2]  # type: ignore[attr-defined]
    assert len(store.reads) == 2, "the boards that asked meanwhile shared the next read"
    assert all(p is pages[0] for p in pages)
    assert [m.seq for m in pages[0].messages] == [1, 2, 3]  # type: ignore[attr-defined]


async def test_audiences_agencies_and_windows_are_not_mixed() -> None:
    store = Store()
    store.add(4)
    replays = Replays(store.read)
    now = utcnow()
    full, restricted, only_a, everything = await asyncio.gather(
        replays.page(0, live_since=now, agency=ANY_AGENCY, audience=Audience.full),
        replays.page(0, live_since=now, agency=ANY_AGENCY, audience=Audience.restricted),
        replays.page(0, live_since=now, agency="a", audience=Audience.full),
        replays.page(0, live_since=None, agency=ANY_AGENCY, audience=Audience.full))
    assert len(store.reads) == 4
    assert '"n":1' in full.messages[0].text and '"r":1' in restricted.messages[0].text
    assert [m.seq for m in only_a.messages] == [1, 3]
    assert [m.seq for m in everything.messages] == [1, 2, 3, 4]


async def test_a_failed_read_fails_every_board_that_shared_it_and_the_next_reads_anew(
        ) -> None:
    store = Store()
    store.add(1)
    store.fail = ConnectionError("the database is not answering")
    replays = Replays(store.read)
    results = await asyncio.gather(
        *[replays.page(0, live_since=None, agency=ANY_AGENCY, audience=Audience.full)
          for _ in range(5)], return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    store.fail = None
    page = await replays.page(0, live_since=None, agency=ANY_AGENCY, audience=Audience.full)
    assert [m.seq for m in page.messages] == [1] and len(store.reads) == 2


async def test_a_board_that_goes_away_does_not_cancel_the_others_read() -> None:
    store = Store()
    store.add(1)
    store.gate = asyncio.Event()
    replays = Replays(store.read)
    asks = [asyncio.create_task(replays.page(0, live_since=None, agency=ANY_AGENCY,
                                             audience=Audience.full)) for _ in range(3)]
    await store.began.wait()
    asks[0].cancel()
    store.gate.set()
    pages = await asyncio.gather(*asks[1:])
    assert [m.seq for m in pages[0].messages] == [1]
    assert asks[0].cancelled()


async def test_a_page_is_written_in_pieces_of_whole_frames_made_once() -> None:
    store = Store()
    big = "x" * 20_000  # four such frames pass the piece's size
    store.rows = [BoardRow(seq, f'{{"type":"call","note":"{big}"}}', None)
                  for seq in range(1, 11)]
    page = await Replays(store.read).page(0, live_since=None, agency=ANY_AGENCY,
                                          audience=Audience.full)
    pieces = page.pieces
    assert page.pieces is pieces, "made once, for every board that shares the page"
    assert [[m.seq for m in run] for run, _ in pieces] == [[1, 2, 3, 4], [5, 6, 7, 8],
                                                          [9, 10]]
    for run, data in pieces:  # each piece is its messages' whole frames, in order
        assert data == b"".join(m.frame for m in run)
        assert len(data) < PIECE + len(run[-1].frame)
