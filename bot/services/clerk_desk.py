"""The clerks' group as the bot keeps it: a forum topic and a card per case, kept current.

Everything here runs as background tasks: the group's lane allows 20 messages a minute, and a
resident must never wait for it. A card that never got posted (a crash in between) is posted
on the next start (`resume`). Broken topics heal themselves: a deleted topic gets a new one,
a group that cannot have topics gets the card in its main chat, and a group upgraded to a
supergroup is followed to its new id; each time the clerks are told.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from datetime import date, datetime, time, timedelta
from html import escape
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramMigrateToChat
from aiogram.filters.callback_data import CallbackData
from aiogram.types import BufferedInputFile, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import lazy_gettext as __
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.config import Config
from bot.services import texts
from bot.services.deadlines import WorkingCalendar
from bot.services.desk import DeskService, allowed_actions
from bot.services.notifications import send_files
from bot.services.quality import Period, QualityService
from bot.services.report_output import png, report_chart, report_message, report_xlsx
from bot.store.models import Case, CaseEvent, CaseKind, EventKind, Resident, utcnow
from bot.store.residents import get_resident

log = logging.getLogger(__name__)

# Forum topic icon colours Telegram accepts, one per kind.
TOPIC_COLORS = {CaseKind.REQUEST: 7322096, CaseKind.COMPLAINT: 16478047, CaseKind.REPORT: 16766590}

ACTION_LABELS = {
    "take": __("🙋 Take"),
    "progress": __("⚙️ In progress"),
    "extend": __("⏳ Extend"),
    "answer": __("✅ Answer and close"),
    "redirect": __("↪️ Redirect"),
    "reject": __("⛔ Reject"),
    "reopen": __("↩ Reopen"),
}


class DeskAction(CallbackData, prefix="dk"):
    action: str
    case_id: int


class StaffChats:
    """The clerks' and communications' chat ids; the clerks' one follows a supergroup upgrade."""

    def __init__(self, admin: int, comms: int) -> None:
        self.admin = admin
        self.comms = comms
        self.former_admin: set[int] = set()


