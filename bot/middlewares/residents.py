"""Hands each private-chat update the resident's record (or None before the first choice)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.enums import ChatType
from aiogram.types import Chat, TelegramObject, User

from bot.store.db import Database
from bot.store.residents import get_resident


class ResidentMiddleware(BaseMiddleware):
    def __init__(self, database: Database) -> None:
        self.database = database

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        user: User | None = data.get("event_from_user")
        chat: Chat | None = data.get("event_chat")
        is_private = chat is None or chat.type == ChatType.PRIVATE
        data["resident"] = await get_resident(self.database, user.id) if user and is_private else None
        return await handler(event, data)
