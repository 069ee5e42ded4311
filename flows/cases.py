"""Following one's cases: the list, one case with its history and answers, look-up by number,
adding information, reopening. A resident only ever sees their own cases."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import date
from html import escape
from typing import Any

from aiogram import F, Router
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.enums import ChatType
from aiogram.filters import Command, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, TelegramObject
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.config import Config
from bot.keyboards import InlineKeyboardBuilder
from bot.services import texts
from bot.services.case_commands import AlreadyAdded, CaseCommands, FileQuotaReached, NotAllowed
from bot.services.case_queries import CaseQueries
from bot.services.cases import CASE_NUMBER, AttachmentDraft, parse_case_number, visible_text
from bot.services.deadlines import WorkingCalendar
from bot.services.html_text import truncate_html, visible_length
from bot.services.metoo import MeToo
from bot.services.numbers import Page, RowId
from bot.store.models import CLOSED_STATUSES, Case, CaseEvent, EventKind, Resident, utcnow
from flows.common import (
    MENU_MY_CASES,
    Onboarded,
    UnderAccessibleMessage,
    acknowledge_later,
    attachment_of,
    cancel_acknowledgement,
    files_refused_text,
    is_navigation,
    main_menu,
    onboarded,
    shown,
    stale_button,
    too_big_text,
    too_big_to_keep,
)
from flows.visits import VisitSurvey

router = Router(name="cases")
router.callback_query.filter(UnderAccessibleMessage())
router.message.filter(F.chat.type == ChatType.PRIVATE)
router.callback_query.filter(F.message.chat.type == ChatType.PRIVATE)

# What a resident writes that no question asked for: to their case (flows.__init__ puts this
# router last but one, so that every other flow has had its chance; the fallback comes after).
unprompted = Router(name="cases-unprompted")
unprompted.callback_query.filter(UnderAccessibleMessage())
unprompted.message.filter(F.chat.type == ChatType.PRIVATE)
unprompted.callback_query.filter(F.message.chat.type == ChatType.PRIVATE)

PER_PAGE = 5
REASON_MIN, REASON_MAX = 3, 1000
ADDED_MAX = 3000  # characters of one message added to a case


class Follow(CallbackData, prefix="cs"):
    action: str  # page | open | add | add_done | reopen
    case_id: RowId = 0
    page: Page = 0


class AddInformation(StatesGroup):
    collecting = State()


class Reopen(StatesGroup):
    reason = State()


class Unsorted(StatesGroup):
    choosing = State()  # which of several open cases what the resident wrote is about


# The main menu stays on screen meanwhile (a visit survey's proposal: for those who have it).
_PROMPTS = {
    AddInformation.collecting.state,
    Reopen.reason.state,
    Unsorted.choosing.state,
    VisitSurvey.proposal.state,
}


async def navigation_leaves_the_prompt(
    handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
    event: TelegramObject,
    data: dict[str, Any],
) -> Any:
    """A command or a main-menu button while a prompt of this flow waits (the reason to reopen,
    what to add to a case) is where the resident goes, never the answer: "📰 News" reopened the
    case with itself as the reason, or went to the clerks as added information. The prompt is
    left, and the message goes where it always goes (the news, the list of cases, /help).

    A message outer middleware of the dispatcher (bot.app), so that it runs before every flow's
    router, also those before this one; /cancel is left to its handler, which says what it ended."""
    if (
        isinstance(event, Message)
        and data.get("raw_state") in _PROMPTS
        and is_navigation(event.text)
        and not event.text.startswith("/cancel")
    ):
        cancel_acknowledgement(event.chat.id)  # no "added to case…" after leaving
        await data["state"].clear()
        data["raw_state"] = None
    return await handler(event, data)


# --- the list ------------------------------------------------------------------------------


async def _list(
    resident: Resident, page: int, queries: CaseQueries, calendar: WorkingCalendar, metoo: MeToo
) -> tuple[str, InlineKeyboardMarkup | None]:
    text, keyboard = await _own(resident, page, queries, calendar)
    followed = await metoo.followed(resident.id) if page == 0 else []
    if followed:  # someone else's reports ("me too"): their status only, never their trail
        lines = ["", _("<b>Cases you follow</b> (reported by someone else):")]
        lines += [f"👥 <b>{item.number}</b> · {texts.status_label(item.status)}" for item in followed]
        text = (text if keyboard is not None else "") + "\n".join(lines)
    return text.strip(), keyboard


async def _own(
    resident: Resident, page: int, queries: CaseQueries, calendar: WorkingCalendar
) -> tuple[str, InlineKeyboardMarkup | None]:
    rows, total = await queries.page_for_resident(resident.id, page, PER_PAGE)
    if total == 0:
        return _("You have no cases yet. To submit one, press “📝 New case”."), None
    pages = -(-total // PER_PAGE)
    if not rows:  # a page beyond the end (an old button, or a hand-made one): the last page
        page = pages - 1
        rows, total = await queries.page_for_resident(resident.id, page, PER_PAGE)
    lines = [_("<b>Your cases</b> ({count}), newest first:").format(count=total), ""]
    builder = InlineKeyboardBuilder()
    for case in rows:
        lines.append(
            f"{texts.KIND_ICONS.get(case.kind, '')} <b>{case.number}</b> · {texts.status_label(case.status)}"
        )
        if case.status not in CLOSED_STATUSES:
            lines.append("    " + _("answer due by {date}").format(date=texts.day(case.due)))
        builder.button(text=case.number, callback_data=Follow(action="open", case_id=case.id, page=page))
    sizes = [1] * len(rows)
    navigation = [
        (label, target) for label, target in (("◀", page - 1), ("▶", page + 1)) if 0 <= target < pages
    ]
    for label, target in navigation:
        builder.button(text=f"{label} {target + 1}/{pages}", callback_data=Follow(action="page", page=target))
    builder.adjust(*sizes, len(navigation) or 1)
    return "\n".join(lines), builder.as_markup()


@router.message(Command("cases"), Onboarded())
@router.message(F.text == MENU_MY_CASES, Onboarded())
async def my_cases(
    message: Message,
    state: FSMContext,
    resident: Resident,
    queries: CaseQueries,
    calendar: WorkingCalendar,
    metoo: MeToo,
) -> None:
    await state.clear()
    text, keyboard = await _list(resident, 0, queries, calendar, metoo)
    await message.answer(text, reply_markup=keyboard)


@router.callback_query(Follow.filter(F.action == "page"), Onboarded())
async def list_page(
    query: CallbackQuery,
    callback_data: Follow,
    resident: Resident,
    queries: CaseQueries,
    calendar: WorkingCalendar,
    metoo: MeToo,
) -> None:
    await query.answer()
    text, keyboard = await _list(resident, callback_data.page, queries, calendar, metoo)
    await shown(query).edit_text(text, reply_markup=keyboard)  # a page beyond the end shows the last one


# --- one case ------------------------------------------------------------------------------


def _event_line(event: CaseEvent) -> str | None:
    when = texts.day(event.at.date())
    if event.kind == EventKind.CREATED:
        return f"{when}: {texts.status_label('new')}"
    if event.kind == EventKind.STATUS and event.data:
        line = f"{when}: {texts.status_label(event.data['to'])}"
        return line + (f" ({escape(event.text[:200])})" if event.text else "")
    if event.kind == EventKind.EXTENDED:
        until = (event.data or {})["until"]
        return (
            f"{when}: "
            + _("deadline extended to {date}").format(date=texts.day(date.fromisoformat(until)))
            + (f" ({escape(event.text[:200])})" if event.text else "")
        )
    return None


def _details(
    case: Case, events: list[CaseEvent], config: Config, calendar: WorkingCalendar, locale: str
) -> str:
    municipality = config.municipality
    eldership = municipality.eldership_by_id.get(case.eldership_id or "")
    today = calendar.local_date(utcnow())
    lines = [
        f"{texts.KIND_ICONS.get(case.kind, '')} <b>{case.number}</b> · {texts.kind_label(case.kind)}",
        escape(municipality.category_by_id[case.category_id].get(locale))
        + " · "
        + (escape(eldership.get(locale)) if eldership else _("whole district / not sure")),
        _("Status: {status}").format(status=texts.status_label(case.status)),
        _("Received: {date}").format(date=texts.day(calendar.local_date(case.received_at))),
    ]
    if case.status in CLOSED_STATUSES:
        if case.closed_at:
            lines.append(_("Closed: {date}").format(date=texts.day(calendar.local_date(case.closed_at))))
    else:
        left = calendar.working_days_left(today, case.due)
        lines.append(
            _("Answer due by: <b>{date}</b> ({left})").format(
                date=texts.day(case.due), left=texts.days_left(today, case.due, left)
            )
        )
        if case.extended_until:
            lines.append(
                _("The deadline was extended: {reason}").format(reason=escape(case.extension_reason or ""))
            )
    history = [line for line in map(_event_line, events) if line]
    lines += ["", _("<b>History</b>"), *("• " + line for line in history)]
    answers = [e for e in events if e.kind == EventKind.MESSAGE_OUT and e.text]
    if answers:
        lines += ["", _("<b>Answers</b>")]
        budget = 3000 - visible_length("\n".join(lines))  # well within a message, whatever the answers
        for event in answers:
            if budget <= 1:
                break
            text = truncate_html(f"• {texts.day(event.at.date())}: {escape(event.text or '')}", budget)
            lines.append(text)
            budget -= visible_length(text) + 1
    return "\n".join(lines)


def _case_keyboard(case: Case, commands: CaseCommands, page: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    if case.status not in CLOSED_STATUSES:
        builder.button(text=_("➕ Add information"), callback_data=Follow(action="add", case_id=case.id))
    elif commands.resident_may_reopen(case, utcnow()):
        builder.button(text=_("↩️ Reopen the case"), callback_data=Follow(action="reopen", case_id=case.id))
    builder.button(text=_("⬅️ My cases"), callback_data=Follow(action="page", page=page))
    builder.adjust(1)
    return builder.as_markup()


async def _show_case(
    case: Case,
    queries: CaseQueries,
    commands: CaseCommands,
    config: Config,
    calendar: WorkingCalendar,
    i18n: I18n,
    page: int = 0,
) -> tuple[str, InlineKeyboardMarkup]:
    events = await queries.history(case.id)
    return _details(case, events, config, calendar, i18n.current_locale), _case_keyboard(case, commands, page)


@router.callback_query(Follow.filter(F.action == "open"))
async def open_case(
    query: CallbackQuery,
    callback_data: Follow,
    resident: Resident | None,
    queries: CaseQueries,
    commands: CaseCommands,
    config: Config,
    calendar: WorkingCalendar,
    i18n: I18n,
) -> None:
    case = await queries.own_case(resident.id, case_id=callback_data.case_id) if onboarded(resident) else None
    if case is None:
        await query.answer(_("Case not found."), show_alert=True)
        return
    await query.answer()
    text, keyboard = await _show_case(case, queries, commands, config, calendar, i18n, callback_data.page)
    await shown(query).edit_text(text, reply_markup=keyboard)


@router.message(StateFilter(None), F.text.regexp(CASE_NUMBER))
async def look_up(
    message: Message,
    resident: Resident | None,
    queries: CaseQueries,
    commands: CaseCommands,
    config: Config,
    calendar: WorkingCalendar,
    i18n: I18n,
) -> None:
    """A typed case number: shown only if it is the resident's, else the same "not found"."""
    number = parse_case_number(message.text or "")
    assert number is not None, "the filter matched it"
    case = await queries.own_case(resident.id, number=number) if onboarded(resident) else None
    if case is None:
        await message.answer(_("Case {number} was not found among your cases.").format(number=escape(number)))
        return
    text, keyboard = await _show_case(case, queries, commands, config, calendar, i18n)
    await message.answer(text, reply_markup=keyboard)


