"""One limiter for everything the bot sends, with Telegram's lanes.

- overall: about 30 messages a second (`global_per_second`);
- a private chat: about one new message a second, short bursts tolerated (edits of one's own
  messages, e.g. a button press answered in place, do not count there);
- a group: 20 a minute (edits and topic creation count).

Bulk traffic (broadcasts) marks itself with `bulk_traffic()`; it takes the overall lane only
when no interactive message (a reply to a resident, a clerk's relay) is waiting for it.
Background traffic (the outbox: cards, posts, notices) marks itself with `background_traffic()`;
in a chat's lane it waits while an interactive message to that chat (a prompt to a clerk, a
refusal) is waiting, so clerks are answered before cards and posts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# What Telegram's rate limits count: the methods that put something into a chat or change it there.
# The bot paces these (bot/telegram.py), and the emulator counts these (bot/sandbox/emulator.py).
PACED_METHODS = frozenset(
    {
        "sendMessage",
        "sendPhoto",
        "sendDocument",
        "sendMediaGroup",
        "sendLocation",
        "sendPoll",
        "sendContact",
        "copyMessage",
        "copyMessages",
        "forwardMessage",
        "forwardMessages",
        "editMessageText",
        "editMessageCaption",
        "editMessageReplyMarkup",
        "editMessageMedia",
        "createForumTopic",
        "editForumTopic",
    }
)


def is_edit(method: str) -> bool:
    """An edit counts in a group's lane but not in a private chat's (only new messages count there)."""
    return method.lower().startswith("edit")


_bulk: ContextVar[str | None] = ContextVar("petent_bulk_traffic", default=None)
_background: ContextVar[bool] = ContextVar("petent_background_traffic", default=False)


@contextmanager
def background_traffic() -> Iterator[None]:
    token = _background.set(True)
    try:
        yield
    finally:
        _background.reset(token)


@contextmanager
def bulk_traffic(paid: bool = False) -> Iterator[None]:
    """Mark what is sent inside as bulk; `paid` (allow_paid_broadcast) is not held to 30/s."""
    token = _bulk.set("paid" if paid else "bulk")
    try:
        yield
    finally:
        _bulk.reset(token)


def traffic_kind() -> str:
    """What is being sent now: "bulk" (broadcasts), "background" (the outbox) or "interactive"."""
    return "bulk" if _bulk.get() else "background" if _background.get() else "interactive"


@dataclass
class Lanes:
    """Telegram's limits, and the bursts the bot allows itself within them.

    The bursts are smaller than Telegram's: requests paced here in order can still reach Telegram
    bunched (a busy event loop, the network, other replicas), and with a burst as large as
    Telegram's, a lane kept busy would meet each of those bunches with a 429."""

    global_per_second: float = 30.0
    private_per_second: float = 1.0
    private_burst: int = 8  # of Telegram's 10 or so
    group_per_minute: int = 20

    @property
    def global_burst(self) -> float:
        return max(1.0, self.global_per_second / 2)  # half a second's worth

    @property
    def group_burst(self) -> int:
        return max(1, self.group_per_minute - 2)  # two fewer: up to 6 s late at 20 a minute

    def of_chat(self, chat_id: int | str) -> tuple[float, float]:
        """A chat's lane: messages a second, and the burst."""
        if _is_private(chat_id):
            return self.private_per_second, self.private_burst
        return self.group_per_minute / 60, self.group_burst


