"""The outgoing limiter keeps Telegram's lanes, and broadcasts yield to interactive messages."""

import asyncio
from types import SimpleNamespace
from uuid import uuid4

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from bot.limiter import Lanes, RateLimiter, SharedLanes, bulk_traffic
from tests.conftest import TEST_REDIS_URL

GROUP, RESIDENT = -1001000000001, 501


async def test_group_lane_allows_20_a_minute_with_a_burst_of_18() -> None:
    """Two fewer than Telegram's 20 at once: messages paced in order may still arrive bunched."""
    limiter = RateLimiter()
    for _ in range(18):
        await limiter.acquire(GROUP)
    assert 2.5 < limiter._chat_bucket(GROUP).delay() <= 3.0  # the 19th waits ~3 s


async def test_private_lane_allows_a_short_burst_then_one_a_second() -> None:
    limiter = RateLimiter()
    for _ in range(8):
        await limiter.acquire(RESIDENT)
    for _ in range(5):
        await limiter.acquire(RESIDENT, edit=True)  # editing in place does not count
    assert 0.9 < limiter._chat_bucket(RESIDENT).delay() <= 1.0
    assert limiter._chat_bucket(RESIDENT + 1).delay() == 0  # other residents are not held up


async def test_retry_after_pauses_the_lane() -> None:
    limiter = RateLimiter()
    limiter.retry_after(GROUP, 7)
    assert 6.9 < limiter._chat_bucket(GROUP).delay() <= 7


async def test_interactive_messages_overtake_bulk_traffic() -> None:
    limiter = RateLimiter(Lanes(global_per_second=50))
    for _ in range(50):  # use up the burst
        await limiter.acquire(None)
    order: list[str] = []

    async def bulk(i: int) -> None:
        with bulk_traffic():
            await limiter.acquire(10_000 + i)
        order.append("bulk")

    async def reply() -> None:
        await asyncio.sleep(0.005)  # arrives after the broadcast has queued up
        await limiter.acquire(RESIDENT)
        order.append("reply")

    await asyncio.gather(*(bulk(i) for i in range(20)), reply())
    assert order.index("reply") <= 1


def test_chats_whose_bucket_refilled_are_forgotten(monkeypatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("bot.limiter.time", SimpleNamespace(monotonic=lambda: now[0]))
    limiter = RateLimiter()
    limiter.retry_after(GROUP, 120)  # Telegram said 429 for the group

    def answer_residents(first: int, last: int) -> None:  # one message each, 30 a second
        for chat_id in range(first, last + 1):
            now[0] += 1 / 30
            limiter._chat_bucket(chat_id).tokens -= 1  # as acquire() takes a token

    answer_residents(1, 3000)
    assert GROUP in limiter._chats and limiter._chats[GROUP].delay() > 0  # kept while paused
    answer_residents(3001, 20_000)
    assert GROUP not in limiter._chats  # the pause ended and the lane refilled: same as a new one
    assert len(limiter._chats) < 100  # a resident's bucket refills in a second: only the latest are kept
    assert limiter._chat_bucket(20_000).tokens == limiter.lanes.private_burst - 1  # the latest still count


@pytest.mark.skipif(not TEST_REDIS_URL, reason="the shared lanes live in Redis (TEST_REDIS_URL)")
async def test_two_replicas_sharing_the_overall_lane_keep_within_it() -> None:
    redis = Redis.from_url(TEST_REDIS_URL or "")
    replicas = [
        SharedLanes(redis, Lanes(global_per_second=30), prefix=f"petent:test-lane:{uuid4().hex}:")
        for _ in range(2)
    ]
    replicas[1].prefix = replicas[0].prefix  # one budget
    granted = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 2

    async def send(replica: SharedLanes) -> None:
        # Each sender stops by itself: a task cancelled in the middle of a Redis command can be
        # slow to end, or (redis-py) not end at all, and then the test loop's teardown hangs.
        nonlocal granted
        while loop.time() < deadline:
            await replica.take(None, edit=False)
            granted += loop.time() < deadline

    await asyncio.gather(*(send(replica) for replica in replicas for _ in range(10)))
    await redis.aclose()
    assert granted <= 30 * 2 + 15 + 2, f"{granted} sent in 2 s at 30 a second with a burst of 15"


class _SwallowingRedis:
    """A Redis whose script call, cancelled mid-command, does not raise the cancellation but
    answers (0: go) or fails (a connection error), as redis-py sometimes does."""

    def __init__(self, outcome: str) -> None:
        self.outcome = outcome
        self.started = asyncio.Event()

    def register_script(self, _source: str) -> object:
        async def script(keys: list[str], args: list[object]) -> int:
            self.started.set()
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                if self.outcome == "error":
                    raise RedisConnectionError("Connection closed by server") from None
            return 0

        return script


@pytest.mark.parametrize("outcome", ["answer", "error"])
async def test_a_cancellation_a_redis_call_swallowed_still_ends_the_sender(outcome: str) -> None:
    """Cancelled while Redis was asked for a slot, the sender ends, cancelled, whatever the
    client made of it: it does not go on sending (and a stop waiting for it does not hang)."""
    redis = _SwallowingRedis(outcome)
    lanes = SharedLanes(redis, Lanes())
    sender = asyncio.create_task(lanes.take(None, edit=False))
    await redis.started.wait()
    sender.cancel()
    await asyncio.wait([sender], timeout=1)
    assert sender.cancelled()


async def test_an_edit_in_a_private_chat_told_to_wait_waits_itself() -> None:
    """No lane holds such an edit (only new messages count in a private chat): the caller must wait."""
    limiter = RateLimiter()
    assert limiter.retry_after(RESIDENT, 1, edit=True) is False
    assert limiter.retry_after(RESIDENT, 1) is True and limiter._chat_bucket(RESIDENT).delay() > 0.9
    assert limiter.retry_after(GROUP, 1, edit=True) is True
