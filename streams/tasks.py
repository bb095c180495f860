"""Stopping background tasks for sure."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

RECANCEL_EVERY_S = 0.5


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` and return once every one has ended, cancelling again each
    :data:`RECANCEL_EVERY_S` while any is still running.

    A single ``cancel()`` can be lost: on Python 3.11 a cancellation that arrives as a library's own
    timeout fires may be swallowed (seen with redis-py's ``get_message`` in the Redis reader, and
    with ``asyncio.wait_for``), and the task then runs on — a shutdown that waits on it hangs. The
    tasks' own outcomes are left to them (and to their done callbacks); nothing is raised here.
    """
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=RECANCEL_EVERY_S)
