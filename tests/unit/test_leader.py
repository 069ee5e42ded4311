"""Scheduled work runs on one replica at a time; when that one dies, another takes over."""

import asyncio

import pytest
from redis.asyncio import Redis

from bot.services.leader import LOCK_NAME, run_as_leader
from tests.conftest import TEST_REDIS_URL

pytestmark = pytest.mark.skipif(not TEST_REDIS_URL, reason="needs TEST_REDIS_URL")


async def test_one_replica_runs_the_work_and_another_takes_over() -> None:
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
