"""The team groups as the bot keeps them: a forum topic and a card per case, kept current, and
the posts clerks read there (in ADMIN_LOCALE).

`ClerkTexts` renders; `GroupSender` is the outbox's sender for everything that goes into a team
group. Broken topics heal themselves: a deleted topic gets a new one (with the card), a group
that cannot have topics gets cards in its main chat, and a group upgraded to a supergroup is
followed to its new id; each time the clerks are told.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from html import escape
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import lazy_gettext as __
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.config import Config
from bot.keyboards import InlineKeyboardBuilder
from bot.municipality import Team
from bot.services import case_queries, texts
from bot.services.area_notices import NotifyArea, can_notify
from bot.services.case_commands import Action, Clerk, allowed_actions, extension_left
from bot.services.case_notices import record_trace
from bot.services.cases import Contact
from bot.services.deadlines import WorkingCalendar
from bot.services.metoo import Related, related_of
from bot.services.notifications import send_files
from bot.services.numbers import RowId
from bot.services.outbox import Permanent, Sent, follow_migration
from bot.services.outbox_payloads import (
    CardBlankPayload,
    CardEditPayload,
    CloseTopicPayload,
    DeleteMessagesPayload,
    DeleteTopicPayload,
    FilesPayload,
    InfoPayload,
    MessagePayload,
)
from bot.services.teams import TeamDirectory
from bot.store.db import Database
from bot.store.models import (
    CLOSED_STATUSES,
    Attachment,
    Case,
    CaseEvent,
    CaseKind,
    Channel,
    EventKind,
    OutboxMessage,
    Resident,
    TraceKind,
    utcnow,
)

log = logging.getLogger(__name__)

# Forum topic icon colours Telegram accepts, one per kind.
TOPIC_COLORS = {CaseKind.REQUEST: 7322096, CaseKind.COMPLAINT: 16478047, CaseKind.REPORT: 16766590}

ACTION_LABELS = {
    Action.TAKE: __("🙋 Take"),
    Action.ASSIGN: __("👤 Assign"),
    Action.PROGRESS: __("⚙️ In progress"),
    Action.EXTEND: __("⏳ Extend"),
    Action.ANSWER: __("✅ Answer and close"),
    Action.PASS: __("🔀 Pass to another team"),
    Action.REDIRECT: __("↪️ Redirect"),
    Action.REJECT: __("⛔ Reject"),
    Action.REOPEN: __("↩️ Reopen"),
    Action.PUBLISH: __("🌐 Make public"),
    Action.HIDE: __("🔒 Hide from public"),
    Action.DUPLICATE: __("🔗 Duplicate of…"),
}

CARD_BUDGET = 3900  # characters of HTML for a card: its visible text stays within Telegram's 4096
MESSAGE_BUDGET = 4000


class DeskAction(CallbackData, prefix="dk"):
    action: Action
    case_id: RowId


class ClerkTexts:
    """What clerks read about cases, in ADMIN_LOCALE."""

    def __init__(self, i18n: I18n, calendar: WorkingCalendar, config: Config, teams: TeamDirectory) -> None:
        self.i18n = i18n
        self.calendar = calendar
        self.config = config
        self.teams = teams
        self.locale = config.settings.admin_locale

    def _in_admin_locale(self) -> Any:
        return self.i18n.use_locale(self.locale)

    def _eldership(self, case: Case) -> str:
        eldership = self.config.municipality.eldership_by_id.get(case.eldership_id or "")
        return eldership.get(self.locale) if eldership else _("whole district")

    def topic_name(self, case: Case) -> str:
        with self.i18n.context(), self._in_admin_locale():
            category = self.config.municipality.category_by_id[case.category_id].get(self.locale)
            return f"{case.number} · {category} · {self._eldership(case)}"[:128]

    def card(
        self,
        case: Case,
        resident: Resident | None,
        created: CaseEvent | None = None,
        closing: CaseEvent | None = None,
        related: Related | None = None,
    ) -> tuple[str, InlineKeyboardMarkup]:
        """The card and the buttons that fit the case now; `created` (the case's CREATED event)
        names the clerk who registered a case that came outside Telegram; `closing` (the STATUS
        event that closed it, if it is closed) who closed it."""
        with self.i18n.context(), self._in_admin_locale():
            return self._card_text(case, resident, created, closing, related), self._card_keyboard(case)

    def retired_card(
        self,
        case: Case,
        resident: Resident | None,
        created: CaseEvent | None = None,
        closing: CaseEvent | None = None,
    ) -> str:
        """The card left in a group the case was passed on from: as the case is now, no buttons."""
        with self.i18n.context(), self._in_admin_locale():
            team = escape(self.teams.get(case.team_id).name.get(self.locale))
            return (
                _("🔀 Passed on to {team}: the case is handled in its group now.").format(team=team)
                + "\n\n"
                + self._card_text(case, resident, created, closing)
            )

    def _status_line(self, case: Case, closing: CaseEvent | None) -> str:
        """The status and who has the case: responsible (open), or who closed it and when."""
        status = _("Status: {status}").format(status=texts.status_label(case.status))
        if case.status in CLOSED_STATUSES:
            when = texts.day(self.calendar.local_date(case.closed_at)) if case.closed_at else "?"
            name = closing.actor_name if closing is not None and closing.actor_name else None
            closed = (
                _("closed by {name} on {date}").format(name=escape(name), date=when)
                if name
                else _("closed on {date}").format(date=when)
            )
            return status + " · " + closed
        responsible = (
            _("responsible: {name}").format(name=escape(case.assignee_name))
            if case.assignee_name
            else _("nobody responsible yet")
        )
        return status + " · " + responsible

    def _related_lines(self, related: Related | None) -> list[str]:
        """ "Me too" and merged duplicates: how many residents the case affects, its duplicates, its original."""
        if related is None:
            return []
        lines = []
        if related.affected > 1:
            lines.append(_("👥 Affected residents: {count}").format(count=related.affected))
        if related.original:
            lines.append(_("🔗 Duplicate of {number}").format(number=related.original))
        if related.duplicates:
            lines.append(_("🔗 Duplicates: {numbers}").format(numbers=", ".join(related.duplicates)))
        if related.notices and related.latest_notice is not None:
            latest = texts.day(self.calendar.local_date(related.latest_notice))
            lines.append(
                _("📣 Area notices: {count} (the latest on {date})").format(
                    count=related.notices, date=latest
                )
            )
        return lines

    def _deadline_line(self, case: Case) -> str:
        """The legal deadline; with the working days left only while the case is open."""
        if case.status in CLOSED_STATUSES:
            return _("Deadline: {date}").format(date=texts.day(case.due))
        today = self.calendar.local_date(utcnow())
        left = self.calendar.working_days_left(today, case.due)
        return _("Deadline: {date} ({left})").format(
            date=texts.day(case.due), left=texts.days_left(today, case.due, left)
        )

    def _card_text(
        self,
        case: Case,
        resident: Resident | None,
        created: CaseEvent | None = None,
        closing: CaseEvent | None = None,
        related: Related | None = None,
    ) -> str:
        municipality = self.config.municipality
        team = self.teams.get(case.team_id)
        lines = [
            f"{texts.KIND_ICONS.get(case.kind, '')} <b>{case.number}</b> · {texts.kind_label(case.kind)}",
            self._status_line(case, closing),
            _("Team: {team}").format(team=escape(team.name.get(self.locale))),
            _("Eldership: {name}").format(name=escape(self._eldership(case))),
            _("Category: {name}").format(
                name=escape(municipality.category_by_id[case.category_id].get(self.locale))
            ),
            _("Received: {date}").format(date=texts.day(self.calendar.local_date(case.received_at))),
            self._deadline_line(case),
        ]
        if case.extended_until:
            reason = escape(texts.shorten(case.extension_reason or "", 300))
            extended = _(
                "Extended by {days} working day: {reason}",
                "Extended by {days} working days: {reason}",
                case.extension_days,
            )
            lines.append(extended.format(days=case.extension_days, reason=reason))
        lines += self._person_lines(case, resident, created)
        if case.channel == Channel.OPEN311:
            lines.append(
                _("📡 Came through Open311 from {client}").format(client=escape(case.open311_client or "?"))
            )
        if case.public:
            lines.append(
                _(
                    "🌐 Public: the description, the place and the final answer are shown in the Open311 listing"
                )
            )
        if case.address:
            lines.append(_("Address: {address}").format(address=escape(texts.shorten(case.address, 300))))
        lines += self._related_lines(related)
        head = "\n".join(lines) + "\n\n"
        if case.purged_at is not None:
            return head + _(
                "The description, the files and the resident's details were removed at the end of the retention period."
            )
        description = escape(case.description)
        if len(head) + len(description) > CARD_BUDGET:
            more = "\n" + _("(shortened: /case {number} shows the whole text)").format(number=case.number)
            description = _cut_escaped(case.description, CARD_BUDGET - len(head) - len(more)) + more
        return head + description

    def _person_lines(self, case: Case, resident: Resident | None, created: CaseEvent | None) -> list[str]:
        """Who the case is from and how to answer them: the resident in Telegram, or the person a
        clerk registered it for (their name and how to answer: phone, e-mail, postal address)."""
        contact = Contact.from_json(case.contact)
        if contact is None or case.purged_at is not None:
            lines = [self._resident_line(case, resident)]
            if (
                case.resident_id is not None and case.purged_at is None
            ):  # what the clerk writes here reaches them: in which language they read
                locale = resident.locale if resident is not None and resident.locale else case.locale
                lines.append(
                    _("Language: {language}").format(language=texts.LANGUAGE_NAMES.get(locale, locale))
                )
        else:
            lines = [_("Person: {name} (no Telegram)").format(name=escape(texts.shorten(contact.name, 100)))]
            details = [
                f"{icon} {escape(texts.shorten(value, 300))}"
                for icon, value in (("📞", contact.phone), ("✉️", contact.email), ("📮", contact.address))
                if value
            ]
            how = _("Answer {how}").format(how=texts.answer_by_label(contact.answer_by))
            lines.append(how + (": " + " · ".join(details) if details else ""))
        data = (created.data or {}) if created is not None else {}
        if created is not None and data.get("received_by"):
            lines.append(
                _("Registered by {clerk}, received {how}").format(
                    clerk=escape(created.actor_name or "?"), how=texts.received_by_label(data["received_by"])
                )
            )
        if case.answered_via:
            lines.append(_("Answer given {how}").format(how=texts.answer_by_label(case.answered_via)))
        return lines

    def _resident_line(self, case: Case, resident: Resident | None) -> str:
        if case.purged_at is not None:
            return _("Resident: personal data removed on {date} (retention period over)").format(
                date=texts.day(self.calendar.local_date(case.purged_at))
            )
        if case_queries.kept_apart(case, resident):
            return _("Resident: erased their profile; answer only about this case, in this topic")
        if (
            resident is None and case.resident_id is None
        ):  # not in Telegram, and no contact given (see _person_lines)
            return _("Resident: not named")
        name = escape(texts.shorten(resident.display_name, 100) if resident else "?")
        return _("Resident: {name}").format(name=name) + (
            f" · {escape(resident.phone)}" if resident and resident.phone else ""
        )

    def profile_erased(self, case: Case) -> str:
        with self.i18n.context(), self._in_admin_locale():
            return _(
                "🧹 The resident of {number} erased their profile (/forget). The case stays on record; answers here still reach them, nothing else does."
            ).format(number=case.number)

    def blanked(self, number: str, why: str) -> str:
        """What a card left behind says once its content is gone: at the resident's request
        (/forget), or at the end of the retention period (a card Telegram would not delete)."""
        with self.i18n.context(), self._in_admin_locale():
            if why == "retention":
                return _("🧹 {number}: removed at the end of the retention period.").format(number=number)
            return _("🧹 {number}: the content of this card was erased at the resident's request.").format(
                number=number
            )

    def _card_keyboard(self, case: Case) -> InlineKeyboardMarkup:
        builder = InlineKeyboardBuilder()
        for action in allowed_actions(case):
            if action is Action.EXTEND and extension_left(case, self.config) <= 0:
                continue
            if action is Action.PASS and len(self.teams.teams) < 2:
                continue
            if action is Action.ASSIGN and not self.teams.get(case.team_id).heads:
                continue  # nobody could press it: only heads assign
            builder.button(
                text=str(ACTION_LABELS[action]), callback_data=DeskAction(action=action, case_id=case.id)
            )
        if can_notify(case):
            builder.button(text=_("📣 Notify the area"), callback_data=NotifyArea(case_id=case.id))
        builder.adjust(2)
        return builder.as_markup()

    def description_parts(self, case: Case) -> list[str]:
        """The whole description, in messages that fit."""
        return [
            escape(case.description[start : start + 3500]) for start in range(0, len(case.description), 3500)
        ]

    def merge_refused(self, why: str, case: Case) -> str:
        """Why a case cannot be merged into `case` (the original named), for the clerk."""
        with self.i18n.context(), self._in_admin_locale():
            if why == "unknown":
                again = _("Press “{button}” on the card again to write the original's number, e.g. {number}.")
                return (
                    _("There is no such case: nothing was changed.")
                    + " "
                    + again.format(button=ACTION_LABELS[Action.DUPLICATE], number=case.number)
                )
            if why == "itself":
                return _("A case cannot be a duplicate of itself.")
            if why == "duplicate":
                return _("{number} is itself a duplicate: merge into the case it duplicates.").format(
                    number=case.number
                )
            if why == "old":
                return _(
                    "{number} was closed too long ago to be reopened; it cannot take duplicates."
                ).format(number=case.number)
            team = escape(self.teams.get(case.team_id).name.get(self.locale))
            return _(
                "{number} is handled by {team}: only a head of that team can merge a case into it."
            ).format(number=case.number, team=team)

    def assigned(self, case: Case, clerk: Clerk, assignee: Clerk) -> str:
        with self.i18n.context(), self._in_admin_locale():
            return _("👤 {head} made {name} responsible for {number}.").format(
                head=escape(clerk.name), name=escape(assignee.name), number=case.number
            )

    def passed_away(self, case: Case, clerk: Clerk, to: Team, reason: str) -> str:
        with self.i18n.context(), self._in_admin_locale():
            return _(
                "🔀 {name} passed {number} to {team}: {reason}\nThe case continues there; this topic is closed."
            ).format(
                name=escape(clerk.name),
                number=case.number,
                team=escape(to.name.get(self.locale)),
                reason=escape(texts.shorten(reason, 1000)),
            )

    def history(self, case: Case, events: list[CaseEvent], source: Team, reason: str) -> str:
        """What the new team reads under the card: where the case came from, why, and its trail."""
        with self.i18n.context(), self._in_admin_locale():
            head = _("🔀 Passed on by {team}: {reason}").format(
                team=escape(source.name.get(self.locale)), reason=escape(texts.shorten(reason, 1000))
            )
            return head + "\n\n" + self.trail(case, events, budget=MESSAGE_BUDGET - len(head) - 2)

    def trail(self, case: Case, events: list[CaseEvent], budget: int = MESSAGE_BUDGET) -> str:
        """The audit trail, oldest first; the oldest lines give way when it does not fit."""
        with self.i18n.context(), self._in_admin_locale():
            lines = [_("<b>History of {number}</b>").format(number=case.number)]
            lines += [self._trail_line(case, event) for event in events]
        while len("\n".join(lines)) > budget and len(lines) > 2:
            del lines[1]
        return "\n".join(lines)

    def _trail_line(self, case: Case, event: CaseEvent) -> str:
        when = event.at.astimezone(self.calendar.tz).strftime("%Y-%m-%d %H:%M")
        who = (
            escape(event.actor_name)
            if event.actor_name
            else (
                _("resident")
                if event.actor_id is not None and event.actor_id == case.resident_id
                else _("system")
            )
        )
        return f"{when} · {who} · {self._event_detail(event)}"

    def _event_detail(self, event: CaseEvent) -> str:
        snippet = escape(texts.shorten(event.text or "", 300))
        data = event.data or {}
        if event.kind == EventKind.CREATED:
            if data.get("received_by"):
                return _("case registered, received {how}").format(
                    how=texts.received_by_label(data["received_by"])
                )
            return _("case received")
        if event.kind == EventKind.STATUS:
            detail = _("status: {status}").format(status=texts.status_label(data["to"])) + (
                f" ({snippet})" if snippet else ""
            )
            if data.get("answered_via"):
                detail += " · " + _("answer given {how}").format(
                    how=texts.answer_by_label(data["answered_via"])
                )
            return detail
        if event.kind == EventKind.EXTENDED:
            return _("deadline extended to {date}").format(date=data.get("until", "?")) + f" ({snippet})"
        if event.kind == EventKind.MESSAGE_IN:
            return _("from the resident: {text}").format(text=snippet or _("(files)"))
        if event.kind == EventKind.MESSAGE_OUT:
            return _("to the resident: {text}").format(text=snippet or _("(files)"))
        if event.kind == EventKind.NOTE:
            return _("note: {text}").format(text=snippet)
        if event.kind == EventKind.PASSED:
            return _("passed from {source} to {target} ({reason})").format(
                source=escape(self.teams.get(data.get("from")).name.get(self.locale)),
                target=escape(self.teams.get(data.get("to")).name.get(self.locale)),
                reason=snippet,
            )
        if event.kind == EventKind.ASSIGNED:
            return _("responsible: {name}").format(name=escape(data.get("assignee_name", "?")))
        if event.kind == EventKind.ESCALATED:
            return _("escalated")
        if event.kind == EventKind.PUBLISHED:
            return _("made public (Open311)") if data.get("public") else _("hidden from the public")
        return _("reminder sent")

    def information(self, case: Case, events: list[CaseEvent]) -> str:
        """What the resident added (or their reason for reopening), gathered into one post."""
        with self.i18n.context(), self._in_admin_locale():
            if any((e.data or {}).get("to") == "reopened" for e in events):
                header = _("↩️ <b>{number}</b>: the resident reopened the case").format(number=case.number)
            else:
                header = _("➕ <b>{number}</b>: the resident added information").format(number=case.number)
            parts = [escape(e.text) for e in events if e.text]
            text = header + ("\n\n" + "\n\n".join(parts) if parts else "")
            if len(text) > MESSAGE_BUDGET:
                more = "\n" + _("(shortened: /history {number} shows every message)").format(
                    number=case.number
                )
                text = text[: MESSAGE_BUDGET - len(more)].rsplit("\n", 1)[0] + "\n…" + more
            return text

    def notice(self, render: Callable[[], str]) -> str:
        """A line for clerks, rendered in ADMIN_LOCALE."""
        with self.i18n.context(), self._in_admin_locale():
            return render()


def _cut_escaped(text: str, budget: int) -> str:
    """`text` escaped for HTML, cut (with "…") so the escaped result fits `budget`; never inside an entity."""
    cut = text[:budget]
    while len(escape(cut)) + 1 > budget and cut:
        cut = cut[: -max(1, (len(escape(cut)) + 1 - budget) // 2)]
    return escape(cut) + "…"


class GroupSender:
    """The outbox's senders for the team groups."""

    def __init__(self, bot: Bot, database: Database, texts_: ClerkTexts, teams: TeamDirectory) -> None:
        self.bot = bot
        self.database = database
        self.texts = texts_
        self.teams = teams
        self.forum: dict[int, bool] = {}  # per group: can it have topics (unknown until tried)

    async def _case(self, row: OutboxMessage) -> Case:
        async with self.database.read() as session:
            case = await session.get(Case, row.case_id) if row.case_id is not None else None
        if case is None:
            raise Permanent("the case is gone")
        return case

    @staticmethod
    def _here(case: Case, row: OutboxMessage) -> bool:
        """Whether the case still lives in the row's group (it may have been passed on since)."""
        return case.group_chat_id == row.chat_id

    # --- topics and cards ---

    async def topic(self, row: OutboxMessage) -> Sent:
        case = await self._case(row)
        if not self._here(case, row) or case.topic_id is not None:
            return Sent()
        topic_id = await self._open_topic(case, row.chat_id)
        traces = [_Trace(TraceKind.TOPIC, topic_id, None)] if topic_id is not None else []
        return Sent(row.chat_id, None, _recorded(case.id, row.chat_id, traces, topic_id=topic_id))

    async def _open_topic(self, case: Case, chat_id: int) -> int | None:
        if self.forum.get(chat_id) is False:
            return None
        try:
            topic = await self.bot.create_forum_topic(
                chat_id, self.texts.topic_name(case), icon_color=TOPIC_COLORS.get(CaseKind(case.kind))
            )
        except TelegramBadRequest as exc:
            if not any(
                reason in exc.message.lower()
                for reason in ("not a forum", "not enough rights", "chat_not_modified", "topics")
            ):
                raise
            self.forum[chat_id] = False
            log.warning(
                "no forum topics in a team group; cards go to the main chat",
                extra={"chat_id": chat_id, "error": exc.message},
            )
            reason = escape(exc.message)
            note = self.texts.notice(
                lambda: _(
                    "A topic per case cannot be opened here ({reason}). Cards go to this chat; reply to a card to write to the resident. "
                    "To have topics, turn on Topics and give the bot the right to manage them."
                ).format(reason=reason)
            )
            await self.bot.send_message(chat_id, note)
            return None
        self.forum[chat_id] = True
        return topic.message_thread_id

    async def card(self, row: OutboxMessage) -> Sent:
        case = await self._case(row)
        if not self._here(case, row):
            return Sent()
        sent = await self._in_topic(
            case, row.chat_id, lambda thread: self._post_card(case, row.chat_id, thread)
        )
        return Sent(
            row.chat_id,
            sent,
            _recorded(
                case.id, row.chat_id, [_Trace(TraceKind.CARD, case.topic_id, sent)], card_message_id=sent
            ),
        )

    async def _post_card(self, case: Case, chat_id: int, thread: int | None) -> int:
        text, keyboard = self.texts.card(case, *await self._people(case), await self._related(case))
        return (
            await self.bot.send_message(chat_id, text, message_thread_id=thread, reply_markup=keyboard)
        ).message_id

    async def card_edit(self, row: OutboxMessage) -> Sent:
        case = await self._case(row)
        retired = CardEditPayload.of(row).retired
        if (
            retired is not None
        ):  # the card in the group the case was passed on from: its buttons no longer act
            await self.bot.edit_message_text(
                self.texts.retired_card(case, *await self._people(case)),
                chat_id=row.chat_id,
                message_id=retired,
            )
            return Sent(row.chat_id, retired)
        if not self._here(case, row) or case.card_message_id is None:
            return (
                Sent()
            )  # the card is still to come (it is rendered as the case is then) or went with the case
        text, keyboard = self.texts.card(case, *await self._people(case), await self._related(case))
        await self.bot.edit_message_text(
            text, chat_id=row.chat_id, message_id=case.card_message_id, reply_markup=keyboard
        )
        return Sent(row.chat_id, case.card_message_id)

    async def _related(self, case: Case) -> Related:
        async with self.database.read() as session:
            return await related_of(session, case)

    async def _people(self, case: Case) -> tuple[Resident | None, CaseEvent | None, CaseEvent | None]:
        """What the card says about the people of the case: the resident, the CREATED event (a
        case registered by a clerk names them there) and the event that closed it (who closed it)."""
        async with self.database.read() as session:
            return (
                await case_queries.resident_of(session, case),
                await case_queries.created_event(session, case),
                await case_queries.closing_event(session, case),
            )

    async def _in_topic(self, case: Case, chat_id: int, send: Callable[[int | None], Awaitable[int]]) -> int:
        """Send into the case's topic, opening a new topic (with the card) if it was deleted."""
        try:
            return await send(case.topic_id)
        except TelegramBadRequest as exc:
            if case.topic_id is None or not _topic_deleted(exc):
                raise
        log.warning(
            "a case topic was deleted; opening a new one", extra={"case": case.number, "topic": case.topic_id}
        )
        case.topic_id = await self._open_topic(case, chat_id)
        card = await self._post_card(case, chat_id, case.topic_id)
        traces = [_Trace(TraceKind.TOPIC, case.topic_id, None)] if case.topic_id is not None else []
        async with self.database.write() as session:
            await _recorded(
                case.id,
                chat_id,
                [*traces, _Trace(TraceKind.CARD, case.topic_id, card)],
                topic_id=case.topic_id,
                card_message_id=card,
            )(session)
        note = self.texts.notice(
            lambda: _("The previous topic of this case was deleted; the case continues here.")
        )
        await self.bot.send_message(chat_id, note, message_thread_id=case.topic_id)
        return await send(case.topic_id)

    # --- posts ---

    async def message(self, row: OutboxMessage) -> Sent:
        payload = MessagePayload.of(row)
        case = await self._case(row) if row.case_id is not None else None
        in_topic = case is not None and payload.in_topic and self._here(case, row)
        keyboard = (
            InlineKeyboardMarkup.model_validate(payload.keyboard) if payload.keyboard else None
        )  # a nonconformity's card

        async def send(thread: int | None) -> int:
            return (
                await self.bot.send_message(
                    row.chat_id, payload.text, message_thread_id=thread, reply_markup=keyboard
                )
            ).message_id

        if payload.topic_id is not None:  # a topic the case has left (passed on): its last line
            try:
                return self._post(row, payload.topic_id, [await send(payload.topic_id)])
            except TelegramBadRequest as exc:
                if not _topic_deleted(exc):
                    raise
                return self._post(
                    row, None, [await send(None)]
                )  # the topic was deleted meanwhile: the group's main chat
        if in_topic and case is not None:
            sent = await self._in_topic(case, row.chat_id, send)
            return self._post(row, case.topic_id, [sent])
        return self._post(row, None, [await send(None)])

    @staticmethod
    def _post(row: OutboxMessage, topic_id: int | None, message_ids: list[int]) -> Sent:
        """What was sent into a group: recorded as the case's posts (CaseTrace), if it is about a case."""
        if row.case_id is None or not message_ids:
            return Sent(row.chat_id, message_ids[0] if message_ids else None)
        traces = [_Trace(TraceKind.POST, topic_id, message_id) for message_id in message_ids]
        return Sent(row.chat_id, message_ids[0], _recorded(row.case_id, row.chat_id, traces))

    async def location(self, row: OutboxMessage) -> Sent:
        case = await self._case(row)
        if not self._here(case, row) or case.latitude is None or case.longitude is None:
            return Sent()
        lat, lon = case.latitude, case.longitude

        async def send(thread: int | None) -> int:
            return (await self.bot.send_location(row.chat_id, lat, lon, message_thread_id=thread)).message_id

        return self._post(row, case.topic_id, [await self._in_topic(case, row.chat_id, send)])

    async def files(self, row: OutboxMessage) -> Sent:
        ids = FilesPayload.of(row).attachments
        case = await self._case(row)
        async with self.database.read() as session:
            attachments = list(
                (
                    await session.execute(
                        select(Attachment).where(col(Attachment.id).in_(ids)).order_by(col(Attachment.id))
                    )
                ).scalars()
            )
        if not attachments or not self._here(case, row):
            return Sent()
        sent: list[int] = []

        async def send(thread: int | None) -> int:
            sent[:] = await send_files(self.bot, row.chat_id, attachments, thread_id=thread)
            return sent[0] if sent else 0

        await self._in_topic(case, row.chat_id, send)
        return self._post(row, case.topic_id, sent)

    async def info(self, row: OutboxMessage) -> Sent:
        """What the resident added, gathered: one post with every text, then the files together."""
        ids = InfoPayload.of(row).events
        case = await self._case(row)
        async with self.database.read() as session:
            events = list(
                (
                    await session.execute(
                        select(CaseEvent).where(col(CaseEvent.id).in_(ids)).order_by(col(CaseEvent.id))
                    )
                ).scalars()
            )
            attachments = list(
                (
                    await session.execute(
                        select(Attachment)
                        .where(col(Attachment.event_id).in_(ids))
                        .order_by(col(Attachment.id))
                    )
                ).scalars()
            )
        text = self.texts.information(case, events)

        sent: list[int] = []

        async def send(thread: int | None) -> int:
            sent[:] = [(await self.bot.send_message(row.chat_id, text, message_thread_id=thread)).message_id]
            if attachments:
                sent.extend(await send_files(self.bot, row.chat_id, attachments, thread_id=thread))
            return sent[0]

        if self._here(case, row):
            await self._in_topic(case, row.chat_id, send)
            return self._post(row, case.topic_id, sent)
        await send(None)
        return self._post(row, None, sent)

    async def close_topic(self, row: OutboxMessage) -> Sent:
        try:
            await self.bot.close_forum_topic(row.chat_id, CloseTopicPayload.of(row).topic_id)
        except TelegramBadRequest as exc:
            if "not modified" not in exc.message.lower() and "not found" not in exc.message.lower():
                raise
        return Sent(row.chat_id)

    async def delete_topic(self, row: OutboxMessage) -> Sent:
        try:
            await self.bot.delete_forum_topic(row.chat_id, DeleteTopicPayload.of(row).topic_id)
        except TelegramBadRequest as exc:
            if "not found" not in exc.message.lower():
                raise  # a topic deleted by hand is already gone
        return Sent(row.chat_id)

    async def card_blank(self, row: OutboxMessage) -> Sent:
        """A card of the case left in a group it was passed on from: its text becomes a short line
        (the resident erased their profile), without buttons."""
        payload = CardBlankPayload.of(row)
        await self._edit_or_log(
            row.chat_id, payload.message_id, self.texts.blanked(payload.number, payload.why)
        )
        return Sent(row.chat_id, payload.message_id)

    async def _edit_or_log(self, chat_id: int, message_id: int, text: str) -> bool:
        """Edit a message to `text` (no buttons); a message Telegram will not edit (gone, too old,
        the same already) is logged and left: there is nothing more the bot can do."""
        try:
            await self.bot.edit_message_text(text, chat_id=chat_id, message_id=message_id)
        except TelegramBadRequest as exc:
            if "not modified" not in exc.message.lower():
                log.warning(
                    "a message could not be blanked",
                    extra={"chat_id": chat_id, "message_id": message_id, "error": exc.message},
                )
            return False
        return True

    async def delete_messages(self, row: OutboxMessage) -> Sent:
        """The retention period ended, in a group without topics: each message of the case goes.
        Telegram lets a bot delete some messages only within 48 hours: a refusal (400) is logged and
        counts as done; a card it will not delete is blanked instead, so no personal data stays."""
        payload = DeleteMessagesPayload.of(row)
        cards = set(payload.cards)
        for message_id in payload.messages:
            try:
                await self.bot.delete_message(row.chat_id, message_id)
            except TelegramBadRequest as exc:
                if "not found" in exc.message.lower():
                    continue  # gone already (deleted by hand, or with its topic)
                log.warning(
                    "a message could not be deleted",
                    extra={"chat_id": row.chat_id, "message_id": message_id, "error": exc.message},
                )
                if message_id in cards:
                    await self._edit_or_log(
                        row.chat_id, message_id, self.texts.blanked(payload.number, "retention")
                    )
        return Sent(row.chat_id)

    # --- a group that moved ---

    async def migrated(self, old_chat_id: int, new_chat_id: int) -> None:
        """A team group became a supergroup: follow it (cases, unsent rows) and tell the clerks."""
        if not self.teams.follow(old_chat_id, new_chat_id):
            return
        async with self.database.write() as session:
            await follow_migration(session, old_chat_id, new_chat_id)
            # Topics and messages do not move with a basic group: cards are posted anew as cases change.
            await session.execute(
                update(Case)
                .where(col(Case.group_chat_id) == old_chat_id)
                .values(group_chat_id=new_chat_id, topic_id=None)
            )
        self.forum.pop(old_chat_id, None)
        log.error(
            "a team group moved: put the new id in the configuration",
            extra={"old": old_chat_id, "new": new_chat_id},
        )
        note = self.texts.notice(
            lambda: _(
                "This group became a supergroup with a new id. The bot follows it now; please put {chat_id} in the configuration instead of {old}."
            ).format(chat_id=new_chat_id, old=old_chat_id)
        )
        await self.bot.send_message(new_chat_id, note)


@dataclass(frozen=True)
class _Trace:
    kind: TraceKind
    topic_id: int | None
    message_id: int | None


def _recorded(
    case_id: int, chat_id: int, traces: list[_Trace], **values: Any
) -> Callable[[AsyncSession], Awaitable[None]]:
    """Remember where the case has been (its topics, cards and posts in this group, CaseTrace,
    whether it still lives here or not); and record a topic or card on the case (`values`), if
    the case is still in that group."""

    async def record(session: AsyncSession) -> None:
        for trace in traces:
            record_trace(
                session, case_id, trace.kind, chat_id, topic_id=trace.topic_id, message_id=trace.message_id
            )
        if values:
            await session.execute(
                update(Case)
                .where(col(Case.id) == case_id, col(Case.group_chat_id) == chat_id)
                .values(**values)
            )

    return record


def _topic_deleted(exc: TelegramBadRequest) -> bool:
    """Telegram's refusal of a message to a forum topic that no longer exists."""
    return "thread not found" in exc.message.lower()