class ClerkDesk:
    def __init__(
        self,
        bot: Bot,
        i18n: I18n,
        desk: DeskService,
        calendar: WorkingCalendar,
        config: Config,
        chats: StaffChats,
        quality: QualityService,
    ) -> None:
        self.bot = bot
        self.quality = quality
        self.i18n = i18n
        self.desk = desk
        self.calendar = calendar
        self.config = config
        self.chats = chats
        self.forum: bool | None = None  # unknown until the first topic is tried
        self._tasks: set[asyncio.Task[None]] = set()
        self._card_locks: dict[int, asyncio.Lock] = {}

    # --- background work ---

    def _background(self, name: str, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(self._guarded(name, work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, name: str, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except (TelegramBadRequest, TelegramForbiddenError) as exc:
            log.error("could not post to the clerks' group", extra={"what": name, "error": exc.message})
        except Exception:
            log.exception("could not post to the clerks' group", extra={"what": name})

    async def drain(self, timeout: float = 10.0) -> None:
        """Let what is being posted finish, for up to `timeout` seconds; the rest is cancelled.

        A case whose card was cancelled is posted on the next start (see `resume`)."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(list(self._tasks), timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("stopping with posts for the clerks unsent; they follow on the next start", extra={"unsent": len(pending)})

    def locale(self) -> Any:
        return self.i18n.use_locale(self.config.settings.admin_locale)

    # --- sending into the group, healing what is broken ---

    async def _call(self, make: Any) -> Any:
        """Run `make(chat_id)`; follow the group if Telegram says it moved."""
        try:
            return await make(self.chats.admin)
        except TelegramMigrateToChat as exc:
            await self._migrated(exc.migrate_to_chat_id)
            return await make(self.chats.admin)

    async def _migrated(self, new_id: int) -> None:
        old = self.chats.admin
        if new_id == old:
            return
        self.chats.former_admin.add(old)
        self.chats.admin = new_id
        log.error("the clerks' group moved: set ADMIN_CHAT_ID to the new id", extra={"old": old, "new": new_id})
        with self.i18n.context(), self.locale():
            text = _("This group became a supergroup with a new id. I follow it now; please set ADMIN_CHAT_ID={chat_id} in the configuration.").format(chat_id=new_id)
        await self.bot.send_message(new_id, text)

    async def send(self, case: Case, text: str, **kwargs: Any) -> Message:
        """A message in the case's topic (or the main chat), re-creating a deleted topic."""
        try:
            return await self._call(lambda chat: self.bot.send_message(chat, text, message_thread_id=case.topic_id, **kwargs))
        except TelegramBadRequest as exc:
            if case.topic_id is None or "thread not found" not in exc.message.lower():
                raise
        await self._replace_topic(case)
        return await self._call(lambda chat: self.bot.send_message(chat, text, message_thread_id=case.topic_id, **kwargs))

    async def _replace_topic(self, case: Case) -> None:
        lost = case.topic_id
        log.warning("a case topic was deleted; opening a new one", extra={"case": case.number, "topic": lost})
        case.topic_id = await self._open_topic(case)
        card = await self._post_card(case)
        await self.desk.set_card(case.id, case.topic_id, card.message_id)
        with self.i18n.context(), self.locale():
            note = _("The previous topic of this case was deleted; the case continues here.")
        await self._call(lambda chat: self.bot.send_message(chat, note, message_thread_id=case.topic_id))

    async def _open_topic(self, case: Case) -> int | None:
        if self.forum is False:
            return None
        locale = self.config.settings.admin_locale
        municipality = self.config.municipality
        eldership = municipality.eldership_by_id.get(case.eldership_id or "")
        with self.i18n.context(), self.locale():
            where = eldership.get(locale) if eldership else _("whole district")
        name = f"{case.number} · {municipality.category_by_id[case.category_id].get(locale)} · {where}"[:128]
        try:
            topic = await self._call(lambda chat: self.bot.create_forum_topic(chat, name, icon_color=TOPIC_COLORS.get(case.kind)))
        except TelegramBadRequest as exc:
            if not any(reason in exc.message.lower() for reason in ("not a forum", "not enough rights", "chat_not_modified", "topics")):
                raise
            self.forum = False
            log.warning("no forum topics in the clerks' group; cards go to the main chat", extra={"error": exc.message})
            with self.i18n.context(), self.locale():
                note = _("I cannot open a topic per case here ({reason}). Cards go to this chat; reply to a card to write to the resident. To have topics, turn on Topics and give me the right to manage them.").format(reason=escape(exc.message))
            await self._call(lambda chat: self.bot.send_message(chat, note))
            return None
        self.forum = True
        return topic.message_thread_id

    # --- cards ---

    def render_card(self, case: Case, resident: Resident | None) -> str:
        municipality = self.config.municipality
        locale = self.config.settings.admin_locale
        eldership = municipality.eldership_by_id.get(case.eldership_id or "")
        today = self.calendar.local_date(utcnow())
        left = self.calendar.working_days_left(today, case.due)
        lines = [
            f"{texts.KIND_ICONS.get(case.kind, '')} <b>{case.number}</b> · {texts.kind_label(case.kind)}",
            _("Status: {status}").format(status=texts.status_label(case.status))
            + (" · " + _("assigned to {name}").format(name=escape(case.assignee_name)) if case.assignee_name else ""),
            _("Eldership: {name}").format(name=escape(eldership.get(locale)) if eldership else _("whole district / not sure")),
            _("Category: {name}").format(name=escape(municipality.category_by_id[case.category_id].get(locale))),
            _("Received: {date}").format(date=texts.day(self.calendar.local_date(case.received_at))),
            _("Deadline: {date} ({left})").format(date=texts.day(case.due), left=texts.days_left(today, case.due, left)),
        ]
        if case.extended_until:
            lines.append(_("Extended by {days} working days: {reason}").format(days=case.extension_days, reason=escape(case.extension_reason or "")))
        lines.append(
            _("Resident: {name}").format(name=escape(resident.display_name if resident else "?"))
            + (f" · {escape(resident.phone)}" if resident and resident.phone else "")
        )
        if case.address:
            lines.append(_("Address: {address}").format(address=escape(case.address)))
        description = case.description if len(case.description) <= 3000 else case.description[:3000] + "…"
        return "\n".join(lines) + "\n\n" + escape(description)

    def card_keyboard(self, case: Case) -> InlineKeyboardMarkup:
        builder = InlineKeyboardBuilder()
        for action in allowed_actions(case):
            if action == "extend" and self.desk.extension_left(case) <= 0:
                continue
            builder.button(text=str(ACTION_LABELS[action]), callback_data=DeskAction(action=action, case_id=case.id))
        builder.adjust(2)
        return builder.as_markup()

    async def _post_card(self, case: Case) -> Message:
        resident = await get_resident(self.desk.database, case.resident_id)
        with self.i18n.context(), self.locale():
            text, keyboard = self.render_card(case, resident), self.card_keyboard(case)
        return await self._call(lambda chat: self.bot.send_message(chat, text, message_thread_id=case.topic_id, reply_markup=keyboard))

    def new_case(self, case: Case, attachments: tuple[Any, ...] = ()) -> None:
        self._background("new case", self._open_case(case, attachments))

    async def _open_case(self, case: Case, attachments: tuple[Any, ...]) -> None:
        case.topic_id = await self._open_topic(case)
        card = await self._post_card(case)
        await self.desk.set_card(case.id, case.topic_id, card.message_id)
        case.card_message_id = card.message_id
        if case.latitude is not None and case.longitude is not None:
            await self._call(lambda chat: self.bot.send_location(chat, case.latitude, case.longitude, message_thread_id=case.topic_id))
        if attachments:
            await self._call(lambda chat: send_files(self.bot, chat, list(attachments), thread_id=case.topic_id))

    async def resume(self) -> None:
        """Post the cards that a crash kept from the group."""
        for case in await self.desk.without_card():
            self.new_case(case, tuple(await self.desk.attachments(case.id)))

    def refresh_card(self, case: Case) -> None:
        """Edit the card to show the current status, assignee, deadline and buttons."""
        if case.card_message_id is None:
            return
        self._background("card", self._edit_card(case))

    async def _edit_card(self, case: Case) -> None:
        lock = self._card_locks.setdefault(case.id, asyncio.Lock())
        async with lock:
            current = await self.desk.get(case.id) or case
            resident = await get_resident(self.desk.database, current.resident_id)
            with self.i18n.context(), self.locale():
                text, keyboard = self.render_card(current, resident), self.card_keyboard(current)
            try:
                await self._call(lambda chat: self.bot.edit_message_text(text, chat_id=chat, message_id=current.card_message_id, reply_markup=keyboard))
            except TelegramBadRequest as exc:
                if "not modified" not in exc.message:
                    raise

    def post(self, case: Case, text: str, attachments: tuple[Any, ...] = ()) -> None:
        """Something for the clerks about a case, in its topic."""
        self._background("post", self._post(case, text, attachments))

    async def _post(self, case: Case, text: str, attachments: tuple[Any, ...]) -> None:
        current = await self.desk.get(case.id) or case
        await self.send(current, text)
        if attachments:
            await self._call(lambda chat: send_files(self.bot, chat, list(attachments), thread_id=current.topic_id))

    def information_added(self, case: Case, event: CaseEvent, attachments: tuple[Any, ...]) -> None:
        """What the resident added (or their reason for reopening), in the case's topic."""
        with self.i18n.context(), self.locale():
            if event.data and event.data.get("to") == "reopened":
                header = _("↩ <b>{number}</b>: the resident reopened the case").format(number=case.number)
            else:
                header = _("➕ <b>{number}</b>: the resident added information").format(number=case.number)
        self.post(case, header + ("\n\n" + escape(event.text) if event.text else ""), attachments)
        if event.data and event.data.get("to") == "reopened":
            self.refresh_card(case)

    # --- the daily digest ---

    async def digest(self, today: date) -> None:
        """Cases due within 3 working days and overdue ones, grouped by assignee; a reminder
        goes into each such case's topic as well."""
        soon, overdue = await self.desk.due_soon_and_overdue(today)
        with self.i18n.context(), self.locale():
            lines = [_("📋 <b>Daily digest</b>, {date}").format(date=texts.day(today))]
            for title, cases in ((_("Overdue"), overdue), (_("Due within 3 working days"), soon)):
                lines += ["", f"<b>{title}</b> ({len(cases)})"]
                by_assignee: dict[str, list[Case]] = {}
                for case in cases:
                    by_assignee.setdefault(case.assignee_name or _("not assigned"), []).append(case)
                for assignee, own in sorted(by_assignee.items()):
                    lines.append(f"👤 {escape(assignee)}: " + ", ".join(f"{c.number} ({texts.day(c.due)})" for c in own))
            if not soon and not overdue:
                lines += ["", _("Nothing is due soon and nothing is overdue.")]
            text = "\n".join(lines)
            reminders = []
            for case in overdue + soon:
                left = self.calendar.working_days_left(today, case.due)
                reminders.append((case, _("⏰ Reminder: the deadline is {date} ({left}).").format(date=texts.day(case.due), left=texts.days_left(today, case.due, left))))
        await self._call(lambda chat: self.bot.send_message(chat, text[:4096]))
        for case, reminder in reminders:
            await self.desk.record(case, EventKind.REMINDED, None, None)
            self.post(case, reminder)

    async def run_schedule(self) -> None:
        """At DIGEST_TIME (the municipality's time zone): the digest on working days, and on
        WEEKLY_REPORT's day the quality report for the 7 days before."""
        settings = self.config.settings
        at = settings.digest_time or time(8, 0)
        while True:
            now = utcnow().astimezone(self.calendar.tz)
            target = datetime.combine(now.date(), at, tzinfo=self.calendar.tz)
            if target <= now:
                target += timedelta(days=1)
            await asyncio.sleep((target - now).total_seconds())
            today = target.date()
            if settings.digest_time is not None and self.calendar.is_working_day(today):
                await self._guarded("digest", self.digest(today))
            if today.weekday() == settings.weekly_report_weekday:
                await self._guarded("weekly report", self.post_report(Period(today - timedelta(days=7), today - timedelta(days=1))))

    # --- the quality report ---

    async def post_report(self, period: Period, thread_id: int | None = None) -> None:
        """The quality report for `period`: a message, the chart and the XLSX file."""
        with self.i18n.context(), self.locale():
            report = await self.quality.report(period, self.config.settings.admin_locale)
            text = report_message(report)
            # Drawing takes a moment of CPU: off the event loop (the locale goes along).
            chart, workbook = await asyncio.to_thread(lambda: (png(report_chart(report)), report_xlsx(report)))
            caption = _("Weekly trend and satisfaction, {start} – {end}").format(start=texts.day(period.start), end=texts.day(period.end))
        name = f"quality-{period.start.isoformat()}-{period.end.isoformat()}"
        await self._call(lambda chat: self.bot.send_message(chat, text, message_thread_id=thread_id))
        await self._call(lambda chat: self.bot.send_photo(chat, BufferedInputFile(chart, f"{name}.png"), caption=caption, message_thread_id=thread_id))
        await self._call(lambda chat: self.bot.send_document(chat, BufferedInputFile(workbook, f"{name}.xlsx"), message_thread_id=thread_id))
