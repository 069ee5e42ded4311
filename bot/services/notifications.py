"""What residents are told about their cases: the texts, in the resident's language, rendered
when the change is stored; and the outbox's senders for a resident's chat.

A resident who blocked the bot is marked (and the clerks told, by the outbox's `on_blocked`).
"""

from __future__ import annotations

import logging
from html import escape
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters.callback_data import CallbackData
from aiogram.types import (
    InlineKeyboardMarkup,
    InputMediaDocument,
    InputMediaPhoto,
    MediaUnion,
    ReactionTypeEmoji,
    ReplyKeyboardMarkup,
)
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.config import Config
from bot.keyboards import InlineKeyboardBuilder
from bot.municipality import Team
from bot.services import texts
from bot.services.deadlines import WorkingCalendar
from bot.services.numbers import RowId
from bot.services.outbox import Sent
from bot.services.outbox_payloads import CopyPayload, MessagePayload
from bot.store.db import Database
from bot.store.models import CLOSED_STATUSES, Case, CaseEvent, EventKind, OutboxMessage, utcnow
from bot.store.residents import set_blocked

log = logging.getLogger(__name__)

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024


class Rate(CallbackData, prefix="fb"):
    """The satisfaction question's buttons: the answer travels in them, nothing is stored until the end."""

    case_id: RowId
    act: str  # score | resolved | send | comment | no
    score: int = 0
    resolved: str = ""


