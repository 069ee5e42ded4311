"""The clerks' desk in the group given by ADMIN_CHAT_ID (texts in ADMIN_LOCALE).

Card buttons change a case (only what fits its status); a message in a case's topic, or a reply
to its card or to a relayed message, goes to the resident; `!text` and /note are internal notes.
Only updates from the clerks' group act on cases: anything else is refused and logged.
"""

from __future__ import annotations

import logging
from html import escape
from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject, Filter, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, ReactionTypeEmoji
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.config import Config
from bot.services import texts
from bot.services.clerk_desk import ACTION_LABELS, ClerkDesk, DeskAction, StaffChats
from bot.services.deadlines import WorkingCalendar
from bot.services.desk import ACTIONS, Clerk, DeskService, NotAllowed
from bot.services.notifications import ResidentNotifier
from bot.services.quality import parse_period
from bot.services.surveys import SurveyService
from bot.store.models import Case, EventKind, utcnow
from bot.store.residents import get_resident
from flows.common import answer_query, attachment_of, collect_album
from flows.feedback import ask_satisfaction

log = logging.getLogger(__name__)
router = Router(name="clerk")

TEXT_MIN, TEXT_MAX = 3, 3000
PER_PAGE = 10


class InClerksGroup(Filter):
    async def __call__(self, event: Message | CallbackQuery, chats: StaffChats) -> bool:
        message = event.message if isinstance(event, CallbackQuery) else event
        return message is not None and message.chat.id == chats.admin


class Pending(StatesGroup):
    text = State()  # a reason or the final answer, for the action in the data


class ExtendBy(CallbackData, prefix="dx"):
    case_id: int
    days: int


class DeskCancel(CallbackData, prefix="dc"):
    case_id: int


def _clerk(user: Any) -> Clerk:
    return Clerk(id=user.id, name=user.full_name)


# --- buttons -------------------------------------------------------------------------------


@router.callback_query(DeskAction.filter())
async def card_button(
    query: CallbackQuery,
    callback_data: DeskAction,
    chats: StaffChats,
    desk: DeskService,
    clerks: ClerkDesk,
    notifier: ResidentNotifier,
    surveys: SurveyService,
    state: FSMContext,
) -> None:
    if query.message is None or query.message.chat.id != chats.admin:
        log.warning("desk button pressed outside the clerks' group", extra={"user_id": query.from_user.id, "case_id": callback_data.case_id})
        await answer_query(query, _("Not allowed here."), alert=True)
        return
    case = await desk.get(callback_data.case_id)
    action = ACTIONS.get(callback_data.action)
    if case is None or action is None or case.status not in action.allowed_from:
        log.warning("desk action refused", extra={"user_id": query.from_user.id, "case_id": callback_data.case_id, "action": callback_data.action})
        await answer_query(query, _("This cannot be done with the case now."), alert=True)
        if case is not None and query.message.message_id == case.card_message_id and _stale(query.message, clerks.card_keyboard(case)):
            clerks.refresh_card(case)  # the card was out of date (two clerks at once)
        return
    if callback_data.action == "extend":
        left = desk.extension_left(case)
        if left <= 0:
            await answer_query(query, _("The deadline of this case cannot be extended any further."), alert=True)
            return
        await answer_query(query)
        await clerks.send(case, _("{number}: by how many working days? At most {max}.").format(number=case.number, max=left), reply_markup=_days_keyboard(case, left))
        return
    if action.needs_text:
        await answer_query(query)
        await state.set_state(Pending.text)
        await state.set_data({"case_id": case.id, "action": callback_data.action})
        await clerks.send(case, _prompt(callback_data.action, case), reply_markup=_cancel_keyboard(case))
        return
    await answer_query(query, str(ACTION_LABELS[callback_data.action]))
    await _apply(case.id, callback_data.action, _clerk(query.from_user), desk, clerks, notifier, surveys)


def _stale(card: Message, current: InlineKeyboardMarkup) -> bool:
    shown = card.reply_markup.model_dump(exclude_none=True) if card.reply_markup else {"inline_keyboard": []}
    return shown != current.model_dump(exclude_none=True)


