"""cancel_and_wait: a shutdown must not hang on a task that lost its cancellation."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from streams.tasks import cancel_and_wait

pytestmark = pytest.mark.anyio


async def test_a_task_that_swallows_a_cancel_still_ends() -> None:
    swallowed = asyncio.Event()

    async def loses_one_cancel() -> None:
        # What a library timeout racing the cancel does on Python 3.11: the CancelledError is
        # turned into something else and the loop goes on.
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if swallowed.is_set():
                    raise
                swallowed.set()
                asyncio.current_task().uncancel()  # type: ignore[union-attr]

    task = asyncio.create_task(loses_one_cancel())
    await asyncio.sleep(0)
    with anyio.fail_after(5):
        await cancel_and_wait([task])
    assert swallowed.is_set()
    assert task.cancelled()


async def test_tasks_already_done_are_left_as_they_are() -> None:
    async def fails() -> None:
        raise ValueError("boom")

    task = asyncio.create_task(fails())
    await asyncio.sleep(0)
    with anyio.fail_after(5):
        await cancel_and_wait([task])
    assert isinstance(task.exception(), ValueError)