def score_keyboard(case_id: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for score in range(1, 6):
        builder.button(text=f"{score} ★", callback_data=Rate(case_id=case_id, act="score", score=score))
    builder.button(text=_("No, thank you"), callback_data=Rate(case_id=case_id, act="no"))
    builder.adjust(5, 1)
    return builder.as_markup()


class ResidentTexts:
    """Everything the municipality tells a resident about their case, in `locale`."""

    def __init__(self, i18n: I18n, calendar: WorkingCalendar, config: Config) -> None:
        self.i18n = i18n
        self.calendar = calendar
        self.config = config

    def _in(self, locale: str) -> Any:
        return self.i18n.use_locale(locale)

    def header(self, case: Case, locale: str) -> str:
        with self.i18n.context(), self._in(locale):
            return self._header(case)

    def _header(self, case: Case) -> str:
        return _("<b>{municipality}</b> · case {number}").format(
            municipality=escape(self.config.municipality.name.get(texts.current_locale())), number=case.number
        )

    def clerk_heading(self, locale: str) -> str:
        with self.i18n.context(), self._in(locale):
            return _("Message from the clerk:")

    def answer_heading(self, locale: str) -> tuple[str, str]:
        """The final answer's heading, and what follows it: the case is closed, and can be reopened."""
        with self.i18n.context(), self._in(locale):
            return _("The answer to your case:"), self._closed()

    def _closed(self) -> str:
        days = self.config.settings.reopen_days
        return _(
            "The case is closed. If the matter is not settled, you can reopen it under “My cases” within {days} day.",
            "The case is closed. If the matter is not settled, you can reopen it under “My cases” within {days} days.",
            days,
        ).format(days=days)

    def _due(self, case: Case) -> str:
        today = self.calendar.local_date(utcnow())
        left = self.calendar.working_days_left(today, case.due)
        return _("{date} ({left})").format(
            date=texts.day(case.due), left=texts.days_left(today, case.due, left)
        )

    def event(self, case: Case, event: CaseEvent, locale: str) -> str:
        """The resident's message for a change of their case."""
        with self.i18n.context(), self._in(locale):
            lines = [self._header(case)]
            if event.kind == EventKind.EXTENDED:
                lines.append(
                    _("The deadline for the answer has been extended to {due}.").format(due=self._due(case))
                )
                lines.append(
                    _("Reason: {reason}").format(reason=escape(texts.shorten(event.text or "", 2000)))
                )
            elif event.kind == EventKind.MESSAGE_OUT:
                lines.append(_("Message from the clerk:"))
                lines.append(escape(texts.shorten(event.text or "", 3500)))
            elif event.kind == EventKind.STATUS:
                lines.append(_("Status: {status}").format(status=texts.status_label(case.status)))
                if event.text:
                    lines.append(_("Reason: {reason}").format(reason=escape(texts.shorten(event.text, 3000))))
                if case.status in CLOSED_STATUSES:
                    lines.append(self._closed())
            else:
                raise ValueError(f"residents are not told about {event.kind} events")
            return "\n\n".join(lines)

    def merged(self, case: Case, original: Case, locale: str) -> str:
        """The resident's case was closed as a duplicate: they follow the original now."""
        with self.i18n.context(), self._in(locale):
            return "\n\n".join(
                [
                    self._header(case),
                    _(
                        "Your case reports the same problem as case {number}, so the two were merged: yours is closed, and we will tell you here when the status of {number} changes."
                    ).format(number=original.number),
                ]
            )

    def passed(self, case: Case, team: Team, reason: str, locale: str) -> str:
        """The case went to another team: which, why (the clerk was told the resident reads it), and that the deadline stays."""
        with self.i18n.context(), self._in(locale):
            return "\n\n".join(
                [
                    self._header(case),
                    _("Your case is now handled by: {team}. The deadline for the answer stays {due}.").format(
                        team=escape(team.name.get(locale)), due=self._due(case)
                    ),
                    _("Reason: {reason}").format(reason=escape(texts.shorten(reason, 2000))),
                ]
            )

    def satisfaction_question(self, case: Case, locale: str) -> tuple[str, dict[str, Any]]:
        with self.i18n.context(), self._in(locale):
            text = _(
                "How satisfied are you with how case {number} was handled? Please rate it from 1 (not at all) to 5 (very satisfied). "
                "The answer is anonymous: it is stored without your name or the case number."
            ).format(number=case.number)
            return text, score_keyboard(case.id).model_dump(exclude_none=True)


class ResidentSender:
    """The outbox's senders for a resident's private chat."""

    def __init__(self, bot: Bot, database: Database) -> None:
        self.bot = bot
        self.database = database

    async def message(self, row: OutboxMessage) -> Sent:
        payload = MessagePayload.of(row)
        markup: InlineKeyboardMarkup | ReplyKeyboardMarkup | None = None
        if payload.keyboard:
            markup = InlineKeyboardMarkup.model_validate(payload.keyboard)
        elif payload.reply_keyboard:
            markup = ReplyKeyboardMarkup.model_validate(payload.reply_keyboard)
        sent = await self.bot.send_message(row.chat_id, payload.text, reply_markup=markup)
        return Sent(row.chat_id, sent.message_id)

    async def copy(self, row: OutboxMessage) -> Sent:
        """A clerk's message (or album) from the group, under the municipality's name: a copy, not a
        forward, so the clerk's account stays private."""
        payload = CopyPayload.of(row)
        source, ids = payload.from_chat_id, payload.message_ids
        header, heading, html = payload.header, payload.heading, payload.html
        footer = "\n\n" + payload.footer if payload.footer else ""  # the final answer: the case is closed
        if (
            html is not None
            and not payload.media
            and len(header) + len(heading) + len(html) + len(footer) + 3 <= TEXT_LIMIT
        ):
            first = (
                await self.bot.send_message(row.chat_id, f"{header}\n\n{heading}\n{html}{footer}")
            ).message_id
        elif payload.media and len(ids) == 1 and len(header) + len(html or "") + 2 <= CAPTION_LIMIT:
            caption = header + ("\n\n" + html if html else "")
            first = (await self.bot.copy_message(row.chat_id, source, ids[0], caption=caption)).message_id
        else:  # long texts and albums: the header first, then the clerk's message(s) as they are
            await self.bot.send_message(row.chat_id, f"{header}\n\n{heading}")
            first = (await self.bot.copy_messages(row.chat_id, source, ids))[0].message_id
            if footer:
                await self.bot.send_message(row.chat_id, footer.strip())
        try:
            await self.bot.set_message_reaction(source, ids[0], [ReactionTypeEmoji(emoji="👍")])
        except TelegramBadRequest:
            log.debug("could not mark a relayed message as delivered")  # a courtesy; the delivery is recorded

        async def record(session: AsyncSession) -> None:
            await session.execute(
                update(CaseEvent).where(col(CaseEvent.id) == payload.event).values(resident_message_id=first)
            )

        return Sent(row.chat_id, first, record)

    async def mark_blocked(self, resident_id: int) -> None:
        await set_blocked(self.database, resident_id, True)
        log.info("resident blocked the bot", extra={"resident_id": resident_id})


async def send_files(bot: Bot, chat_id: int, files: list[Any], thread_id: int | None = None) -> list[int]:
    """Photos and documents by file_id, albums kept together (Telegram takes 2-10 per album);
    the ids of the messages sent, in order."""
    sent: list[int] = []
    photos = [f for f in files if f.kind == "photo"]
    documents = [f for f in files if f.kind == "document"]
    for group, media_type in ((photos, InputMediaPhoto), (documents, InputMediaDocument)):
        for start in range(0, len(group), 10):
            chunk = group[start : start + 10]
            if len(chunk) == 1:
                send = bot.send_photo if media_type is InputMediaPhoto else bot.send_document
                sent.append(
                    (
                        await send(
                            chat_id, chunk[0].file_id, caption=_caption(chunk[0]), message_thread_id=thread_id
                        )
                    ).message_id
                )
            else:
                media: list[MediaUnion] = [media_type(media=f.file_id, caption=_caption(f)) for f in chunk]
                sent += [
                    message.message_id
                    for message in await bot.send_media_group(chat_id, media, message_thread_id=thread_id)
                ]
    return sent


def _caption(item: Any) -> str | None:
    return escape(texts.shorten(item.caption, 1000)) if item.caption else None
