"""Work that must run once however many replicas run: the daily digest, the weekly report.

With Redis (the replicas' shared store) the replica holding a lock with a time to live runs it
and renews the lock while it lives; if it dies, the lock runs out and another replica takes over
within `ttl` seconds. Without Redis there is one process, and it simply runs the work.
(The outbox and broadcasts need no leader: every replica sends, each row claimed by one.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import LockError, RedisError

from bot.aio import wait_for_event

log = logging.getLogger(__name__)

LOCK_NAME = "petent:leader"


async def run_as_leader(
    redis: Redis | None,
    work: Callable[[], Coroutine[Any, Any, None]],
    ttl: float = 30.0,
    stopping: asyncio.Event | None = None,
) -> None:
    """Run `work` while this replica leads; a replica waiting to lead gives up once `stopping` is set."""
    if redis is None:
        await work()
        return
    stopping = stopping or asyncio.Event()
    lock = redis.lock(LOCK_NAME, timeout=ttl)
    while not stopping.is_set():
        try:
            leading = await lock.acquire(blocking=False)
        except RedisError:  # Redis away: nobody can be sure to lead; ask again later
            leading = False
        if not leading:
            await wait_for_event(stopping, ttl / 3)
            continue
        log.info("this replica runs the scheduled work")
        task = asyncio.create_task(work())
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=ttl / 3)
                if not task.done():
                    await lock.reacquire()
        except (LockError, RedisError):
            log.warning("the lock on the scheduled work was lost; another replica may take it")
        finally:
            task.cancel()
            with contextlib.suppress(LockError, RedisError):
                await lock.release()
        if task.done() and not task.cancelled():
            return
