"""The locale of each update: the resident's choice, else a guess from Telegram; staff groups
always get ADMIN_LOCALE."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiogram.types import Chat, TelegramObject, User
from aiogram.utils.i18n import I18n, I18nMiddleware

from bot.settings import LOCALES


def guess_locale(language_code: str | None, default: str) -> str:
    """Telegram's language_code mapped to ours: pl/lt as such, none → default, others → en."""
    if not language_code:
        return default
    code = language_code.split("-")[0].lower()
    return code if code in LOCALES else "en"


class ResidentI18nMiddleware(I18nMiddleware):
    def __init__(self, i18n: I18n, is_staff_chat: Callable[[int], bool], admin_locale: str) -> None:
        super().__init__(i18n)
        self.is_staff_chat = is_staff_chat  # asked each time: a staff group can move to a new id
        self.admin_locale = admin_locale

    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        chat: Chat | None = data.get("event_chat")
        if chat is not None and self.is_staff_chat(chat.id):
            return self.admin_locale
        resident = data.get("resident")
        if resident is not None and resident.locale:
            return str(resident.locale)
        user: User | None = data.get("event_from_user")
        return guess_locale(user.language_code if user else None, self.i18n.default_locale)
