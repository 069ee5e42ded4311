"""Cases that came by phone, e-mail, post or at the front desk: a clerk registers them in a team
group with /register, step by step (how it came → kind → category → eldership → description →
files → the person's name → how to answer them → their phone, e-mail or postal address →
summary). The case gets the same number, deadline, routing, card and trail as a resident's; the
routing rules may send it to another team's group. Its person has no Telegram: the clerks answer
outside it and record how when closing (flows/clerk.py).

The draft (`Draft`, typed) lives in the FSM storage per clerk and topic; "✖️ Cancel" or /cancel
leaves at any step. Only a clerk of a team in the group may register (as for the desk's commands).
"""

from __future__ import annotations

import contextlib
import logging
from html import escape

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, Update
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from pydantic import BaseModel, Field

from bot.config import Config
from bot.keyboards import InlineKeyboardBuilder
from bot.services import texts
from bot.services.case_commands import CaseCommands, RegisteredBy
from bot.services.case_queries import CaseQueries
from bot.services.cases import AnswerBy, AttachmentDraft, CaseDraft, Contact, ReceivedBy
from bot.services.deadlines import WorkingCalendar
from bot.services.numbers import PAGE_MAX, whole_number
from bot.services.teams import TeamDirectory
from bot.store.models import Case, CaseKind, Channel, utcnow
from flows.clerk import InTeamGroup, acting_clerk
from flows.common import (
    UnderAccessibleMessage,
    acknowledge_later,
    attachment_of,
    cancel_acknowledgement,
    category_keyboard,
    eldership_keyboard,
    kind_keyboard,
    shown,
    too_big_to_keep,
)

log = logging.getLogger(__name__)

router = Router(name="register")
router.callback_query.filter(UnderAccessibleMessage())
router.message.filter(InTeamGroup())
router.callback_query.filter(InTeamGroup())

DESCRIPTION, NAME, ADDRESS, MAX_FILES = CaseDraft.DESCRIPTION, CaseDraft.NAME, CaseDraft.ADDRESS, CaseDraft.MAX_FILES
WHOLE_DISTRICT = "-"


class Register(StatesGroup):
    received_by = State()
    kind = State()
    category = State()
    eldership = State()
    description = State()
    files = State()
    name = State()
    answer_by = State()
    detail = State()  # the phone number, e-mail or postal address for the answer
    confirm = State()


class Reg(CallbackData, prefix="rg"):
    action: str  # came | kind | cat | eld | page | files_done | answer | submit | cancel
    value: str = ""


class Draft(BaseModel):
    """What the clerk has entered so far (stored in the FSM data as JSON)."""

    received_by: ReceivedBy | None = None
    kind: CaseKind | None = None
    category: str | None = None
    eldership: str | None = None  # None: the whole district
    description: str = ""
    files: list[AttachmentDraft] = Field(default_factory=list)
    name: str = ""
    answer_by: AnswerBy | None = None
    phone: str | None = None
    email: str | None = None
    address: str | None = None  # postal

    def contact(self) -> Contact:
        assert self.answer_by is not None
        return Contact(name=self.name, answer_by=self.answer_by, phone=self.phone, email=self.email, address=self.address)


async def _load(state: FSMContext) -> Draft:
    return Draft.model_validate((await state.get_data()).get("draft") or {})


async def _save(state: FSMContext, draft: Draft) -> None:
    await state.update_data(draft=draft.model_dump(mode="json"))


# --- keyboards -----------------------------------------------------------------------------


def _with_cancel(builder: InlineKeyboardBuilder, *sizes: int) -> InlineKeyboardMarkup:
    builder.button(text=_("✖️ Cancel"), callback_data=Reg(action="cancel"))
    builder.adjust(*sizes, 1)
    return builder.as_markup()


def _cancel_only() -> InlineKeyboardMarkup:
    return _with_cancel(InlineKeyboardBuilder())


def _received_by_keyboard() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    labels = {
        ReceivedBy.PHONE: _("📞 By phone"),
        ReceivedBy.EMAIL: _("✉️ By e-mail"),
        ReceivedBy.POST: _("📮 By post"),
        ReceivedBy.DESK: _("🏢 At the front desk"),
    }
    for value, label in labels.items():
        builder.button(text=label, callback_data=Reg(action="came", value=value))
    return _with_cancel(builder, 2, 2)


def _kind_keyboard() -> InlineKeyboardMarkup:
    return kind_keyboard(lambda kind: Reg(action="kind", value=kind), Reg(action="cancel"))