# --- adding information --------------------------------------------------------------------


def _too_long(text: str) -> str:
    return _(
        "This is {count} character long; the limit is {max}. Please split it into shorter messages.",
        "This is {count} characters long; the limit is {max}. Please split it into shorter messages.",
        len(text),
    ).format(count=len(text), max=ADDED_MAX)


def _done_keyboard(case_id: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("✅ Done"), callback_data=Follow(action="add_done", case_id=case_id))
    return builder.as_markup()


@router.callback_query(Follow.filter(F.action == "add"))
async def add_information(
    query: CallbackQuery,
    callback_data: Follow,
    state: FSMContext,
    resident: Resident | None,
    queries: CaseQueries,
    commands: CaseCommands,
) -> None:
    found = (
        await queries.own_case(resident.id, case_id=callback_data.case_id) if onboarded(resident) else None
    )
    try:
        case = commands.check_add_information(found, resident.id if resident else 0)
    except NotAllowed:
        await query.answer(_("This case is closed; information can no longer be added."), show_alert=True)
        return
    await state.set_state(AddInformation.collecting)
    await state.set_data({"case_id": case.id})
    await query.answer()
    await shown(query).answer(
        _(
            "Send what you would like to add to case {number}: text, photos or documents. Press “Done” when finished."
        ).format(number=case.number),
        reply_markup=_done_keyboard(case.id),
    )


