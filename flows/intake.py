"""Submitting a case: kind → eldership → category → description → files → location → contact →
summary → confirm. Every step keeps its place on unexpected input; /cancel leaves at any step;
the draft (`Draft`, typed) lives in the FSM storage, so a restart continues where the resident was."""

from __future__ import annotations

import contextlib
from html import escape
from typing import Any

from aiogram import Bot, F, Router
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramBadRequest, TelegramNetworkError, TelegramRetryAfter, TelegramServerError
from aiogram.filters import Command, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import lazy_gettext as __
from babel.numbers import format_decimal
from pydantic import BaseModel, Field

from bot.config import Config
from bot.keyboards import InlineKeyboardBuilder
from bot.services import texts
from bot.services.case_commands import AlreadyAdded, CaseCommands, DailyLimitReached, FileQuotaReached
from bot.services.case_notices import CaseNotices
from bot.services.case_queries import CaseQueries
from bot.services.cases import AttachmentDraft, CaseDraft, Problem
from bot.services.deadlines import WorkingCalendar
from bot.services.metoo import MeToo, MeTooError, Shown
from bot.services.numbers import PAGE_MAX, whole_number
from bot.services.teams import TeamDirectory
from bot.services.texts import current_locale as i18n_locale
from bot.store.models import Case, CaseKind, Resident, utcnow
from flows.common import (
    MENU_NEW_CASE,
    UnderAccessibleMessage,
    acknowledge_later,
    attachment_of,
    cancel_acknowledgement,
    category_keyboard,
    eldership_keyboard,
    files_refused_text,
    kind_keyboard,
    main_menu,
    shown,
    too_big_text,
    too_big_to_keep,
)

router = Router(name="intake")
router.callback_query.filter(UnderAccessibleMessage())
router.message.filter(F.chat.type == ChatType.PRIVATE)
router.callback_query.filter(F.message.chat.type == ChatType.PRIVATE)

DESCRIPTION, ADDRESS, MAX_FILES = CaseDraft.DESCRIPTION, CaseDraft.ADDRESS, CaseDraft.MAX_FILES
WHOLE_DISTRICT = "-"

SKIP = __("⏭ Skip")
SHARE_LOCATION = __("📍 Send my location")
SHARE_PHONE = __("📞 Share my phone number")
REPLY_HERE = __("💬 Answer here in Telegram")


class Intake(StatesGroup):
    kind = State()
    eldership = State()
    category = State()
    description = State()
    files = State()
    location = State()
    metoo = State()  # a report near open ones of its category: "this affects me too", or a new case
    contact = State()
    confirm = State()


STEPS = ("kind", "eldership", "category", "description", "files", "location", "contact")


class Step(CallbackData, prefix="in"):
    action: str  # kind | eld | page | cat | files_done | metoo | new_case | edit | back | goto | submit | cancel
    value: str = ""


class Draft(BaseModel):
    """What the resident has entered so far (stored in the FSM data as JSON)."""

    kind: CaseKind | None = None
    eldership: str | None = None  # None: the whole district, or not sure
    category: str | None = None
    description: str = ""
    files: list[AttachmentDraft] = Field(default_factory=list)
    latitude: float | None = None  # a shared location...
    longitude: float | None = None
    address: str | None = None  # ...or a typed address, or neither
    phone: str | None = None  # shared to be called back; None: answered in Telegram only
    offered: list[int] = Field(default_factory=list)  # "me too": the ids of the open cases offered
    editing: bool = False  # one step changed from the summary: back to the summary after it


async def _load(state: FSMContext) -> Draft:
    data = await state.get_data()
    # Until the draft had a type, its fields lay at the top level of the FSM data under the same
    # names: a resident who was in the middle of a case when this version started continues it.
    return Draft.model_validate(data.get("draft", data))


async def _save(state: FSMContext, draft: Draft) -> None:
    await state.update_data(draft=draft.model_dump(mode="json"))


# --- keyboards and texts -------------------------------------------------------------------


def _kind_keyboard() -> InlineKeyboardMarkup:
    return kind_keyboard(lambda kind: Step(action="kind", value=kind), Step(action="cancel"))


def _eldership_keyboard(config: Config, locale: str, page: int) -> InlineKeyboardMarkup:
    return eldership_keyboard(
        config, locale, page,
        pick=lambda eldership_id: Step(action="eld", value=eldership_id),
        turn=lambda target: Step(action="page", value=str(target)),
        extra=[(_("🤷 Not sure / whole district"), Step(action="eld", value=WHOLE_DISTRICT)), (_("✖️ Cancel"), Step(action="cancel"))],
    )  # fmt: skip


