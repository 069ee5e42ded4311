"""Submitting a case: kind → eldership → category → description → files → location → contact →
summary → confirm, a table of steps (`FORM`) run by the form engine (flows/forms.py). Every step
keeps its place on unexpected input; /cancel leaves at any step; the draft (`Draft`, typed) lives in the FSM storage, so a restart continues where the resident was."""

from __future__ import annotations

from html import escape
from typing import Any

from aiogram import Bot, F, Router
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramNetworkError, TelegramRetryAfter, TelegramServerError
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
from pydantic import Field

from bot.config import Config
from bot.keyboards import InlineKeyboardBuilder
from bot.services import texts
from bot.services.case_commands import AlreadyAdded, CaseCommands, DailyLimitReached, FileQuotaReached
from bot.services.case_notices import CaseNotices
from bot.services.case_queries import CaseQueries
from bot.services.cases import AttachmentDraft, CaseDraft, Problem
from bot.services.deadlines import WorkingCalendar
from bot.services.metoo import MeToo, MeTooError, Shown
from bot.services.numbers import whole_number
from bot.services.teams import TeamDirectory
from bot.services.texts import current_locale as i18n_locale
from bot.store.models import Case, CaseKind, Resident, utcnow
from flows.case_steps import category_step, eldership_name, eldership_step, kind_step
from flows.common import (
    MENU_NEW_CASE,
    Onboarded,
    UnderAccessibleMessage,
    acknowledge_later,
    attachment_of,
    cancel_acknowledgement,
    files_refused_text,
    main_menu,
    shown,
    stale_button,
    too_big_text,
    too_big_to_keep,
)
from flows.forms import Form, FormDraft, Refused, Step, Turn, show_choice

router = Router(name="intake")
router.callback_query.filter(UnderAccessibleMessage())
router.message.filter(F.chat.type == ChatType.PRIVATE)
router.callback_query.filter(F.message.chat.type == ChatType.PRIVATE)
router.callback_query.filter(
    Onboarded()
)  # an old button of someone who has not (or no longer) onboarded: flows.fallback answers

DESCRIPTION, ADDRESS, MAX_FILES = CaseDraft.DESCRIPTION, CaseDraft.ADDRESS, CaseDraft.MAX_FILES

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


class IntakeButton(CallbackData, prefix="in"):
    action: (
        str  # kind | eld | page | cat | files_done | metoo | new_case | edit | back | goto | submit | cancel
    )
    value: str = ""


class Draft(FormDraft):
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


# --- keyboards and texts -------------------------------------------------------------------


def _files_keyboard(count: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    label = _("✅ Done") if count else str(SKIP)
    builder.button(text=label, callback_data=IntakeButton(action="files_done"))
    return builder.as_markup()


def _location_keyboard() -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        keyboard=[
            [KeyboardButton(text=str(SHARE_LOCATION), request_location=True)],
            [KeyboardButton(text=str(SKIP))],
        ],
        resize_keyboard=True,
        one_time_keyboard=True,
    )


def _contact_keyboard() -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        keyboard=[
            [KeyboardButton(text=str(REPLY_HERE))],
            [KeyboardButton(text=str(SHARE_PHONE), request_contact=True)],
        ],
        resize_keyboard=True,
        one_time_keyboard=True,
    )


def _summary(turn: Turn[Draft]) -> str:
    draft, config, locale = turn.draft, turn.config, turn.locale
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
    contact = (
        _("here in Telegram, and by phone {phone}").format(phone=escape(draft.phone))
        if draft.phone
        else _("here in Telegram")
    )
    return "\n".join(
        [
            _("<b>Please check your submission</b>"),
            "",
            _("Kind: {kind}").format(kind=texts.kind_label(draft.kind)),
            _("Eldership: {name}").format(
                name=eldership_name(config, locale, draft.eldership, _("whole district / not sure"))
            ),
            _("Category: {name}").format(
                name=escape(config.municipality.category_by_id[draft.category].get(locale))
            ),
            _("Files: {count}").format(count=len(draft.files)),
            _("Location: {place}").format(place=place),
            _("Answer: {contact}").format(contact=contact),
            "",
            escape(description),
        ]
    )


# --- the steps -----------------------------------------------------------------------------


def _kind_question() -> str:
    return _(
        "<b>What would you like to submit?</b>\n\n"
        "📄 <b>Request</b>: ask for a service, a document, information or a permit.\n"
        "⚠️ <b>Complaint</b>: something was done wrongly, or your rights were not respected.\n"
        "🚧 <b>Report of a problem</b>: a pothole, a broken street lamp, rubbish, a fallen tree…"
    )


