"""The outgoing limiter keeps Telegram's lanes, and broadcasts yield to interactive messages."""

import asyncio
from types import SimpleNamespace

from bot.limiter import Lanes, RateLimiter, bulk_traffic

GROUP, RESIDENT = -1001000000001, 501


async def test_group_lane_allows_20_a_minute() -> None:
    limiter = RateLimiter()
    for _ in range(20):
        await limiter.acquire(GROUP)
    assert 2.5 < limiter._chat_bucket(GROUP).delay() <= 3.0  # the 21st waits ~3 s


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