@router.message(StateFilter(AddInformation.collecting), F.text | F.photo | F.document)
async def information_given(
    message: Message, state: FSMContext, resident: Resident, queries: CaseQueries, commands: CaseCommands
) -> None:
    case = await queries.own_case(resident.id, case_id=(await state.get_data()).get("case_id"))
    if case is None:
        await state.clear()
        await message.answer(
            _("This case is closed; information can no longer be added."), reply_markup=main_menu()
        )
        return
    if too_big_to_keep(message):
        await message.answer(too_big_text(), reply_markup=_done_keyboard(case.id))
        return
    files = (attachment_of(message),) if message.photo or message.document else ()
    typed = (message.text or message.caption or "").strip()
    text = typed if visible_text(typed) else None
    if text is None and not files:  # only spaces or zero-width characters
        await information_unexpected(message, state)
        return
    if text and len(text) > ADDED_MAX:
        await message.answer(_too_long(text))
        return
    try:
        await commands.add_information(
            case.id, resident.id, text, files, resident_message_id=message.message_id
        )
    except (FileQuotaReached, AlreadyAdded) as refused:
        await message.answer(files_refused_text(refused), reply_markup=_done_keyboard(case.id))
        return
    except NotAllowed:  # closed in the meantime
        await state.clear()
        await message.answer(
            _("This case is closed; information can no longer be added."), reply_markup=main_menu()
        )
        return
    text = _("Added to case {number}. Send more, or press “Done”.").format(number=case.number)
    keyboard = _done_keyboard(case.id)
    acknowledge_later(message.chat.id, lambda: message.answer(text, reply_markup=keyboard))