def _days_keyboard(case: Case, left: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for days in sorted({d for d in (1, 5, 10, 15, 20) if d <= left} | {left}):
        builder.button(text=str(days), callback_data=ExtendBy(case_id=case.id, days=days))
    builder.button(text=_("✖ Cancel"), callback_data=DeskCancel(case_id=case.id))
    builder.adjust(6, 1)
    return builder.as_markup()


def _cancel_keyboard(case: Case) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("✖ Cancel"), callback_data=DeskCancel(case_id=case.id))
    return builder.as_markup()


def _prompt(action: str, case: Case) -> str:
    prompts = {
        "extend": _("{number}: write the reason for the extension. The resident will see it."),
        "answer": _("{number}: write the final answer. It goes to the resident, and the case is closed."),
        "redirect": _("{number}: write to which institution the case goes, and why. The resident will see it."),
        "reject": _("{number}: write why the case is rejected. The resident will see it."),
    }
    return prompts[action].format(number=case.number)


@router.callback_query(InClerksGroup(), ExtendBy.filter())
async def extend_days(query: CallbackQuery, callback_data: ExtendBy, state: FSMContext, desk: DeskService, clerks: ClerkDesk) -> None:
    case = await desk.get(callback_data.case_id)
    if case is None or not 1 <= callback_data.days <= desk.extension_left(case):
        await answer_query(query, _("This cannot be done with the case now."), alert=True)
        return
    await answer_query(query)
    await state.set_state(Pending.text)
    await state.set_data({"case_id": case.id, "action": "extend", "days": callback_data.days})
    await query.message.edit_text(_prompt("extend", case), reply_markup=_cancel_keyboard(case))


@router.callback_query(InClerksGroup(), DeskCancel.filter())
async def cancel_pending(query: CallbackQuery, state: FSMContext) -> None:
    await state.clear()
    await answer_query(query, _("Cancelled."))
    await query.message.edit_reply_markup(reply_markup=None)


@router.message(InClerksGroup(), StateFilter(Pending.text), F.text, ~F.text.startswith("/"))
async def pending_text(message: Message, state: FSMContext, desk: DeskService, clerks: ClerkDesk, notifier: ResidentNotifier, surveys: SurveyService) -> None:
    data = await state.get_data()
    text = message.text.strip()
    if not TEXT_MIN <= len(text) <= TEXT_MAX:
        await message.reply(_("Please write {min} to {max} characters.").format(min=TEXT_MIN, max=TEXT_MAX))
        return
    await state.clear()
    case = await desk.get(data["case_id"])
    clerk = _clerk(message.from_user)
    if data["action"] == "answer" and case is not None:
        delivered = await _relay(case, [message], clerk, desk, clerks, notifier)
        if not delivered:
            return  # not closed: the resident did not get the answer
        text = None
    await _apply(data["case_id"], data["action"], clerk, desk, clerks, notifier, surveys, text=text, days=data.get("days"))


async def _apply(
    case_id: int, action: str, clerk: Clerk, desk: DeskService, clerks: ClerkDesk, notifier: ResidentNotifier, surveys: SurveyService,
    text: str | None = None, days: int | None = None,
) -> None:  # fmt: skip
    try:
        case, event = await desk.act(case_id, action, clerk, text=text, days=days)
    except NotAllowed:
        case = await desk.get(case_id)
        if case is not None:
            await clerks.send(case, _("This cannot be done with the case now."))
            clerks.refresh_card(case)
        return
    clerks.refresh_card(case)
    if await notifier.case_changed(case, event) is None:
        await clerks.send(case, _("⚠️ The resident was not told: they have blocked the bot."))
        return
    await ask_satisfaction(case, surveys, notifier)


# --- conversation --------------------------------------------------------------------------


async def _case_of(message: Message, desk: DeskService) -> Case | None:
    if message.message_thread_id and message.is_topic_message:
        case = await desk.by_topic(message.message_thread_id)
        if case is not None:
            return case
    if message.reply_to_message and not (message.reply_to_message.forum_topic_created):
        return await desk.by_group_message(message.reply_to_message.message_id)
    return None


