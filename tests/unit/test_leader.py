"""Scheduled work runs on one replica at a time; when that one dies, another takes over."""

import asyncio

import pytest
from redis.asyncio import Redis

from bot.services.leader import LOCK_NAME, run_as_leader
from tests.conftest import TEST_REDIS_URL

pytestmark = pytest.mark.skipif(not TEST_REDIS_URL, reason="needs TEST_REDIS_URL")


async def test_one_replica_runs_the_work_and_another_takes_over() -> None:
    assert TEST_REDIS_URL is not None
    redis = Redis.from_url(TEST_REDIS_URL)
    await redis.delete(LOCK_NAME)
    running: list[str] = []

    def work(name: str):
        async def forever() -> None:
            running.append(name)
            await asyncio.Event().wait()

        return forever

    first = asyncio.create_task(run_as_leader(redis, work("first"), ttl=1.0))
    await asyncio.sleep(0.2)
    second = asyncio.create_task(run_as_leader(redis, work("second"), ttl=1.0))
    await asyncio.sleep(1.5)  # the first renews its lock: the second waits
    assert running == ["first"]

    first.cancel()  # the first replica dies without releasing: its lock runs out
    await asyncio.sleep(0.01)
    await redis.set(LOCK_NAME, "a dead replica's token", px=900)
    await asyncio.sleep(2.0)
    assert running == ["first", "second"]
    second.cancel()
    await redis.delete(LOCK_NAME)
    await redis.aclose()


async def test_without_redis_the_one_process_runs_it() -> None:
    done: list[bool] = []

    async def work() -> None:
        done.append(True)

    await run_as_leader(None, work)
    assert done == [True]


async def test_a_replica_waiting_to_lead_gives_up_at_a_stop() -> None:
    assert TEST_REDIS_URL is not None
    redis = Redis.from_url(TEST_REDIS_URL)
    await redis.set(LOCK_NAME, "the leader's token", px=5000)
    ran: list[str] = []

    async def work() -> None:
        ran.append("work")

    stopping = asyncio.Event()
    waiting = asyncio.create_task(run_as_leader(redis, work, ttl=30.0, stopping=stopping))
    await asyncio.sleep(0.1)
    stopping.set()
    async with asyncio.timeout(1):  # not the 10 s until it would ask for the lock again
        await waiting
    assert ran == []
    await redis.delete(LOCK_NAME)
    await redis.aclose()
