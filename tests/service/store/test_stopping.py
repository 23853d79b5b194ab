"""Background tasks stop between their database steps, never inside one."""

from __future__ import annotations

import asyncio

import pytest

from service.store.stopping import StepGuard, Stopping

pytestmark = pytest.mark.asyncio


async def test_stop_lets_a_step_under_way_finish_then_cancels_the_wait() -> None:
    guard = StepGuard("test")
    entered, release = asyncio.Event(), asyncio.Event()
    log: list[str] = []

    async def loop() -> None:
        while True:
            async with guard.step():
                entered.set()
                await release.wait()  # stands for a transaction's statements
                log.append("committed")
            await asyncio.sleep(3600)  # stands for waiting for work

    task = asyncio.create_task(loop())
    await entered.wait()
    stopping = asyncio.create_task(guard.stop(task))
    await asyncio.sleep(0.05)
    assert not stopping.done() and not task.done()  # not cut off mid-step
    release.set()
    await asyncio.wait_for(stopping, 5)
    assert log == ["committed"]
    assert task.cancelled()


async def test_no_step_starts_once_stop_has_begun() -> None:
    guard = StepGuard("test")
    guard.stopping = True
    with pytest.raises(Stopping):
        async with guard.step():
            pytest.fail("a step ran after stop began")


async def test_a_step_that_never_ends_is_cut_short_after_the_patience() -> None:
    guard = StepGuard("test", patience=0.1)

    async def stuck() -> None:
        async with guard.step():
            await asyncio.Event().wait()  # a database that never answers

    task = asyncio.create_task(stuck())
    await asyncio.sleep(0)
    await asyncio.wait_for(guard.stop(task), 5)
    assert task.cancelled()