def _category_keyboard(config: Config, locale: str) -> InlineKeyboardMarkup:
    return category_keyboard(config, locale, lambda category_id: Step(action="cat", value=category_id), Step(action="cancel"))


def _files_keyboard(count: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    label = _("✅ Done") if count else str(SKIP)
    builder.button(text=label, callback_data=Step(action="files_done"))
    return builder.as_markup()


def _location_keyboard() -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text=str(SHARE_LOCATION), request_location=True)], [KeyboardButton(text=str(SKIP))]],
        resize_keyboard=True,
        one_time_keyboard=True,
    )


def _contact_keyboard() -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text=str(REPLY_HERE))], [KeyboardButton(text=str(SHARE_PHONE), request_contact=True)]],
        resize_keyboard=True,
        one_time_keyboard=True,
    )


def _summary_keyboard() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("✅ Submit"), callback_data=Step(action="submit"))
    builder.button(text=_("✏️ Change something"), callback_data=Step(action="edit"))
    builder.button(text=_("✖️ Cancel"), callback_data=Step(action="cancel"))
    builder.adjust(1)
    return builder.as_markup()


def _edit_keyboard() -> InlineKeyboardMarkup:
    labels = {
        "kind": _("Kind"), "eldership": _("Eldership"), "category": _("Category"),
        "description": _("Description"), "files": _("Files"), "location": _("Location"), "contact": _("Contact"),
    }  # fmt: skip
    builder = InlineKeyboardBuilder()
    for step in STEPS:
        builder.button(text=labels[step], callback_data=Step(action="goto", value=step))
    builder.button(text=_("⬅️ Back to the summary"), callback_data=Step(action="back"))
    builder.adjust(*([2] * (-(-len(STEPS) // 2))), 1)
    return builder.as_markup()


def _eldership_name(config: Config, locale: str, eldership_id: str | None) -> str:
    entry = config.municipality.eldership_by_id.get(eldership_id or "")
    return escape(entry.get(locale)) if entry else _("whole district / not sure")


def _summary(draft: Draft, config: Config, locale: str) -> str:
    assert draft.kind is not None and draft.category is not None, "the steps before chose them"
    description = draft.description
    if len(description) > 1500:
        description = description[:1500] + "…"
    if draft.latitude is not None:
        place = f"📍 {draft.latitude:.5f}, {draft.longitude:.5f}"
    elif draft.address:
        place = escape(draft.address)
    else:
        place = _("not given")
    contact = _("here in Telegram, and by phone {phone}").format(phone=escape(draft.phone)) if draft.phone else _("here in Telegram")
    return "\n".join([
        _("<b>Please check your submission</b>"),
        "",
        _("Kind: {kind}").format(kind=texts.kind_label(draft.kind)),
        _("Eldership: {name}").format(name=_eldership_name(config, locale, draft.eldership)),
        _("Category: {name}").format(name=escape(config.municipality.category_by_id[draft.category].get(locale))),
        _("Files: {count}").format(count=len(draft.files)),
        _("Location: {place}").format(place=place),
        _("Answer: {contact}").format(contact=contact),
        "",
        escape(description),
    ])  # fmt: skip


# --- moving between steps ------------------------------------------------------------------


async def _ask(step: str, message: Message, state: FSMContext, config: Config, i18n: I18n) -> None:
    """Show the question of `step` and wait for its answer."""
    await state.set_state(getattr(Intake, step))
    locale = i18n.current_locale
    if step == "kind":
        await message.answer(
            _(
                "<b>What would you like to submit?</b>\n\n"
                "📄 <b>Request</b>: ask for a service, a document, information or a permit.\n"
                "⚠️ <b>Complaint</b>: something was done wrongly, or your rights were not respected.\n"
                "🚧 <b>Report of a problem</b>: a pothole, a broken street lamp, rubbish, a fallen tree…"
            ),
            reply_markup=_kind_keyboard(),
        )
    elif step == "eldership":
        await message.answer(_("Which eldership does it concern?"), reply_markup=_eldership_keyboard(config, locale, 0))
    elif step == "category":
        await message.answer(_("What is it about?"), reply_markup=_category_keyboard(config, locale))
    elif step == "description":
        if (await _load(state)).editing:  # back to the summary next, not on to the files
            question = _(
                "Please describe the matter in your own words ({min} to {max} character). The summary follows.",
                "Please describe the matter in your own words ({min} to {max} characters). The summary follows.",
                DESCRIPTION.max,
            )
        else:
            question = _(
                "Please describe the matter in your own words ({min} to {max} character). You can add photos and documents in the next step.",
                "Please describe the matter in your own words ({min} to {max} characters). You can add photos and documents in the next step.",
                DESCRIPTION.max,
            )
        await message.answer(question.format(min=DESCRIPTION.min, max=DESCRIPTION.max), reply_markup=ReplyKeyboardRemove())
    elif step == "files":
        count = len((await _load(state)).files)
        await message.answer(
            _(
                "You can now send photos or documents (up to {max} file), one by one or as an album. Press “Skip” if there are none.",
                "You can now send photos or documents (up to {max} files), one by one or as an album. Press “Skip” if there are none.",
                MAX_FILES,
            ).format(max=MAX_FILES),
            reply_markup=_files_keyboard(count),
        )
    elif step == "location":
        await message.answer(
            _("Where is it? Send your location with the button below, or type the address. Press “Skip” if it does not matter."),
            reply_markup=_location_keyboard(),
        )
    elif step == "contact":
        await message.answer(
            _(
                "How would you like to receive the answer? We answer here in Telegram. If you wish, you can also share your phone number so that a clerk can call you."
            ),
            reply_markup=_contact_keyboard(),
        )
    elif step == "confirm":
        await message.answer(_summary(await _load(state), config, locale), reply_markup=_summary_keyboard())


async def _next(after: str, message: Message, state: FSMContext, config: Config, i18n: I18n) -> None:
    """Go on to the step after `after`, or back to the summary when the resident was editing."""
    if (await _load(state)).editing or after == STEPS[-1]:
        await _show_summary(message, state, config, i18n)
        return
    await _ask(STEPS[STEPS.index(after) + 1], message, state, config, i18n)


async def _show_summary(message: Message, state: FSMContext, config: Config, i18n: I18n) -> None:
    await state.set_state(Intake.confirm)  # with the draft, before "Almost done." is sent
    draft = await _load(state)
    draft.editing = False
    await _save(state, draft)
    await message.answer(_("Almost done."), reply_markup=ReplyKeyboardRemove())
    await _ask("confirm", message, state, config, i18n)


# --- entering and leaving ------------------------------------------------------------------


@router.message(Command("new"))
@router.message(F.text == MENU_NEW_CASE)
async def start_intake(message: Message, state: FSMContext, resident: Resident | None, commands: CaseCommands, config: Config, i18n: I18n) -> None:
    if resident is None or resident.consent_at is None:
        await message.answer(_("Please start with /start: choose your language and accept the privacy notice."))
        return
    try:
        await commands.check_daily_limit(resident.id, utcnow())
    except DailyLimitReached as reached:
        limit = reached.limit
        await message.answer(
            _("You have already submitted {count} case today, the most we accept in one day. Please write again tomorrow; you can add information to an open case under “My cases”.",
              "You have already submitted {count} cases today, the most we accept in one day. Please write again tomorrow; you can add information to an open case under “My cases”.",
              limit).format(count=limit)
        )  # fmt: skip
        return
    await state.clear()
    await _save(state, Draft())
    await _ask("kind", message, state, config, i18n)


@router.callback_query(Step.filter(F.action == "cancel"))
async def cancel_intake(query: CallbackQuery, state: FSMContext) -> None:
    await state.clear()
    await query.answer()
    await _close_keyboard(query)
    await shown(query).answer(_("Cancelled. Nothing was sent."), reply_markup=main_menu())


async def _close_keyboard(query: CallbackQuery) -> None:
    """Remove the buttons of the message that was answered, so they are not pressed twice."""
    with contextlib.suppress(TelegramBadRequest):  # already without buttons
        await shown(query).edit_reply_markup(reply_markup=None)


# --- the steps -----------------------------------------------------------------------------


@router.callback_query(StateFilter(Intake.kind), Step.filter(F.action == "kind"))
async def kind_chosen(query: CallbackQuery, callback_data: Step, state: FSMContext, config: Config, i18n: I18n) -> None:
    if callback_data.value not in CaseKind.__members__.values():
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    draft = await _load(state)
    draft.kind = CaseKind(callback_data.value)
    await _save(state, draft)
    await query.answer()
    await shown(query).edit_text(_("Kind: {kind}").format(kind=texts.kind_label(draft.kind)))
    await _next("kind", shown(query), state, config, i18n)


@router.callback_query(StateFilter(Intake.eldership), Step.filter(F.action == "page"))
async def eldership_page(query: CallbackQuery, callback_data: Step, config: Config, i18n: I18n) -> None:
    page = whole_number(callback_data.value, PAGE_MAX)
    if page is None:  # not a button this bot made
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    await query.answer()
    await shown(query).edit_reply_markup(reply_markup=_eldership_keyboard(config, i18n.current_locale, page))


@router.callback_query(StateFilter(Intake.eldership), Step.filter(F.action == "eld"))
async def eldership_chosen(query: CallbackQuery, callback_data: Step, state: FSMContext, config: Config, i18n: I18n) -> None:
    value = callback_data.value
    if value != WHOLE_DISTRICT and value not in config.municipality.eldership_by_id:
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    draft = await _load(state)
    draft.eldership = None if value == WHOLE_DISTRICT else value
    await _save(state, draft)
    await query.answer()
    await shown(query).edit_text(_("Eldership: {name}").format(name=_eldership_name(config, i18n.current_locale, draft.eldership)))
    await _next("eldership", shown(query), state, config, i18n)


@router.callback_query(StateFilter(Intake.category), Step.filter(F.action == "cat"))
async def category_chosen(query: CallbackQuery, callback_data: Step, state: FSMContext, config: Config, i18n: I18n) -> None:
    category = config.municipality.category_by_id.get(callback_data.value)
    if category is None:
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    draft = await _load(state)
    draft.category = category.id
    await _save(state, draft)
    await query.answer()
    await shown(query).edit_text(_("Category: {name}").format(name=escape(category.get(i18n.current_locale))))
    await _next("category", shown(query), state, config, i18n)


@router.message(StateFilter(Intake.description), F.text)
async def description_given(message: Message, state: FSMContext, config: Config, i18n: I18n) -> None:
    text = message.text.strip()
    problem = DESCRIPTION.problem(text)
    if problem is Problem.TOO_SHORT:
        await message.answer(
            _(
                "This is too short to act on. Please describe the matter in at least {min} character.",
                "This is too short to act on. Please describe the matter in at least {min} characters.",
                DESCRIPTION.min,
            ).format(min=DESCRIPTION.min)
        )
        return
    if problem is Problem.TOO_LONG:
        await message.answer(
            _(
                "This is {count} character long; the limit is {max}. Please shorten it; you can attach a document with the details in the next step.",
                "This is {count} characters long; the limit is {max}. Please shorten it; you can attach a document with the details in the next step.",
                len(text),
            ).format(count=len(text), max=DESCRIPTION.max)
        )
        return
    draft = await _load(state)
    draft.description = text
    await _save(state, draft)
    await _next("description", message, state, config, i18n)


@router.message(StateFilter(Intake.files), F.photo | F.document)
async def file_given(message: Message, state: FSMContext, bot: Bot, i18n: I18n, commands: CaseCommands) -> None:
    draft = await _load(state)
    if len(draft.files) >= MAX_FILES:
        await message.answer(
            _(
                "You can attach at most {max} file; this one was not added. Press “Done” to continue.",
                "You can attach at most {max} files; this one was not added. Press “Done” to continue.",
                MAX_FILES,
            ).format(max=MAX_FILES)
        )
        return
    if too_big_to_keep(message):
        await message.answer(too_big_text())
        return
    file = attachment_of(message)
    try:
        await commands.check_files(message.chat.id, (*draft.files, file))  # a private chat's id is the resident's
    except (FileQuotaReached, AlreadyAdded) as refused:
        await message.answer(files_refused_text(refused))
        return
    draft.files.append(file)
    await _save(state, draft)
    locale = i18n.current_locale

    async def acknowledge() -> None:
        count = len((await _load(state)).files)
        with i18n.context(), i18n.use_locale(locale):
            text = _("{count} file attached.", "{count} files attached.", count).format(count=count)
            await bot.send_message(message.chat.id, text + " " + _("Send more, or press “Done”."), reply_markup=_files_keyboard(count))

    acknowledge_later(message.chat.id, acknowledge)


@router.callback_query(StateFilter(Intake.files), Step.filter(F.action == "files_done"))
async def files_done(query: CallbackQuery, state: FSMContext, config: Config, i18n: I18n) -> None:
    cancel_acknowledgement(shown(query).chat.id)
    await query.answer()
    await _close_keyboard(query)
    await _next("files", shown(query), state, config, i18n)


@router.message(StateFilter(Intake.files))
async def files_unexpected(message: Message, state: FSMContext) -> None:
    count = len((await _load(state)).files)
    await message.answer(
        _("We can take photos and documents only (not videos, voice messages or stickers). Send a photo or a document, or press the button."),
        reply_markup=_files_keyboard(count),
    )


@router.message(StateFilter(Intake.location), F.location)
async def location_given(message: Message, state: FSMContext, config: Config, i18n: I18n, metoo: MeToo, calendar: WorkingCalendar) -> None:
    await _place(state, latitude=message.location.latitude, longitude=message.location.longitude)
    await _after_place(message, state, config, i18n, metoo, calendar)


@router.message(StateFilter(Intake.location), F.text == SKIP)
async def location_skipped(message: Message, state: FSMContext, config: Config, i18n: I18n, metoo: MeToo, calendar: WorkingCalendar) -> None:
    await _place(state)
    await _after_place(message, state, config, i18n, metoo, calendar)


@router.message(StateFilter(Intake.location), F.text)
async def address_given(message: Message, state: FSMContext, config: Config, i18n: I18n, metoo: MeToo, calendar: WorkingCalendar) -> None:
    address = " ".join(message.text.split())
    if ADDRESS.problem(address):
        await message.answer(
            _(
                "Please type an address of {min} to {max} character, send your location, or press “Skip”.",
                "Please type an address of {min} to {max} characters, send your location, or press “Skip”.",
                ADDRESS.max,
            ).format(min=ADDRESS.min, max=ADDRESS.max)
        )
        return
    await _place(state, address=address)
    await _after_place(message, state, config, i18n, metoo, calendar)


# --- "me too": a report near open ones of its category -------------------------------------


async def _after_place(message: Message, state: FSMContext, config: Config, i18n: I18n, metoo: MeToo, calendar: WorkingCalendar) -> None:
    """A report with its category and place known: open reports of the category nearby (or in
    its eldership) are offered first; without any, or when changing a step, on as before."""
    draft = await _load(state)
    if draft.kind != CaseKind.REPORT or draft.editing or draft.category is None:
        await _next("location", message, state, config, i18n)
        return
    found = await metoo.nearby(
        message.chat.id, draft.category, latitude=draft.latitude, longitude=draft.longitude, eldership_id=draft.eldership
    )  # a private chat's id is the resident's
    if not found:
        await _next("location", message, state, config, i18n)
        return
    draft.offered = [item.case_id for item in found]
    await _save(state, draft)
    await state.set_state(Intake.metoo)
    await message.answer(_("Thank you."), reply_markup=ReplyKeyboardRemove())
    await message.answer(_nearby_text(found, config, i18n.current_locale, calendar), reply_markup=_nearby_keyboard(found))


def _distance(metres: float | None) -> str:
    if metres is None:
        return _("in the same eldership")
    if metres < 1000:
        return _("{metres} m away").format(metres=max(10, round(metres / 10) * 10))
    return _("{km} km away").format(km=format_decimal(round(metres / 1000, 1), locale=i18n_locale()))


def _nearby_text(found: list[Shown], config: Config, locale: str, calendar: WorkingCalendar) -> str:
    """What may be shown of other residents' reports: category, how far, since when, status, and
    the description only of a report a clerk made public."""
    lines = [_("<b>Has this already been reported?</b> These open reports look like yours:"), ""]
    for index, item in enumerate(found, start=1):
        category = escape(config.municipality.category_by_id[item.category_id].get(locale))
        since = _("since {date}").format(date=texts.day(calendar.local_date(item.received_at)))
        lines.append(f"<b>{index}.</b> {category} · {_distance(item.distance_m)} · {since} · {texts.status_label(item.status)}")
        if item.description is not None:
            lines.append("<i>" + escape(texts.shorten(item.description, 300)) + "</i>")
    lines += ["", _("If one of them is your problem, press “This affects me too”: you will be told of its progress, and no new case is opened.")]
    return "\n".join(lines)


def _nearby_keyboard(found: list[Shown]) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for index, item in enumerate(found, start=1):
        label = _("➕ This affects me too") if len(found) == 1 else _("➕ Affects me too ({index})").format(index=index)
        builder.button(text=label, callback_data=Step(action="metoo", value=str(item.case_id)))
    builder.button(text=_("Continue with a new case"), callback_data=Step(action="new_case"))
    builder.button(text=_("✖️ Cancel"), callback_data=Step(action="cancel"))
    builder.adjust(1)
    return builder.as_markup()


@router.callback_query(StateFilter(Intake.metoo), Step.filter(F.action == "metoo"))
async def affects_me_too(query: CallbackQuery, callback_data: Step, state: FSMContext, metoo: MeToo) -> None:
    draft = await _load(state)
    case_id = whole_number(callback_data.value)
    if case_id is None or case_id not in draft.offered:
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    try:
        case = await metoo.follow(query.from_user.id, case_id)
    except MeTooError as refused:
        await query.answer(str(refused), show_alert=True)
        return
    await state.clear()
    await query.answer()
    await _close_keyboard(query)
    await shown(query).answer(
        _("✅ You now follow case {number}: we will tell you here when its status changes. No new case was opened. You will find it under “My cases”.").format(
            number=case.number
        ),
        reply_markup=main_menu(),
    )


@router.callback_query(StateFilter(Intake.metoo), Step.filter(F.action == "new_case"))
async def new_case_after_all(query: CallbackQuery, state: FSMContext, config: Config, i18n: I18n) -> None:
    await query.answer()
    await _close_keyboard(query)
    await _next("location", shown(query), state, config, i18n)


@router.message(StateFilter(Intake.metoo))
async def metoo_buttons(message: Message) -> None:
    await message.answer(_("Please choose with the buttons above: “This affects me too”, or “Continue with a new case”. To stop, send /cancel."))


async def _place(state: FSMContext, latitude: float | None = None, longitude: float | None = None, address: str | None = None) -> None:
    """The location step's answer: a shared location, a typed address, or neither (skipped)."""
    draft = await _load(state)
    draft.latitude, draft.longitude, draft.address = latitude, longitude, address
    await _save(state, draft)


async def _contact(state: FSMContext, phone: str | None) -> None:
    draft = await _load(state)
    draft.phone = phone
    await _save(state, draft)


@router.message(StateFilter(Intake.contact), F.contact)
async def phone_shared(message: Message, state: FSMContext, config: Config, i18n: I18n) -> None:
    if message.contact.user_id != message.from_user.id:
        await message.answer(_("Please share your own number with the button below."), reply_markup=_contact_keyboard())
        return
    await _contact(state, message.contact.phone_number)
    await _next("contact", message, state, config, i18n)


@router.message(StateFilter(Intake.contact), F.text == REPLY_HERE)
async def answer_here(message: Message, state: FSMContext, config: Config, i18n: I18n) -> None:
    await _contact(state, None)
    await _next("contact", message, state, config, i18n)


@router.callback_query(StateFilter(Intake.confirm), Step.filter(F.action == "edit"))
async def choose_what_to_edit(query: CallbackQuery) -> None:
    await query.answer()
    await shown(query).edit_reply_markup(reply_markup=_edit_keyboard())


@router.callback_query(StateFilter(Intake.confirm), Step.filter(F.action == "back"))
async def back_to_summary(query: CallbackQuery) -> None:
    """Nothing to change after all: the summary's own buttons again."""
    await query.answer()
    await shown(query).edit_reply_markup(reply_markup=_summary_keyboard())


@router.callback_query(StateFilter(Intake.confirm), Step.filter(F.action == "goto"))
async def edit_step(query: CallbackQuery, callback_data: Step, state: FSMContext, config: Config, i18n: I18n) -> None:
    if callback_data.value not in STEPS:
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    await query.answer()
    await _close_keyboard(query)
    draft = await _load(state)
    draft.editing = True
    if callback_data.value == "files":
        draft.files = []  # the files are chosen again from scratch
    await _save(state, draft)
    await _ask(callback_data.value, shown(query), state, config, i18n)


@router.callback_query(Step.filter(F.action == "submit"))
async def submit(
    query: CallbackQuery,
    state: FSMContext,
    event_update: Update,
    queries: CaseQueries,
    commands: CaseCommands,
    notices: CaseNotices,
    teams: TeamDirectory,
    calendar: WorkingCalendar,
    config: Config,
    resident: Resident | None,
) -> None:
    """Store the case. The same update delivered again finds its case instead of a new one."""
    if await state.get_state() != Intake.confirm.state or resident is None:
        # Not a live draft: either a stale button, or this very update delivered twice.
        existing = await queries.by_update(event_update.update_id)
        if existing is None:
            await query.answer(_("This button is no longer active."), show_alert=True)
            return
        await _confirm(query, existing, calendar, teams, notices, close=False)
        return
    draft = await _load(state)
    assert draft.kind is not None and draft.category is not None, "the summary is shown once every step is answered"
    case_draft = CaseDraft(
        resident_id=resident.id,
        locale=resident.locale or config.settings.default_locale,
        kind=draft.kind,
        category_id=draft.category,
        eldership_id=draft.eldership,
        description=draft.description,
        latitude=draft.latitude,
        longitude=draft.longitude,
        address=draft.address,
        attachments=tuple(draft.files),
    )
    try:
        opened = await commands.submit(case_draft, utcnow(), event_update.update_id, phone=draft.phone)
    except DailyLimitReached:
        await query.answer(_("You have reached today's limit of new cases. Please write again tomorrow."), show_alert=True)
        return
    except FileQuotaReached as refused:  # files sent with another case meanwhile: the draft stays, to be sent with fewer files
        await query.answer(files_refused_text(refused), show_alert=True)
        return
    await state.clear()
    await _confirm(query, opened.case, calendar, teams, notices, close=True)


async def _confirm(query: CallbackQuery, case: Case, calendar: WorkingCalendar, teams: TeamDirectory, notices: CaseNotices, *, close: bool) -> None:
    """The case's number and deadline, with the main menu back. If Telegram fails every try, the
    case is stored all the same: they go out through the outbox, sent once Telegram takes them
    (at least once: a network error after Telegram took the message sends it twice)."""
    confirmation = _confirmation(case, calendar, teams)
    try:
        await query.answer()
        if close:
            await _close_keyboard(query)
        await shown(query).answer(confirmation, reply_markup=main_menu())
    except (TelegramServerError, TelegramNetworkError, TelegramRetryAfter):
        await notices.tell_resident(case, confirmation, reply_keyboard=main_menu().model_dump(exclude_none=True))


def _confirmation(case: Any, calendar: WorkingCalendar, teams: TeamDirectory) -> str:
    today = calendar.local_date(utcnow())
    left = calendar.working_days_left(today, case.due)
    team = teams.get(case.team_id)
    return "\n".join([
        _("✅ <b>Your submission has been registered.</b>"),
        "",
        _("Case number: <b>{number}</b>").format(number=case.number),
        _("Kind: {kind}").format(kind=texts.kind_label(case.kind)),
        _("Handled by: {team}").format(team=escape(team.name.get(texts.current_locale()))),
        _("Received: {date}").format(date=texts.day(calendar.local_date(case.received_at))),
        _("Answer due by: <b>{date}</b> ({left})").format(date=texts.day(case.due), left=texts.days_left(today, case.due, left)),
        "",
        _("What happens next: a clerk of the municipality will deal with your case and answer you here. "
          "You will get a message whenever its status changes. You can follow it under “My cases”."),
    ])  # fmt: skip


# --- anything else during the steps --------------------------------------------------------


@router.message(StateFilter(Intake.kind, Intake.eldership, Intake.category, Intake.confirm))
async def use_the_buttons(message: Message, state: FSMContext, config: Config, i18n: I18n) -> None:
    """The question again, with its buttons: the one above may be gone (scrolled far away,
    deleted, or never delivered while Telegram failed), and the resident is not left stuck."""
    await message.answer(_("Please choose with the buttons below. To stop, send /cancel."))
    await _ask((await state.get_state() or "").rpartition(":")[2], message, state, config, i18n)  # "Intake:kind" → "kind"


@router.message(StateFilter(Intake.description))
async def description_expected(message: Message) -> None:
    await message.answer(_("Please describe the matter in words. You can add photos and documents in the next step."))


@router.message(StateFilter(Intake.location))
async def location_expected(message: Message) -> None:
    await message.answer(_("Please send your location with the button, type the address, or press “Skip”."), reply_markup=_location_keyboard())


@router.message(StateFilter(Intake.contact))
async def contact_expected(message: Message) -> None:
    await message.answer(_("Please choose one of the buttons below."), reply_markup=_contact_keyboard())
