"""The writer refuses work it cannot hold instead of growing without bound."""

from __future__ import annotations

import pytest

from service.errors import Unavailable
from service.lifecycle.ingest import RecordReject
from service.store.db import create_engine
from service.writing.writer import Writer


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