def _category_keyboard(config: Config, locale: str) -> InlineKeyboardMarkup:
    return category_keyboard(config, locale, lambda category_id: Reg(action="cat", value=category_id), Reg(action="cancel"))


def _eldership_keyboard(config: Config, locale: str, page: int) -> InlineKeyboardMarkup:
    return eldership_keyboard(
        config, locale, page,
        pick=lambda eldership_id: Reg(action="eld", value=eldership_id),
        turn=lambda target: Reg(action="page", value=str(target)),
        extra=[(_("🗺 Whole district"), Reg(action="eld", value=WHOLE_DISTRICT)), (_("✖️ Cancel"), Reg(action="cancel"))],
    )  # fmt: skip


def _files_keyboard(count: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("✅ Done") if count else _("⏭ No files"), callback_data=Reg(action="files_done"))
    return _with_cancel(builder, 1)


def _answer_by_keyboard() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    labels = {AnswerBy.PHONE: _("📞 By phone"), AnswerBy.EMAIL: _("✉️ By e-mail"), AnswerBy.POST: _("📮 By post"), AnswerBy.IN_PERSON: _("🤝 In person")}
    for value, label in labels.items():
        builder.button(text=label, callback_data=Reg(action="answer", value=value))
    return _with_cancel(builder, 2, 2)


def _summary_keyboard() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("✅ Register the case"), callback_data=Reg(action="submit"))
    return _with_cancel(builder, 1)


# --- texts ---------------------------------------------------------------------------------


def _eldership_name(config: Config, locale: str, eldership_id: str | None) -> str:
    entry = config.municipality.eldership_by_id.get(eldership_id or "")
    return escape(entry.get(locale)) if entry else _("whole district")


def _summary(draft: Draft, config: Config, locale: str) -> str:
    assert draft.kind is not None and draft.category is not None and draft.received_by is not None and draft.answer_by is not None
    details = " · ".join(escape(value) for value in (draft.phone, draft.email, draft.address) if value)
    answer = _("Answer {how}").format(how=texts.answer_by_label(draft.answer_by)) + (f": {details}" if details else "")
    return "\n".join([
        _("<b>Please check the case before registering it</b>"),
        "",
        _("Received {how}").format(how=texts.received_by_label(draft.received_by)),
        _("Kind: {kind}").format(kind=texts.kind_label(draft.kind)),
        _("Category: {name}").format(name=escape(config.municipality.category_by_id[draft.category].get(locale))),
        _("Eldership: {name}").format(name=_eldership_name(config, locale, draft.eldership)),
        _("Files: {count}").format(count=len(draft.files)),
        _("Person: {name} (no Telegram)").format(name=escape(draft.name)),
        answer,
        "",
        escape(texts.shorten(draft.description, 1500)),
    ])  # fmt: skip


def _confirmation(case: Case, here: int, calendar: WorkingCalendar, teams: TeamDirectory, config: Config) -> str:
    today = calendar.local_date(utcnow())
    left = calendar.working_days_left(today, case.due)
    team = teams.get(case.team_id)
    team_name = escape(team.name.get(config.settings.admin_locale))
    lines = [
        _("✅ Case <b>{number}</b> registered.").format(number=case.number),
        _("Handled by: {team}").format(team=team_name),
        _("Deadline: {date} ({left})").format(date=texts.day(case.due), left=texts.days_left(today, case.due, left)),
    ]
    if teams.chat_of(team) != here:
        lines.append(_("The routing rules sent it to {team}: its card is in that team's group.").format(team=team_name))
    lines += ["", _("Tell the person the case number and the deadline. When the case is closed, record how the answer was given.")]
    return "\n".join(lines)


# --- moving between steps ------------------------------------------------------------------


