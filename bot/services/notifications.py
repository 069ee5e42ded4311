"""Telling residents about their cases, in their language, at once (the limiter gives these
messages priority over broadcasts). A resident who blocked the bot is marked, not retried."""

from __future__ import annotations

import logging
from collections.abc import Callable
from html import escape
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramForbiddenError
from aiogram.types import InlineKeyboardMarkup, InputMediaDocument, InputMediaPhoto, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.config import Config
from bot.services import texts
from bot.services.deadlines import WorkingCalendar
from bot.store.db import Database
from bot.store.models import CLOSED_STATUSES, Attachment, Case, CaseEvent, EventKind, utcnow
from bot.store.residents import get_resident, set_blocked

log = logging.getLogger(__name__)


class ResidentNotifier:
    """Everything the municipality tells a resident about their case."""

    def __init__(self, bot: Bot, i18n: I18n, database: Database, calendar: WorkingCalendar, config: Config) -> None:
        self.bot = bot
        self.i18n = i18n
        self.database = database
        self.calendar = calendar
        self.config = config

    async def locale_of(self, resident_id: int) -> str:
        resident = await get_resident(self.database, resident_id)
        return resident.locale if resident and resident.locale else self.config.settings.default_locale

    async def send(
        self, resident_id: int, render: Callable[[], str], keyboard: Callable[[], InlineKeyboardMarkup] | None = None, **kwargs: Any
    ) -> Message | None:
        """Render the text (and buttons) in the resident's language and send; None if the
        resident blocked the bot."""
        locale = await self.locale_of(resident_id)
        with self.i18n.context(), self.i18n.use_locale(locale):
            text = render()
            if keyboard is not None:
                kwargs["reply_markup"] = keyboard()
        try:
            return await self.bot.send_message(resident_id, text, **kwargs)
        except TelegramForbiddenError:
            await self.mark_blocked(resident_id)
            return None

    async def mark_blocked(self, resident_id: int) -> None:
        await set_blocked(self.database, resident_id, True)
        log.info("resident blocked the bot", extra={"resident_id": resident_id})

    def _header(self, case: Case) -> str:
        return _("<b>{municipality}</b> · case {number}").format(
            municipality=escape(self.config.municipality.name.get(texts.current_locale())), number=case.number
        )

    def _due(self, case: Case) -> str:
        today = self.calendar.local_date(utcnow())
        left = self.calendar.working_days_left(today, case.due)
        return _("{date} ({left})").format(date=texts.day(case.due), left=texts.days_left(today, case.due, left))

    def render_event(self, case: Case, event: CaseEvent) -> str:
        """The resident's message for a change of their case (in the current locale)."""
        lines = [self._header(case)]
        if event.kind == EventKind.EXTENDED:
            lines.append(_("The deadline for the answer has been extended to {due}.").format(due=self._due(case)))
            lines.append(_("Reason: {reason}").format(reason=escape(event.text or "")))
        elif event.kind == EventKind.MESSAGE_OUT:
            lines.append(_("Message from the clerk:"))
            lines.append(escape(event.text or ""))
        elif event.kind == EventKind.STATUS:
            lines.append(_("Status: {status}").format(status=texts.status_label(case.status)))
            if event.text:
                lines.append(_("Reason: {reason}").format(reason=escape(event.text)))
            if case.status in CLOSED_STATUSES:
                lines.append(_("The case is closed. If the matter is not settled, you can reopen it under “My cases” within {days} days.").format(days=self.config.settings.reopen_days))
        else:
            raise ValueError(f"residents are not told about {event.kind} events")
        return "\n\n".join(lines)

    async def case_changed(self, case: Case, event: CaseEvent, attachments: list[Attachment] = ()) -> Message | None:
        """Tell the resident about a status change, an extension or a clerk's answer."""
        message = await self.send(case.resident_id, lambda: self.render_event(case, event))
        if message is not None and attachments:
            await self._send_files(case.resident_id, list(attachments))
        return message

    async def relay(self, case: Case, messages: list[Message]) -> list[int] | None:
        """A clerk's message (or album) from the group, copied to the resident under a header:
        a copy, not a forward, so the clerk's account stays private. Returns the resident's
        message ids, or None when the resident has blocked the bot."""
        first = messages[0]
        locale = await self.locale_of(case.resident_id)
        with self.i18n.context(), self.i18n.use_locale(locale):
            header = self._header(case)
            heading = _("Message from the clerk:")
        try:
            # html_text keeps the clerk's formatting and escapes the rest.
            if first.text and len(first.text) <= 3900:  # room for the header within 4096
                sent = await self.bot.send_message(case.resident_id, f"{header}\n\n{heading}\n{first.html_text}")
                return [sent.message_id]
            if len(messages) == 1 and len(first.caption or "") + len(header) + 2 <= 1024:
                caption = header + ("\n\n" + first.html_text if first.caption else "")
                copied = await self.bot.copy_message(case.resident_id, first.chat.id, first.message_id, caption=caption)
                return [copied.message_id]
            # Long texts and albums: the header first, then the clerk's message(s) as they are.
            await self.bot.send_message(case.resident_id, f"{header}\n\n{heading}")
            copied = await self.bot.copy_messages(case.resident_id, first.chat.id, [m.message_id for m in messages])
            return [c.message_id for c in copied]
        except TelegramForbiddenError:
            await self.mark_blocked(case.resident_id)
            return None

    async def _send_files(self, chat_id: int, attachments: list[Attachment]) -> None:
        try:
            await send_files(self.bot, chat_id, attachments)
        except TelegramForbiddenError:
            await self.mark_blocked(chat_id)


async def send_files(bot: Bot, chat_id: int, files: list[Any], thread_id: int | None = None) -> None:
    """Photos and documents by file_id, albums kept together (Telegram takes 2-10 per album)."""
    photos = [f for f in files if f.kind == "photo"]
    documents = [f for f in files if f.kind == "document"]
    for group, media_type in ((photos, InputMediaPhoto), (documents, InputMediaDocument)):
        for start in range(0, len(group), 10):
            chunk = group[start : start + 10]
            if len(chunk) == 1:
                send = bot.send_photo if media_type is InputMediaPhoto else bot.send_document
                await send(chat_id, chunk[0].file_id, caption=_caption(chunk[0]), message_thread_id=thread_id)
            else:
                media = [media_type(media=f.file_id, caption=_caption(f)) for f in chunk]
                await bot.send_media_group(chat_id, media, message_thread_id=thread_id)


def _caption(item: Any) -> str | None:
    return escape(item.caption[:1000]) if item.caption else None
