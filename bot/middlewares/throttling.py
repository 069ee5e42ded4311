"""A resident who floods the bot is asked, once, to slow down; the flood is not processed.

A flood is refused whole: once refusing, a sender is read again only when the window holds at
most half the limit. Otherwise the messages from before the flood, leaving the window during it,
let one of its messages through here and there, with refused ones before it: a hole in what the
team gets, after the resident was told that the last ones were not read.

Albums count: ten photos arrive as ten updates, so the window is generous. Only people who
wrote within the window are remembered (at most `max_people`), so memory stays flat however
many residents write.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.enums import ChatType
from aiogram.types import Message, TelegramObject
from aiogram.utils.i18n import gettext as _


class _Sender:
    __slots__ = ("refusing", "seen", "warned")

    def __init__(self) -> None:
        self.seen: deque[float] = deque()  # when each message came, refused ones included
        self.warned = float("-inf")
        self.refusing = False


class ThrottlingMiddleware(BaseMiddleware):
    def __init__(self, limit: int = 30, window: float = 10.0, max_people: int = 50_000) -> None:
        self.limit = limit
        self.window = window
        self.max_people = max_people
        # Least recently active first: the idle are found at the front.
        self._senders: OrderedDict[int, _Sender] = OrderedDict()

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        if not isinstance(event, Message) or event.chat.type != ChatType.PRIVATE or event.from_user is None:
            return await handler(event, data)
        now = time.monotonic()
        sender = self._senders.pop(event.from_user.id, None) or _Sender()
        self._forget_idle(now)
        self._senders[event.from_user.id] = sender  # now the most recently active
        seen = sender.seen
        while seen and now - seen[0] > self.window:
            seen.popleft()
        seen.append(now)
        if len(seen) <= (max(1, self.limit // 2) if sender.refusing else self.limit):
            sender.refusing = False
            return await handler(event, data)
        sender.refusing = True
        if now - sender.warned > self.window:
            sender.warned = now
            await event.answer(
                _(
                    "You are sending messages very quickly, so the last ones were not read. Please wait a moment and send them again."
                )
            )
        return None

    def _forget_idle(self, now: float) -> None:
        """Drop people quiet for longer than the window (nothing of theirs counts any more), and
        the least recently active beyond `max_people` (they lose only their count in this window)."""
        while self._senders:
            user_id, sender = next(iter(self._senders.items()))
            if len(self._senders) < self.max_people and sender.seen and now - sender.seen[-1] <= self.window:
                return
            del self._senders[user_id]