def _description_question(turn: Turn[Draft]) -> str:
    if turn.draft.editing:  # back to the summary next, not on to the files
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
    return question.format(min=DESCRIPTION.min, max=DESCRIPTION.max)


def _description(text: str, turn: Turn[Draft]) -> str:
    text = text.strip()
    problem = DESCRIPTION.problem(text)
    if problem is Problem.TOO_SHORT:
        raise Refused(
            _(
                "This is too short to act on. Please describe the matter in at least {min} character.",
                "This is too short to act on. Please describe the matter in at least {min} characters.",
                DESCRIPTION.min,
            ).format(min=DESCRIPTION.min)
        )
    if problem is Problem.TOO_LONG:
        raise Refused(
            _(
                "This is {count} character long; the limit is {max}. Please shorten it; you can attach a document with the details in the next step.",
                "This is {count} characters long; the limit is {max}. Please shorten it; you can attach a document with the details in the next step.",
                len(text),
            ).format(count=len(text), max=DESCRIPTION.max)
        )
    return text


def _files_question(turn: Turn[Draft]) -> str:
    return _(
        "You can now send photos or documents (up to {max} file), one by one or as an album. Press “Skip” if there are none.",
        "You can now send photos or documents (up to {max} files), one by one or as an album. Press “Skip” if there are none.",
        MAX_FILES,
    ).format(max=MAX_FILES)


def _clear_files(draft: Draft) -> None:
    draft.files = []  # changed from the summary: the files are chosen again from scratch


FORM: Form[Draft] = Form(
    states=Intake,
    draft=Draft,
    button=IntakeButton,
    steps=[
        kind_step(Intake.kind, _kind_question, label=lambda: _("Kind")),
        eldership_step(
            Intake.eldership,
            whole_district=lambda: _("🤷 Not sure / whole district"),
            unnamed=lambda: _("whole district / not sure"),
            label=lambda: _("Eldership"),
        ),
        category_step(Intake.category, label=lambda: _("Category")),
        Step(
            Intake.description,
            _description_question,
            keyboard=lambda turn: ReplyKeyboardRemove(),
            parse=_description,
            field="description",
            other=lambda: _(
                "Please describe the matter in words. You can add photos and documents in the next step."
            ),
            label=lambda: _("Description"),
        ),
        Step(
            Intake.files,
            _files_question,
            keyboard=lambda turn: _files_keyboard(len(turn.draft.files)),
            reset=_clear_files,
            label=lambda: _("Files"),
            other=lambda: _(
                "We can take photos and documents only (not videos, voice messages or stickers). Send a photo or a document, or press the button."
            ),
        ),
        Step(
            Intake.location,
            lambda turn: _(
                "Where is it? Send your location with the button below, or type the address. Press “Skip” if it does not matter."
            ),
            keyboard=lambda turn: _location_keyboard(),
            label=lambda: _("Location"),
            other=lambda: _("Please send your location with the button, type the address, or press “Skip”."),
        ),
        Step(
            Intake.contact,
            lambda turn: _(
                "How would you like to receive the answer? We answer here in Telegram. If you wish, you can also share your phone number so that a clerk can call you."
            ),
            keyboard=lambda turn: _contact_keyboard(),
            label=lambda: _("Contact"),
            other=lambda: _("Please choose one of the buttons below."),
        ),
    ],
    summary_state=Intake.confirm,
    summary=_summary,
    submit_label=lambda: _("✅ Submit"),
    use_the_buttons=lambda: _("Please choose with the buttons below. To stop, send /cancel."),
    cancelled=lambda: _("Cancelled. Nothing was sent."),
    menu=main_menu,
    before_summary=lambda: (_("Almost done."), ReplyKeyboardRemove()),
)


# --- entering ------------------------------------------------------------------------------


@router.message(Command("new"), Onboarded())
@router.message(F.text == MENU_NEW_CASE, Onboarded())
async def start_intake(
    message: Message, state: FSMContext, resident: Resident, commands: CaseCommands, config: Config
) -> None:
    try:
        await commands.check_daily_limit(resident.id, utcnow())
    except DailyLimitReached as reached:
        limit = reached.limit
        await message.answer(
            _(
                "You have already submitted {count} case today, the most we accept in one day. Please write again tomorrow; you can add information to an open case under “My cases”.",
                "You have already submitted {count} cases today, the most we accept in one day. Please write again tomorrow; you can add information to an open case under “My cases”.",
                limit,
            ).format(count=limit)
        )
        return
    await FORM.start(message, state, config)


# --- the steps the table cannot say: files, location, contact ------------------------------