@router.message(StateFilter(AddInformation.collecting))
async def information_unexpected(message: Message, state: FSMContext) -> None:
    case_id = (await state.get_data()).get("case_id", 0)
    await message.answer(
        _("We can add text, photos and documents only. Press “Done” when finished."),
        reply_markup=_done_keyboard(case_id),
    )


@router.callback_query(Follow.filter(F.action == "add_done"))
async def information_done(
    query: CallbackQuery,
    callback_data: Follow,
    state: FSMContext,
    resident: Resident | None,
    commands: CaseCommands,
) -> None:
    cancel_acknowledgement(shown(query).chat.id)
    if await state.get_state() == AddInformation.collecting.state:
        await state.clear()
    if resident is not None:
        await commands.send_information_now(callback_data.case_id, resident.id)  # "Done": no waiting for more
    await query.answer()
    await shown(query).answer(
        _("Thank you. The clerk handling your case will see it."), reply_markup=main_menu()
    )


# --- reopening -----------------------------------------------------------------------------


@router.callback_query(Follow.filter(F.action == "reopen"))
async def ask_reopen_reason(
    query: CallbackQuery,
    callback_data: Follow,
    state: FSMContext,
    resident: Resident | None,
    queries: CaseQueries,
    commands: CaseCommands,
    config: Config,
) -> None:
    found = (
        await queries.own_case(resident.id, case_id=callback_data.case_id) if onboarded(resident) else None
    )
    try:
        case = commands.check_reopen_by_resident(found, resident.id if resident else 0, utcnow())
    except NotAllowed:
        await query.answer(
            _(
                "A case can be reopened within {days} day of closing.",
                "A case can be reopened within {days} days of closing.",
                config.settings.reopen_days,
            ).format(days=config.settings.reopen_days),
            show_alert=True,
        )
        return
    await state.set_state(Reopen.reason)
    await state.set_data({"case_id": case.id})
    await query.answer()
    await shown(query).answer(
        _("Why should case {number} be reopened? Please write the reason in one message.").format(
            number=case.number
        )
    )