async def _relay(case: Case, messages: list[Message], clerk: Clerk, desk: DeskService, clerks: ClerkDesk, notifier: ResidentNotifier) -> bool:
    first = messages[0]
    delivered = await notifier.relay(case, messages)
    if delivered is None:
        await clerks.send(case, _("⚠️ Not delivered: the resident has blocked the bot."))
        return False
    files = tuple(attachment_of(m) for m in messages if m.photo or m.document)
    text = first.text or first.caption
    await desk.record(case, EventKind.MESSAGE_OUT, clerk, text, files, group_message_id=first.message_id, resident_message_id=delivered[0])
    try:
        await first.react([ReactionTypeEmoji(emoji="👍")])
    except Exception:  # a reaction is a courtesy; the delivery is recorded
        log.debug("could not react to a relayed message")
    return True


@router.message(InClerksGroup(), F.text.startswith("!"))
@router.message(InClerksGroup(), Command("note"))
async def note(message: Message, desk: DeskService, clerks: ClerkDesk) -> None:
    case = await _case_of(message, desk)
    if case is None:
        await message.reply(_("Write notes in a case's topic, or as a reply to its card."))
        return
    text = message.text.removeprefix("!").removeprefix("/note").strip()
    if not text:
        await message.reply(_("The note is empty."))
        return
    await desk.record(case, EventKind.NOTE, _clerk(message.from_user), text, group_message_id=message.message_id)
    try:
        await message.react([ReactionTypeEmoji(emoji="✍")])
    except Exception:
        log.debug("could not react to a note")


@router.message(InClerksGroup(), ~F.text.startswith("/"), F.text | F.photo | F.document)
async def clerk_message(message: Message, bot: Bot, desk: DeskService, clerks: ClerkDesk, notifier: ResidentNotifier) -> None:
    case = await _case_of(message, desk)
    if case is None:
        return  # the clerks talking among themselves
    clerk = _clerk(message.from_user)
    if message.media_group_id:
        collect_album(message, lambda album: _relay(case, album, clerk, desk, clerks, notifier))
        return
    await _relay(case, [message], clerk, desk, clerks, notifier)


# --- overview ------------------------------------------------------------------------------


def _line(case: Case, calendar: WorkingCalendar) -> str:
    today = calendar.local_date(utcnow())
    left = calendar.working_days_left(today, case.due)
    who = escape(case.assignee_name) if case.assignee_name else _("nobody")
    return f"{texts.KIND_ICONS.get(case.kind, '')} <b>{case.number}</b> · {texts.status_label(case.status)} · {texts.day(case.due)} ({texts.days_left(today, case.due, left)}) · {who}"


def _listing(title: str, cases: list[Case], calendar: WorkingCalendar) -> str:
    if not cases:
        return title + "\n" + _("No cases.")
    lines = [title, *(_line(c, calendar) for c in cases[:50])]
    if len(cases) > 50:
        lines.append(_("… and {count} more.").format(count=len(cases) - 50))
    return "\n".join(lines)


class OpenPage(CallbackData, prefix="op"):
    page: int