@router.message(StateFilter(Intake.files), F.photo | F.document)
async def file_given(
    message: Message, state: FSMContext, bot: Bot, i18n: I18n, commands: CaseCommands
) -> None:
    draft = await FORM.load(state)
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
        await commands.check_files(
            message.chat.id, (*draft.files, file)
        )  # a private chat's id is the resident's
    except (FileQuotaReached, AlreadyAdded) as refused:
        await message.answer(files_refused_text(refused))
        return
    draft.files.append(file)
    await FORM.save(state, draft)
    locale = i18n.current_locale

    async def acknowledge() -> None:
        count = len((await FORM.load(state)).files)
        with i18n.context(), i18n.use_locale(locale):
            text = _("{count} file attached.", "{count} files attached.", count).format(count=count)
            await bot.send_message(
                message.chat.id,
                text + " " + _("Send more, or press “Done”."),
                reply_markup=_files_keyboard(count),
            )

    acknowledge_later(message.chat.id, acknowledge)


@router.callback_query(StateFilter(Intake.files), IntakeButton.filter(F.action == "files_done"))
async def files_done(query: CallbackQuery, state: FSMContext, config: Config) -> None:
    cancel_acknowledgement(shown(query).chat.id)
    await show_choice(query, None)
    await FORM.advance(Intake.files, shown(query), state, config)


@router.message(StateFilter(Intake.location), F.location)
async def location_given(
    message: Message, state: FSMContext, config: Config, i18n: I18n, metoo: MeToo, calendar: WorkingCalendar
) -> None:
    await _place(state, latitude=message.location.latitude, longitude=message.location.longitude)
    await _after_place(message, state, config, i18n, metoo, calendar)


@router.message(StateFilter(Intake.location), F.text == SKIP)
async def location_skipped(
    message: Message, state: FSMContext, config: Config, i18n: I18n, metoo: MeToo, calendar: WorkingCalendar
) -> None:
    await _place(state)
    await _after_place(message, state, config, i18n, metoo, calendar)


@router.message(StateFilter(Intake.location), F.text)
async def address_given(
    message: Message, state: FSMContext, config: Config, i18n: I18n, metoo: MeToo, calendar: WorkingCalendar
) -> None:
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


async def _after_place(
    message: Message, state: FSMContext, config: Config, i18n: I18n, metoo: MeToo, calendar: WorkingCalendar
) -> None:
    """A report with its category and place known: open reports of the category nearby (or in
    its eldership) are offered first; without any, or when changing a step, on as before."""
    draft = await FORM.load(state)
    if draft.kind != CaseKind.REPORT or draft.editing or draft.category is None:
        await FORM.advance(Intake.location, message, state, config)
        return
    found = await metoo.nearby(
        message.chat.id,
        draft.category,
        latitude=draft.latitude,
        longitude=draft.longitude,
        eldership_id=draft.eldership,
    )  # a private chat's id is the resident's
    if not found:
        await FORM.advance(Intake.location, message, state, config)
        return
    draft.offered = [item.case_id for item in found]
    await FORM.save(state, draft)
    await state.set_state(Intake.metoo)
    await message.answer(_("Thank you."), reply_markup=ReplyKeyboardRemove())
    await message.answer(
        _nearby_text(found, config, i18n.current_locale, calendar), reply_markup=_nearby_keyboard(found)
    )


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
        lines.append(
            f"<b>{index}.</b> {category} · {_distance(item.distance_m)} · {since} · {texts.status_label(item.status)}"
        )
        if item.description is not None:
            lines.append("<i>" + escape(texts.shorten(item.description, 300)) + "</i>")
    lines += [
        "",
        _(
            "If one of them is your problem, press “This affects me too”: you will be told of its progress, and no new case is opened."
        ),
    ]
    return "\n".join(lines)


def _nearby_keyboard(found: list[Shown]) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for index, item in enumerate(found, start=1):
        label = (
            _("➕ This affects me too")
            if len(found) == 1
            else _("➕ Affects me too ({index})").format(index=index)
        )
        builder.button(text=label, callback_data=IntakeButton(action="metoo", value=str(item.case_id)))
    builder.button(text=_("Continue with a new case"), callback_data=IntakeButton(action="new_case"))
    builder.button(text=_("✖️ Cancel"), callback_data=IntakeButton(action="cancel"))
    builder.adjust(1)
    return builder.as_markup()


@router.callback_query(StateFilter(Intake.metoo), IntakeButton.filter(F.action == "metoo"))
async def affects_me_too(
    query: CallbackQuery, callback_data: IntakeButton, state: FSMContext, metoo: MeToo
) -> None:
    draft = await FORM.load(state)
    case_id = whole_number(callback_data.value)
    if case_id is None or case_id not in draft.offered:
        await stale_button(query)
        return
    try:
        case = await metoo.follow(query.from_user.id, case_id)
    except MeTooError as refused:
        await query.answer(str(refused), show_alert=True)
        return
    await state.clear()
    await show_choice(query, None)
    await shown(query).answer(
        _(
            "✅ You now follow case {number}: we will tell you here when its status changes. No new case was opened. You will find it under “My cases”."
        ).format(number=case.number),
        reply_markup=main_menu(),
    )