async def _ask(step: State, message: Message, state: FSMContext, config: Config, i18n: I18n) -> None:
    """Ask the question of `step` (in the clerk's topic) and wait for its answer."""
    await state.set_state(step)
    locale = i18n.current_locale
    if step == Register.received_by:
        await message.answer(_("<b>Registering a case</b> that came outside Telegram. How did it come in?"), reply_markup=_received_by_keyboard())
    elif step == Register.kind:
        await message.answer(_("What kind of case is it?"), reply_markup=_kind_keyboard())
    elif step == Register.category:
        await message.answer(_("What is it about?"), reply_markup=_category_keyboard(config, locale))
    elif step == Register.eldership:
        await message.answer(_("Which eldership does it concern?"), reply_markup=_eldership_keyboard(config, locale, 0))
    elif step == Register.description:
        await message.answer(
            _(
                "Write the matter as the person put it ({min} to {max} character).",
                "Write the matter as the person put it ({min} to {max} characters).",
                DESCRIPTION.max,
            ).format(min=DESCRIPTION.min, max=DESCRIPTION.max),
            reply_markup=_cancel_only(),
        )
    elif step == Register.files:
        await message.answer(
            _(
                "Send photos or scanned documents (up to {max} file), or press “No files”.",
                "Send photos or scanned documents (up to {max} files), or press “No files”.",
                MAX_FILES,
            ).format(max=MAX_FILES),
            reply_markup=_files_keyboard(0),
        )
    elif step == Register.name:
        await message.answer(_("The person's name and surname?"), reply_markup=_cancel_only())
    elif step == Register.answer_by:
        await message.answer(_("How is the person to be answered?"), reply_markup=_answer_by_keyboard())
    elif step == Register.detail:
        draft = await _load(state)
        assert draft.answer_by is not None, "the step before chose it"
        question = {
            AnswerBy.PHONE: _("The person's phone number?"),
            AnswerBy.EMAIL: _("The person's e-mail address?"),
            AnswerBy.POST: _("The person's postal address?"),
        }[draft.answer_by]
        await message.answer(question, reply_markup=_cancel_only())
    elif step == Register.confirm:
        await message.answer(_summary(await _load(state), config, locale), reply_markup=_summary_keyboard())


async def _chosen(query: CallbackQuery, text: str) -> None:
    """The question answered by a button shows the choice, without its buttons."""
    await query.answer()
    with contextlib.suppress(TelegramBadRequest):  # already edited (the same button pressed twice)
        await shown(query).edit_text(text)


# --- entering and leaving ------------------------------------------------------------------


@router.message(Command("register"))
async def start_registration(message: Message, state: FSMContext, teams: TeamDirectory, config: Config, i18n: I18n) -> None:
    if await acting_clerk(message, None, teams) is None:
        return
    await state.clear()
    await _save(state, Draft())
    await _ask(Register.received_by, message, state, config, i18n)


@router.callback_query(StateFilter(Register), Reg.filter(F.action == "cancel"))
async def cancel_button(query: CallbackQuery, state: FSMContext) -> None:
    await state.clear()
    await _chosen(query, _("Registration cancelled. Nothing was stored."))


@router.message(StateFilter(Register), Command("cancel"))
async def cancel_command(message: Message, state: FSMContext) -> None:
    await state.clear()
    await message.reply(_("Registration cancelled. Nothing was stored."))


# --- the steps -----------------------------------------------------------------------------


@router.callback_query(StateFilter(Register.received_by), Reg.filter(F.action == "came"))
async def received_by_chosen(query: CallbackQuery, callback_data: Reg, state: FSMContext, config: Config, i18n: I18n) -> None:
    if callback_data.value not in ReceivedBy.__members__.values():
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    draft = await _load(state)
    draft.received_by = ReceivedBy(callback_data.value)
    await _save(state, draft)
    await _chosen(query, _("Received {how}").format(how=texts.received_by_label(draft.received_by)))
    await _ask(Register.kind, shown(query), state, config, i18n)


@router.callback_query(StateFilter(Register.kind), Reg.filter(F.action == "kind"))
async def kind_chosen(query: CallbackQuery, callback_data: Reg, state: FSMContext, config: Config, i18n: I18n) -> None:
    if callback_data.value not in CaseKind.__members__.values():
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    draft = await _load(state)
    draft.kind = CaseKind(callback_data.value)
    await _save(state, draft)
    await _chosen(query, _("Kind: {kind}").format(kind=texts.kind_label(draft.kind)))
    await _ask(Register.category, shown(query), state, config, i18n)


@router.callback_query(StateFilter(Register.category), Reg.filter(F.action == "cat"))
async def category_chosen(query: CallbackQuery, callback_data: Reg, state: FSMContext, config: Config, i18n: I18n) -> None:
    category = config.municipality.category_by_id.get(callback_data.value)
    if category is None:
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    draft = await _load(state)
    draft.category = category.id
    await _save(state, draft)
    await _chosen(query, _("Category: {name}").format(name=escape(category.get(i18n.current_locale))))
    await _ask(Register.eldership, shown(query), state, config, i18n)


@router.callback_query(StateFilter(Register.eldership), Reg.filter(F.action == "page"))
async def eldership_page(query: CallbackQuery, callback_data: Reg, config: Config, i18n: I18n) -> None:
    page = whole_number(callback_data.value, PAGE_MAX)
    if page is None:
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    await query.answer()
    await shown(query).edit_reply_markup(reply_markup=_eldership_keyboard(config, i18n.current_locale, page))