class _Bucket:
    __slots__ = ("rate", "capacity", "tokens", "stamp", "interactive_waiting")

    def __init__(self, rate: float, capacity: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.stamp = time.monotonic()
        self.interactive_waiting = 0

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def delay(self) -> float:
        self._refill()
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    async def take(self, background: bool = False) -> None:
        if not background:
            self.interactive_waiting += 1
        try:
            while True:
                if background and self.interactive_waiting:
                    await asyncio.sleep(0.02)  # interactive messages to this chat go first
                    continue
                wait = self.delay()
                if wait <= 0:
                    self.tokens -= 1
                    return
                await asyncio.sleep(min(wait, 0.05) if background else wait)
        finally:
            if not background:
                self.interactive_waiting -= 1

    def pause(self, seconds: float) -> None:
        """After a 429: no tokens until retry_after has passed."""
        self._refill()
        self.tokens = min(self.tokens, 1 - seconds * self.rate)


# GCRA in Redis, on Redis's clock: one budget for all replicas. Returns 0 (taken) or the
# milliseconds to wait, rounded up: Redis hands a Lua number back as an integer, cut towards
# zero, and a wait under 1 ms read as 0 would be a message sent past the budget without taking
# from it (a waiter waking a fraction of a millisecond early got one every time).
# KEYS[1]: the lane; ARGV: milliseconds per message, burst.
_SHARED_TAKE = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local interval, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or now), now)
local wait = tat - now - interval * (burst - 1)
if wait > 0 then return math.ceil(wait) end
redis.call('SET', KEYS[1], tat + interval, 'PX', math.ceil(tat + interval - now + 1000))
return 0
"""


class SharedLanes:
    """The overall lane and each chat's lane shared by every replica through Redis, so the bot as
    a whole stays within Telegram's limits however many replicas run. If Redis fails, each
    replica falls back on its own lanes (logged once) rather than stop sending."""

    def __init__(self, redis: Any, lanes: Lanes, prefix: str = "petent:lane:") -> None:
        self.redis = redis
        self.lanes = lanes
        self.prefix = prefix
        self._script = redis.register_script(_SHARED_TAKE)
        self._failing = False

    async def take(self, chat_id: int | str | None, edit: bool) -> None:
        if chat_id is not None and _in_chat_lane(chat_id, edit):
            per_second, burst = self.lanes.of_chat(chat_id)
            await self._take(f"chat:{chat_id}", 1000 / per_second, burst)
        if _bulk.get() != "paid":
            await self._take("global", 1000 / self.lanes.global_per_second, self.lanes.global_burst)

    async def _take(self, lane: str, interval_ms: float, burst: float) -> None:
        while True:
            try:
                wait_ms = int(
                    await self._script(keys=[self.prefix + lane], args=[interval_ms, max(1, int(burst))])
                )
            except RedisError:
                wait_ms = None
            _still_cancelled()
            if wait_ms is None:
                if not self._failing:
                    log.warning("shared sending limits unavailable (Redis): this replica paces alone")
                self._failing = True
                return
            self._failing = False
            if wait_ms <= 0:
                return
            await asyncio.sleep(wait_ms / 1000)


def _still_cancelled() -> None:
    """Raise the cancellation of this task if a Redis call swallowed it: redis-py, cancelled in
    the middle of a command, can return or raise a connection error instead, and the task would
    go on sending as if never cancelled (a stop waiting for it would hang)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class RateLimiter:
    def __init__(self, lanes: Lanes | None = None, shared: SharedLanes | None = None) -> None:
        self.lanes = lanes or Lanes()
        self.shared = shared
        self._global = _Bucket(self.lanes.global_per_second or 1, self.lanes.global_burst)
        # Swept from the front as new chats come: a bucket that has refilled is dropped.
        self._chats: OrderedDict[int | str, _Bucket] = OrderedDict()
        self._interactive_waiting = 0

    def _chat_bucket(self, chat_id: int | str) -> _Bucket:
        bucket = self._chats.get(chat_id)
        if bucket is None:
            bucket = _Bucket(*self.lanes.of_chat(chat_id))
            self._forget_full_buckets()
            self._chats[chat_id] = bucket
        return bucket

    def _forget_full_buckets(self, checks: int = 2) -> None:
        """Drop chats whose bucket has refilled: a new bucket starts full, so forgetting one changes
        nothing. Each new chat looks at two from the front (one still refilling goes to the back),
        so only chats sent to lately are kept: a private chat for some seconds, a group for a minute,
        a paused one (429) until its pause ends."""
        for _ in range(min(checks, len(self._chats))):
            chat_id, bucket = next(iter(self._chats.items()))
            bucket.delay()  # refills
            if bucket.tokens >= bucket.capacity:
                del self._chats[chat_id]
            else:
                self._chats.move_to_end(chat_id)

    async def acquire(self, chat_id: int | str | None, edit: bool = False) -> None:
        """Wait for a slot to send one message (or edit one, `edit`) in `chat_id` (None: no chat lane)."""
        if not self.lanes.global_per_second:
            return  # pacing switched off (a Bot API server without limits, or a benchmark)
        if chat_id is not None and _in_chat_lane(chat_id, edit):
            await self._chat_bucket(chat_id).take(background=_background.get())
        await self._take_global()
        if self.shared is not None:
            await self.shared.take(chat_id, edit)

    async def _take_global(self) -> None:
        bulk = _bulk.get()
        if bulk == "paid":
            return  # Telegram lets paid broadcasts go up to 1000 a second
        if not bulk:
            self._interactive_waiting += 1
        try:
            while True:
                if bulk and self._interactive_waiting:
                    await asyncio.sleep(0.005)  # interactive messages go first
                    continue
                wait = self._global.delay()
                if wait <= 0:
                    self._global.tokens -= 1
                    return
                await asyncio.sleep(wait)
        finally:
            if not bulk:
                self._interactive_waiting -= 1

    def retry_after(self, chat_id: int | str | None, seconds: float, edit: bool = False) -> bool:
        """Telegram said 429: hold the chat's lane (or all traffic) for `seconds`.

        False when no lane holds the request meanwhile, and the caller must wait itself: pacing
        is off, or it is an edit in a private chat, which that chat's lane does not count."""
        if not self.lanes.global_per_second:
            return False
        if chat_id is None:
            self._global.pause(seconds)
        elif _in_chat_lane(chat_id, edit):
            self._chat_bucket(chat_id).pause(seconds)
        else:
            return False
        return True


def _is_private(chat_id: int | str) -> bool:
    return isinstance(chat_id, int) and chat_id > 0


def _in_chat_lane(chat_id: int | str, edit: bool) -> bool:
    """Whether a request counts in its chat's lane: in a private chat only new messages do."""
    return not (edit and _is_private(chat_id))