@router.callback_query(StateFilter(Intake.metoo), IntakeButton.filter(F.action == "new_case"))
async def new_case_after_all(query: CallbackQuery, state: FSMContext, config: Config) -> None:
    await show_choice(query, None)
    await FORM.advance(Intake.location, shown(query), state, config)


@router.message(StateFilter(Intake.metoo))
async def metoo_buttons(message: Message) -> None:
    await message.answer(
        _(
            "Please choose with the buttons above: “This affects me too”, or “Continue with a new case”. To stop, send /cancel."
        )
    )


async def _place(
    state: FSMContext,
    latitude: float | None = None,
    longitude: float | None = None,
    address: str | None = None,
) -> None:
    """The location step's answer: a shared location, a typed address, or neither (skipped)."""
    draft = await FORM.load(state)
    draft.latitude, draft.longitude, draft.address = latitude, longitude, address
    await FORM.save(state, draft)


async def _contact(state: FSMContext, phone: str | None) -> None:
    draft = await FORM.load(state)
    draft.phone = phone
    await FORM.save(state, draft)


@router.message(StateFilter(Intake.contact), F.contact)
async def phone_shared(message: Message, state: FSMContext, config: Config) -> None:
    if message.contact.user_id != message.from_user.id:
        await message.answer(
            _("Please share your own number with the button below."), reply_markup=_contact_keyboard()
        )
        return
    await _contact(state, message.contact.phone_number)
    await FORM.advance(Intake.contact, message, state, config)


@router.message(StateFilter(Intake.contact), F.text == REPLY_HERE)
async def answer_here(message: Message, state: FSMContext, config: Config) -> None:
    await _contact(state, None)
    await FORM.advance(Intake.contact, message, state, config)


@router.callback_query(IntakeButton.filter(F.action == "submit"))
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
            await stale_button(query)
            return
        await _confirm(query, existing, calendar, teams, notices, close=False)
        return
    draft = await FORM.load(state)
    assert draft.kind is not None and draft.category is not None, (
        "the summary is shown once every step is answered"
    )
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
        await query.answer(
            _("You have reached today's limit of new cases. Please write again tomorrow."), show_alert=True
        )
        return
    except (
        FileQuotaReached
    ) as refused:  # files sent with another case meanwhile: the draft stays, to be sent with fewer files
        await query.answer(files_refused_text(refused), show_alert=True)
        return
    await state.clear()
    await _confirm(query, opened.case, calendar, teams, notices, close=True)


async def _confirm(
    query: CallbackQuery,
    case: Case,
    calendar: WorkingCalendar,
    teams: TeamDirectory,
    notices: CaseNotices,
    *,
    close: bool,
) -> None:
    """The case's number and deadline, with the main menu back. If Telegram fails every try, the
    case is stored all the same: they go out through the outbox, sent once Telegram takes them
    (at least once: a network error after Telegram took the message sends it twice)."""
    confirmation = _confirmation(case, calendar, teams)
    try:
        if close:
            await show_choice(query, None)
        else:
            await query.answer()
        await shown(query).answer(confirmation, reply_markup=main_menu())
    except (TelegramServerError, TelegramNetworkError, TelegramRetryAfter):
        await notices.tell_resident(
            case, confirmation, reply_keyboard=main_menu().model_dump(exclude_none=True)
        )


def _confirmation(case: Any, calendar: WorkingCalendar, teams: TeamDirectory) -> str:
    today = calendar.local_date(utcnow())
    left = calendar.working_days_left(today, case.due)
    team = teams.get(case.team_id)
    return "\n".join(
        [
            _("✅ <b>Your submission has been registered.</b>"),
            "",
            _("Case number: <b>{number}</b>").format(number=case.number),
            _("Kind: {kind}").format(kind=texts.kind_label(case.kind)),
            _("Handled by: {team}").format(team=escape(team.name.get(texts.current_locale()))),
            _("Received: {date}").format(date=texts.day(calendar.local_date(case.received_at))),
            _("Answer due by: <b>{date}</b> ({left})").format(
                date=texts.day(case.due), left=texts.days_left(today, case.due, left)
            ),
            "",
            _(
                "What happens next: a clerk of the municipality will deal with your case and answer you here. "
                "You will get a message whenever its status changes. You can follow it under “My cases”."
            ),
        ]
    )


FORM.attach(router)