async def _open_page(page: int, desk: DeskService, calendar: WorkingCalendar) -> tuple[str, InlineKeyboardMarkup | None]:
    cases = await desk.open_cases()
    pages = max(1, -(-len(cases) // PER_PAGE))
    page = min(max(page, 0), pages - 1)
    title = _("<b>Open cases</b>, nearest deadline first:") + (f" {page + 1}/{pages}" if pages > 1 else "")
    text = _listing(title, cases[page * PER_PAGE : (page + 1) * PER_PAGE], calendar)
    builder = InlineKeyboardBuilder()
    for label, target in (("◀", page - 1), ("▶", page + 1)):
        if 0 <= target < pages:
            builder.button(text=f"{label} {target + 1}/{pages}", callback_data=OpenPage(page=target))
    return text, builder.as_markup() if pages > 1 else None


@router.message(InClerksGroup(), Command("open"))
async def open_cases(message: Message, desk: DeskService, calendar: WorkingCalendar) -> None:
    text, keyboard = await _open_page(0, desk, calendar)
    await message.reply(text, reply_markup=keyboard)


@router.callback_query(InClerksGroup(), OpenPage.filter())
async def open_cases_page(query: CallbackQuery, callback_data: OpenPage, desk: DeskService, calendar: WorkingCalendar) -> None:
    await answer_query(query)
    text, keyboard = await _open_page(callback_data.page, desk, calendar)
    await query.message.edit_text(text, reply_markup=keyboard)


@router.message(InClerksGroup(), Command("overdue"))
async def overdue_cases(message: Message, desk: DeskService, calendar: WorkingCalendar) -> None:
    _, overdue = await desk.due_soon_and_overdue(calendar.local_date(utcnow()))
    await message.reply(_listing(_("<b>Overdue cases</b>:"), overdue, calendar))


@router.message(InClerksGroup(), Command("mine"))
async def my_cases(message: Message, desk: DeskService, calendar: WorkingCalendar) -> None:
    await message.reply(_listing(_("<b>Your open cases</b>:"), await desk.open_cases(assignee_id=message.from_user.id), calendar))


async def _named_case(message: Message, command: CommandObject, desk: DeskService) -> Case | None:
    if command.args:
        return await desk.by_number(command.args.strip().upper())
    return await _case_of(message, desk)


@router.message(InClerksGroup(), Command("case"))
async def show_case(message: Message, command: CommandObject, desk: DeskService, clerks: ClerkDesk) -> None:
    case = await _named_case(message, command, desk)
    if case is None:
        await message.reply(_("No such case. Usage: /case VRS-2026-000042"))
        return
    resident = await get_resident(desk.database, case.resident_id)
    text = clerks.render_card(case, resident)
    if case.topic_id:
        text += "\n\n" + _("Topic: {link}").format(link=f"https://t.me/c/{str(message.chat.id).removeprefix('-100')}/{case.topic_id}")
    await message.reply(text, reply_markup=clerks.card_keyboard(case))


@router.message(InClerksGroup(), Command("history"))
async def history(message: Message, command: CommandObject, desk: DeskService, calendar: WorkingCalendar) -> None:
    case = await _named_case(message, command, desk)
    if case is None:
        await message.reply(_("No such case. Usage: /history VRS-2026-000042"))
        return
    lines = [_("<b>History of {number}</b>").format(number=case.number)]
    for event in await desk.history(case.id):
        when = event.at.astimezone(calendar.tz).strftime("%Y-%m-%d %H:%M")
        who = escape(event.actor_name) if event.actor_name else (_("resident") if event.actor_id == case.resident_id else _("system"))
        detail = _event_detail(event)
        lines.append(f"{when} · {who} · {detail}")
    text = "\n".join(lines)
    await message.reply(text if len(text) <= 4000 else text[:3990] + "…")


def _event_detail(event: Any) -> str:
    snippet = escape((event.text or "")[:300])
    if event.kind == EventKind.CREATED:
        return _("case received")
    if event.kind == EventKind.STATUS:
        return _("status: {status}").format(status=texts.status_label(event.data["to"])) + (f" ({snippet})" if snippet else "")
    if event.kind == EventKind.EXTENDED:
        return _("deadline extended to {date}").format(date=(event.data or {}).get("until", "?")) + f" ({snippet})"
    if event.kind == EventKind.MESSAGE_IN:
        return _("from the resident: {text}").format(text=snippet or _("(files)"))
    if event.kind == EventKind.MESSAGE_OUT:
        return _("to the resident: {text}").format(text=snippet or _("(files)"))
    if event.kind == EventKind.NOTE:
        return _("note: {text}").format(text=snippet)
    return _("reminder sent")


# --- canned answers ------------------------------------------------------------------------


class UseTemplate(CallbackData, prefix="tp"):
    case_id: int
    template: str
    send: bool = False


@router.message(InClerksGroup(), Command("templates"))
async def templates(message: Message, desk: DeskService, config: Config) -> None:
    case = await _case_of(message, desk)
    if case is None:
        await message.reply(_("Use /templates in a case's topic, or as a reply to its card."))
        return
    fitting = [t for t in config.municipality.templates if t.fits(case.kind, case.status)]
    if not fitting:
        await message.reply(_("No canned answer fits this case."))
        return
    builder = InlineKeyboardBuilder()
    for template in fitting:
        builder.button(text=template.title.get(config.settings.admin_locale), callback_data=UseTemplate(case_id=case.id, template=template.id))
    builder.button(text=_("✖ Cancel"), callback_data=DeskCancel(case_id=case.id))
    builder.adjust(1)
    await message.reply(_("Canned answers for {number}: choose one to see it as the resident will.").format(number=case.number), reply_markup=builder.as_markup())


@router.callback_query(InClerksGroup(), UseTemplate.filter())
async def use_template(
    query: CallbackQuery, callback_data: UseTemplate, desk: DeskService, config: Config, notifier: ResidentNotifier, clerks: ClerkDesk
) -> None:
    case = await desk.get(callback_data.case_id)
    template = next((t for t in config.municipality.templates if t.id == callback_data.template), None)
    if case is None or template is None:
        await answer_query(query, _("This cannot be done with the case now."), alert=True)
        return
    locale = await notifier.locale_of(case.resident_id)
    text = template.text.get(locale)
    if not callback_data.send:
        await answer_query(query)
        builder = InlineKeyboardBuilder()
        builder.button(text=_("📨 Send to the resident"), callback_data=UseTemplate(case_id=case.id, template=template.id, send=True))
        builder.button(text=_("✖ Cancel"), callback_data=DeskCancel(case_id=case.id))
        builder.adjust(1)
        preview = _("Preview ({language}):").format(language=locale) + "\n\n" + escape(text)
        await query.message.edit_text(preview, reply_markup=builder.as_markup())
        return
    event = await desk.record(case, EventKind.MESSAGE_OUT, _clerk(query.from_user), text, group_message_id=query.message.message_id)
    if await notifier.case_changed(case, event) is None:
        await answer_query(query, _("⚠️ Not delivered: the resident has blocked the bot."), alert=True)
        return
    await answer_query(query, _("Sent."))
    await query.message.edit_text(_("Sent to the resident:") + "\n\n" + escape(text))


@router.message(InClerksGroup(), Command("help"))
async def clerk_help(message: Message, config: Config) -> None:
    await message.reply(
        _(
            "<b>Case desk</b>\n"
            "Each new case opens a topic with its card. Use the card's buttons to take, extend, answer, redirect, reject or reopen it.\n"
            "Anything you write in a case's topic (or as a reply to its card) goes to the resident; 👍 shows it was delivered.\n"
            "Start a message with ! (or use /note) for an internal note the resident never sees.\n\n"
            "/open: open cases, nearest deadline first\n"
            "/overdue: overdue cases\n"
            "/mine: cases assigned to you\n"
            "/case NUMBER: a case's card\n"
            "/history NUMBER: everything that happened to a case\n"
            "/templates: canned answers for the case of this topic\n"
            "/digest: the daily digest, now\n"
            "/report [period]: the quality report (period: 30d, 2026-10, 2026-Q4, 2026 or 2026-10-01..2026-12-31; the last 30 days if left out)"
        )
    )


@router.message(InClerksGroup(), Command("digest"))
async def digest_now(message: Message, clerks: ClerkDesk, calendar: WorkingCalendar) -> None:
    await clerks.digest(calendar.local_date(utcnow()))


@router.message(InClerksGroup(), Command("report"))
async def quality_report(message: Message, command: CommandObject, clerks: ClerkDesk, calendar: WorkingCalendar) -> None:
    try:
        period = parse_period(command.args, calendar.local_date(utcnow()))
    except ValueError:
        await message.reply(
            _("Usage: /report, /report 7d, /report 2026-10, /report 2026-Q4, /report 2026 or /report 2026-10-01..2026-12-31 (the last 30 days if left out).")
        )
        return
    await clerks.post_report(period, thread_id=message.message_thread_id if message.is_topic_message else None)
