"""A resident who floods the bot is asked, once, to slow down; the flood is not processed.

Albums count: ten photos arrive as ten updates, so the window is generous.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.enums import ChatType
from aiogram.types import Message, TelegramObject
from aiogram.utils.i18n import gettext as _


class ThrottlingMiddleware(BaseMiddleware):
    def __init__(self, limit: int = 30, window: float = 10.0) -> None:
        self.limit = limit
        self.window = window
        self._seen: dict[int, deque[float]] = {}
        self._warned: dict[int, float] = {}

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        if not isinstance(event, Message) or event.chat.type != ChatType.PRIVATE or event.from_user is None:
            return await handler(event, data)
        now = time.monotonic()
        if len(self._seen) > 10_000:
            self._forget_idle(now)
        seen = self._seen.setdefault(event.from_user.id, deque())
        while seen and now - seen[0] > self.window:
            seen.popleft()
        seen.append(now)
        if len(seen) <= self.limit:
            return await handler(event, data)
        if now - self._warned.get(event.from_user.id, 0) > self.window:
            self._warned[event.from_user.id] = now
            await event.answer(_("You are sending messages very quickly, so the last ones were not read. Please wait a moment and send them again."))
        return None

    def _forget_idle(self, now: float) -> None:
        """Drop the records of people who have been quiet (keeps memory flat)."""
        for user_id in [u for u, seen in self._seen.items() if not seen or now - seen[-1] > self.window]:
            self._seen.pop(user_id, None)
            self._warned.pop(user_id, None)