@router.message(StateFilter(Reopen.reason), F.text)
async def reopen(
    message: Message, state: FSMContext, resident: Resident, commands: CaseCommands, config: Config
) -> None:
    reason = message.text.strip()
    if len(visible_text(reason)) < REASON_MIN or len(reason) > REASON_MAX:
        await message.answer(
            _(
                "Please write the reason in {min} to {max} character.",
                "Please write the reason in {min} to {max} characters.",
                REASON_MAX,
            ).format(min=REASON_MIN, max=REASON_MAX)
        )
        return
    case_id = (await state.get_data()).get("case_id", 0)
    await state.clear()
    try:
        reopened = await commands.reopen_by_resident(case_id, resident.id, reason)
    except NotAllowed:
        await message.answer(
            _(
                "A case can be reopened within {days} day of closing.",
                "A case can be reopened within {days} days of closing.",
                config.settings.reopen_days,
            ).format(days=config.settings.reopen_days),
            reply_markup=main_menu(),
        )
        return
    await message.answer(
        _("Case {number} has been reopened. A clerk will look at it again.").format(number=reopened.number),
        reply_markup=main_menu(),
    )


@router.message(StateFilter(Reopen.reason))
async def reason_expected(message: Message) -> None:
    await message.answer(_("Please write the reason as text, or send /cancel."))


# --- what a resident writes unasked --------------------------------------------------------

CHOICES = 8  # open cases offered to choose from, newest first


class Sort(CallbackData, prefix="cu"):
    case_id: RowId = 0  # 0: send it nowhere


def _unsorted_item(message: Message) -> dict[str, Any]:
    """One message waiting for the resident to say which case it is about (in the FSM data, as JSON)."""
    typed = (message.text or message.caption or "").strip()
    files = attachment_of(message) if message.photo or message.document else None
    return {
        "text": typed if visible_text(typed) else None,
        "file": asdict(files) if files else None,
        "message_id": message.message_id,
    }


def _choice_keyboard(open_cases: list[Case], config: Config, locale: str) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for case in open_cases[:CHOICES]:
        category = config.municipality.category_by_id[case.category_id].get(locale)
        builder.button(
            text=f"{texts.KIND_ICONS.get(case.kind, '')} {case.number} · {category}"[:64],
            callback_data=Sort(case_id=case.id),
        )
    builder.button(text=_("✖️ Do not send"), callback_data=Sort())
    builder.adjust(1)
    return builder.as_markup()


@unprompted.message(
    StateFilter(None, Unsorted.choosing), F.text | F.photo | F.document, ~F.text.startswith("/")
)
async def written_unasked(
    message: Message,
    state: FSMContext,
    resident: Resident | None,
    queries: CaseQueries,
    commands: CaseCommands,
    config: Config,
    i18n: I18n,
) -> None:
    """Text or files nobody asked for go to the resident's case: the case of the message they reply
    to, their only open case, or the one they choose with one tap; with none open, the offer to
    start one. The resident is told where it went, or that it went nowhere."""
    item = _unsorted_item(message)
    if not onboarded(resident) or (item["text"] is None and item["file"] is None):
        raise SkipHandler  # the fallback answers: /start first, or what was not understood
    if too_big_to_keep(message):
        await message.answer(too_big_text(), reply_markup=main_menu())
        return
    if item["text"] and len(item["text"]) > ADDED_MAX:
        await message.answer(_too_long(item["text"]))
        return
    choosing = await state.get_state() == Unsorted.choosing.state
    case = (
        await queries.case_of_message(resident.id, message.reply_to_message.message_id)
        if message.reply_to_message
        else None
    )
    if case is not None and case.status in CLOSED_STATUSES:
        await message.answer(_closed_text(case, commands), reply_markup=main_menu())
        return
    open_cases = await queries.resident_open_cases(resident.id)
    if case is None and not choosing and len(open_cases) == 1:
        case = open_cases[0]
    if case is not None:
        await _add_unasked(message, resident, case, item, commands, only=message.reply_to_message is None)
        return
    if not open_cases:
        await state.clear()
        await message.answer(
            _(
                "You have no case being handled, so this message was not sent to anyone. To submit it as a new case, press “📝 New case”."
            ),
            reply_markup=main_menu(),
        )
        return
    waiting = (await state.get_data()).get("unsorted", []) if choosing else []
    await state.set_state(Unsorted.choosing)
    await state.set_data({"unsorted": [*waiting, item]})
    question = _("Which of your cases is this about? It is sent to the clerks once you choose.")
    keyboard = _choice_keyboard(open_cases, config, i18n.current_locale)
    acknowledge_later(
        message.chat.id, lambda: message.answer(question, reply_markup=keyboard)
    )  # once for an album, or a burst