@router.callback_query(StateFilter(Register.eldership), Reg.filter(F.action == "eld"))
async def eldership_chosen(query: CallbackQuery, callback_data: Reg, state: FSMContext, config: Config, i18n: I18n) -> None:
    value = callback_data.value
    if value != WHOLE_DISTRICT and value not in config.municipality.eldership_by_id:
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    draft = await _load(state)
    draft.eldership = None if value == WHOLE_DISTRICT else value
    await _save(state, draft)
    await _chosen(query, _("Eldership: {name}").format(name=_eldership_name(config, i18n.current_locale, draft.eldership)))
    await _ask(Register.description, shown(query), state, config, i18n)


@router.message(StateFilter(Register.description), F.text, ~F.text.startswith("/"))
async def description_given(message: Message, state: FSMContext, config: Config, i18n: I18n) -> None:
    text = (message.text or "").strip()
    if DESCRIPTION.problem(text):
        await message.reply(
            _("Please write {min} to {max} character.", "Please write {min} to {max} characters.", DESCRIPTION.max).format(
                min=DESCRIPTION.min, max=DESCRIPTION.max
            ),
            reply_markup=_cancel_only(),
        )
        return
    draft = await _load(state)
    draft.description = text
    await _save(state, draft)
    await _ask(Register.files, message, state, config, i18n)


@router.message(StateFilter(Register.files), F.photo | F.document)
async def file_given(message: Message, state: FSMContext, bot: Bot, i18n: I18n) -> None:
    draft = await _load(state)
    if len(draft.files) >= MAX_FILES:
        await message.reply(
            _(
                "At most {max} file; this one was not added. Press “Done” to continue.",
                "At most {max} files; this one was not added. Press “Done” to continue.",
                MAX_FILES,
            ).format(max=MAX_FILES)
        )
        return
    if too_big_to_keep(message):
        await message.reply(_("This file is larger than 20 MB, more than a bot can accept; it was not added."))
        return
    draft.files.append(attachment_of(message))
    await _save(state, draft)
    locale, chat_id = i18n.current_locale, message.chat.id
    thread = message.message_thread_id if message.is_topic_message else None

    async def acknowledge() -> None:  # once, after the last file of an album
        count = len((await _load(state)).files)
        with i18n.context(), i18n.use_locale(locale):
            text = _("{count} file attached.", "{count} files attached.", count).format(count=count)
            await bot.send_message(chat_id, text, message_thread_id=thread, reply_markup=_files_keyboard(count))

    acknowledge_later(("register", chat_id, thread, message.from_user.id if message.from_user else 0), acknowledge)


@router.callback_query(StateFilter(Register.files), Reg.filter(F.action == "files_done"))
async def files_done(query: CallbackQuery, state: FSMContext, config: Config, i18n: I18n) -> None:
    thread = shown(query).message_thread_id if shown(query).is_topic_message else None
    cancel_acknowledgement(("register", shown(query).chat.id, thread, query.from_user.id))
    count = len((await _load(state)).files)
    await _chosen(query, _("Files: {count}").format(count=count))
    await _ask(Register.name, shown(query), state, config, i18n)


@router.message(StateFilter(Register.name), F.text, ~F.text.startswith("/"))
async def name_given(message: Message, state: FSMContext, config: Config, i18n: I18n) -> None:
    name = " ".join((message.text or "").split())
    if NAME.problem(name):
        await message.reply(
            _("Please write a name of {min} to {max} character.", "Please write a name of {min} to {max} characters.", NAME.max).format(
                min=NAME.min, max=NAME.max
            ),
            reply_markup=_cancel_only(),
        )
        return
    draft = await _load(state)
    draft.name = name
    await _save(state, draft)
    await _ask(Register.answer_by, message, state, config, i18n)


@router.callback_query(StateFilter(Register.answer_by), Reg.filter(F.action == "answer"))
async def answer_by_chosen(query: CallbackQuery, callback_data: Reg, state: FSMContext, config: Config, i18n: I18n) -> None:
    if callback_data.value not in AnswerBy.__members__.values():
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    draft = await _load(state)
    draft.answer_by = AnswerBy(callback_data.value)
    draft.phone = draft.email = draft.address = None
    await _save(state, draft)
    await _chosen(query, _("Answer {how}").format(how=texts.answer_by_label(draft.answer_by)))
    await _ask(Register.confirm if draft.answer_by is AnswerBy.IN_PERSON else Register.detail, shown(query), state, config, i18n)


