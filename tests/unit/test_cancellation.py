"""A stop is a stop: a task cancelled at the moment it is woken ends (asyncio.wait_for on Python
3.11 returns the wake-up instead, and a loop around it runs on; the bot's shutdown, or a test's
teardown, then hangs). Each check cancels at every point of a wake-up, many times over."""

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from bot.sandbox.emulator import Emulator
from bot.services.outbox import Outbox
from bot.store.db import Database


async def _stops_when_cancelled_during_a_wake_up(
    start: Callable[[], Coroutine[Any, Any, None]], wake: Callable[[], Awaitable[None]]
) -> int:
    """How many of 50 cancellations, each some loop steps after a wake-up, the task outlived."""
    outlived = 0
    for trial in range(50):
        task = asyncio.create_task(start())
        await asyncio.sleep(0.01)  # asleep, waiting to be woken
        await wake()
        for _ in range(trial % 8):
            await asyncio.sleep(0)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=2)
        if not done:
            outlived += 1
            task.cancel()  # again, so that the test itself ends
            await asyncio.wait({task})
    return outlived


async def test_the_outbox_stops_when_cancelled_as_it_is_woken(database: Database) -> None:
    outbox = Outbox(database, "test")

    async def wake() -> None:
        outbox.wake()

    assert await _stops_when_cancelled_during_a_wake_up(outbox.run, wake) == 0


async def test_waiting_on_the_emulator_stops_when_cancelled_as_it_is_woken(emulator: Emulator) -> None:
    async def wait_forever() -> None:
        while True:  # as a test's feeder does: wait for updates, take them, wait again
            await emulator.wait_for(lambda: False, 10)

    async def wake() -> None:
        emulator.enqueue({})  # an update: every waiter looks again

    assert await _stops_when_cancelled_during_a_wake_up(wait_forever, wake) == 0


async def test_a_stopped_outbox_ends_its_run_without_being_cancelled(database: Database) -> None:
    """The bot stops its outbox between two claims (never amid one), then drains it."""
    outbox = Outbox(database, "test")
    running = asyncio.create_task(outbox.run())
    await asyncio.sleep(0.05)  # claiming and waiting, as it does between messages
    outbox.stop()
    done, _ = await asyncio.wait({running}, timeout=5)
    assert done == {running} and not running.cancelled() and running.exception() is None
    await outbox.drain()  # the write after a stop goes through at once
