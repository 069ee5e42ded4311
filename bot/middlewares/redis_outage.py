"""While Redis (REDIS_URL) is unreachable, the person is asked to try again instead of being ignored.

aiogram's own FSM middleware takes the person's lock in Redis and reads their state before any
handler runs, so this middleware has to sit outside it: `install` puts it first among the
update middlewares. The lock is released after the handler has answered, so a failure there
gets no apology (the person was answered). An outage is logged once when it starts and once
when it ends, not per update.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot, Dispatcher
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramAPIError
from aiogram.types import Chat, TelegramObject, Update, User
from aiogram.utils.i18n import gettext as _
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.middlewares.i18n import ResidentI18nMiddleware
from bot.store.db import Database
from bot.store.residents import get_resident

log = logging.getLogger(__name__)

_HANDLED = "petent_handled"


class RedisOutageMiddleware(BaseMiddleware):
    def __init__(self, database: Database, locales: ResidentI18nMiddleware) -> None:
        self.database = database
        self.locales = locales
        self.down = False

    def install(self, dispatcher: Dispatcher) -> None:
        """Register as the outermost update middleware (the manager only appends, so re-register the
        others after), and `_handled` inside aiogram's FSM middleware."""
        outer = dispatcher.update.outer_middleware
        others = list(outer)
        for middleware in others:
            outer.unregister(middleware)
        middlewares: list[Any] = [self, *others, self._handled]  # instances and functions alike
        for middleware in middlewares:
            outer.register(middleware)

    @staticmethod
    async def _handled(
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        result = await handler(event, data)
        data[_HANDLED] = True  # what fails after this is the release of the lock
        return result

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        try:
            result = await handler(event, data)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            if not self.down:
                self.down = True
                log.error(
                    "redis is unreachable: updates are answered with a request to try again",
                    extra={"error": " ".join(str(exc).split())},
                )
            if not data.get(_HANDLED):
                await self._ask_to_try_again(event, data)
            return None
        if self.down and "state" in data:  # this update took its lock in Redis and read the state
            self.down = False
            log.warning("redis is reachable again")
        return result

    async def _ask_to_try_again(self, event: TelegramObject, data: dict[str, Any]) -> None:
        if not isinstance(event, Update):
            return
        bot: Bot = data["bot"]
        with self.locales.i18n.context(), self.locales.i18n.use_locale(await self._locale(event, data)):
            text = _(
                "Sorry, a technical problem kept us from handling this just now. Please try again in a moment."
            )
        try:
            if event.callback_query is not None:
                await bot.answer_callback_query(event.callback_query.id, text=text, show_alert=True)
            elif event.message is not None:
                message = event.message
                await bot.send_message(
                    message.chat.id,
                    text,
                    message_thread_id=message.message_thread_id if message.is_topic_message else None,
                )
        except TelegramAPIError as exc:
            log.warning("could not ask to try again", extra={"error": type(exc).__name__})

    async def _locale(self, event: Update, data: dict[str, Any]) -> str:
        """The language the person would have been answered in (the database still works without Redis)."""
        user: User | None = data.get("event_from_user")
        chat: Chat | None = data.get("event_chat")
        if "resident" not in data and user is not None and (chat is None or chat.type == ChatType.PRIVATE):
            try:
                data["resident"] = await get_resident(self.database, user.id)
            except Exception:  # noqa: BLE001 - a guess from Telegram's language will do
                data["resident"] = None
        return await self.locales.get_locale(event, data)