@router.message(StateFilter(Register.detail), F.text, ~F.text.startswith("/"))
async def detail_given(message: Message, state: FSMContext, config: Config, i18n: I18n) -> None:
    value = " ".join((message.text or "").split())
    draft = await _load(state)
    if draft.answer_by is AnswerBy.PHONE:
        if CaseDraft.phone_problem(value):
            await message.reply(_("This does not look like a phone number; please write it with digits, e.g. +370 600 12345."), reply_markup=_cancel_only())
            return
        draft.phone = value
    elif draft.answer_by is AnswerBy.EMAIL:
        if CaseDraft.email_problem(value):
            await message.reply(_("This does not look like an e-mail address, e.g. name@example.lt."), reply_markup=_cancel_only())
            return
        draft.email = value
    else:
        if ADDRESS.problem(value):
            await message.reply(
                _(
                    "Please write a postal address of {min} to {max} character.", "Please write a postal address of {min} to {max} characters.", ADDRESS.max
                ).format(min=ADDRESS.min, max=ADDRESS.max),
                reply_markup=_cancel_only(),
            )
            return
        draft.address = value
    await _save(state, draft)
    await _ask(Register.confirm, message, state, config, i18n)


@router.callback_query(Reg.filter(F.action == "submit"))
async def submit(
    query: CallbackQuery, state: FSMContext, event_update: Update, queries: CaseQueries, commands: CaseCommands, teams: TeamDirectory,
    calendar: WorkingCalendar, config: Config,
) -> None:  # fmt: skip
    """Register the case; the same update delivered again finds its case instead of a new one."""
    assert isinstance(shown(query), Message)
    if await state.get_state() != Register.confirm.state:
        existing = await queries.by_update(event_update.update_id)
        if existing is None:
            await query.answer(_("This registration was started by another clerk, or it has ended."), show_alert=True)
            return
        await query.answer()
        await shown(query).answer(_confirmation(existing, shown(query).chat.id, calendar, teams, config))
        return
    clerk = await acting_clerk(query, None, teams)
    if clerk is None:
        return
    draft = await _load(state)
    assert draft.kind is not None and draft.category is not None and draft.received_by is not None
    case_draft = CaseDraft(
        resident_id=None, locale=config.settings.admin_locale, kind=draft.kind, category_id=draft.category, eldership_id=draft.eldership,
        description=draft.description, attachments=tuple(draft.files), channel=Channel.STAFF, contact=draft.contact(),
    )  # fmt: skip
    opened = await commands.open(case_draft, utcnow(), update_id=event_update.update_id, registered_by=RegisteredBy(clerk, draft.received_by))
    await state.clear()
    log.info("case registered by a clerk", extra={"case": opened.case.number, "user_id": clerk.id, "team": opened.case.team_id})
    await query.answer()
    with contextlib.suppress(TelegramBadRequest):  # already without buttons
        await shown(query).edit_reply_markup(reply_markup=None)
    await shown(query).answer(_confirmation(opened.case, shown(query).chat.id, calendar, teams, config))


# --- anything else during the steps --------------------------------------------------------


@router.message(
    StateFilter(Register.received_by, Register.kind, Register.category, Register.eldership, Register.answer_by, Register.confirm), ~F.text.startswith("/")
)
async def use_the_buttons(message: Message, state: FSMContext, config: Config, i18n: I18n) -> None:
    """The question again, with its buttons: the one above may be far up in a busy group, or was
    never delivered while Telegram failed."""
    await message.reply(_("Please answer with the buttons of the question below, or “✖️ Cancel”."))
    step = (await state.get_state() or "").rpartition(":")[2]  # "Register:kind" → "kind"
    await _ask(getattr(Register, step), message, state, config, i18n)


@router.message(StateFilter(Register.description, Register.name, Register.detail), ~F.text.startswith("/"))
async def text_expected(message: Message) -> None:
    await message.reply(_("Please write it as a text, or press “✖️ Cancel”."), reply_markup=_cancel_only())


@router.message(StateFilter(Register.files), ~F.text.startswith("/"))
async def files_expected(message: Message, state: FSMContext) -> None:
    count = len((await _load(state)).files)
    await message.reply(_("Send photos or documents, or press the button."), reply_markup=_files_keyboard(count))


@router.callback_query(Reg.filter())
async def not_this_clerks(query: CallbackQuery) -> None:
    """A registration button pressed by another clerk, or after the registration ended."""
    await query.answer(_("This registration was started by another clerk, or it has ended."), show_alert=True)