def _closed_text(case: Case, commands: CaseCommands) -> str:
    closed = _("Case {number} is closed, so this message was not sent.").format(number=case.number)
    if commands.resident_may_reopen(case, utcnow()):
        return closed + " " + _("If the matter is not settled, you can reopen it under “📂 My cases”.")
    return closed + " " + _("To write about it again, please submit a new case.")


async def _add_unasked(
    message: Message,
    resident: Resident,
    case: Case,
    item: dict[str, Any],
    commands: CaseCommands,
    *,
    only: bool,
) -> None:
    files = (AttachmentDraft(**item["file"]),) if item["file"] else ()
    try:
        await commands.add_information(
            case.id, resident.id, item["text"], files, resident_message_id=item["message_id"]
        )
    except NotAllowed:  # closed in the meantime
        await message.answer(
            _("This case is closed; information can no longer be added."), reply_markup=main_menu()
        )
        return
    if only:
        text = _(
            "Added to your case {number}, which is being handled; the clerk handling it will see it. To submit a new case instead, press “📝 New case”."
        )
    else:
        text = _("Added to case {number}; the clerk handling it will see it.")
    text, keyboard = text.format(number=case.number), main_menu()
    acknowledge_later(message.chat.id, lambda: message.answer(text, reply_markup=keyboard))


@unprompted.callback_query(Sort.filter())
async def case_chosen(
    query: CallbackQuery,
    callback_data: Sort,
    state: FSMContext,
    resident: Resident | None,
    queries: CaseQueries,
    commands: CaseCommands,
) -> None:
    waiting: list[dict[str, Any]] = (
        (await state.get_data()).get("unsorted", [])
        if await state.get_state() == Unsorted.choosing.state
        else []
    )
    if not waiting or not onboarded(resident):
        await stale_button(query)
        await _drop_choice(query)
        return
    if callback_data.case_id == 0:
        await state.clear()
        await query.answer()
        await shown(query).edit_text(_("Not sent."))
        return
    try:
        case = commands.check_add_information(
            await queries.own_case(resident.id, case_id=callback_data.case_id), resident.id
        )
    except NotAllowed:  # the choice stays: another case may be chosen
        await query.answer(_("This case is closed; information can no longer be added."), show_alert=True)
        return
    await state.clear()
    try:
        for item in waiting:
            files = (AttachmentDraft(**item["file"]),) if item["file"] else ()
            await commands.add_information(
                case.id, resident.id, item["text"], files, resident_message_id=item["message_id"]
            )
    except NotAllowed:
        await query.answer(_("This case is closed; information can no longer be added."), show_alert=True)
        return
    await commands.send_information_now(
        case.id, resident.id
    )  # the resident has waited for the choice already
    await query.answer()
    await shown(query).edit_text(
        _("Added to case {number}; the clerk handling it will see it.").format(number=case.number)
    )


async def _drop_choice(query: CallbackQuery) -> None:
    if shown(query).reply_markup:
        await shown(query).edit_reply_markup(reply_markup=None)
