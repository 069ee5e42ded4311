"""Waiting that a shutdown can end: for an event at most so long, for tasks at most so long.

The bot's background work (the outbox, announcements, the schedule) stops between two pieces of
work instead of being cancelled: a task cancelled inside a SQLite write can leave the transaction
open, and the next write then waits out the busy timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection
from typing import Any


async def wait_for_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait until `event` is set or `seconds` have passed; True if it is set.

    asyncio.timeout, not asyncio.wait_for: on Python 3.11 wait_for swallows a cancellation that
    meets the event being set, and a stop waiting for the task hangs (tests/unit/test_cancellation.py)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
    return event.is_set()


async def finish_or_cancel(tasks: Collection[asyncio.Task[Any]], grace: float) -> bool:
    """Let `tasks` finish within `grace` seconds, cancel those still running; True if none was."""
    if not tasks:
        return True
    _, late = await asyncio.wait(tasks, timeout=grace)
    for task in late:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return not late
