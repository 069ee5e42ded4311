"""Cases that came by phone, e-mail, post or at the front desk: a clerk registers them in a team
group with /register, step by step (how it came → kind → category → eldership → description →
files → the person's name → how to answer them → their phone, e-mail or postal address →
summary). The case gets the same number, deadline, routing, card and trail as a resident's; the
routing rules may send it to another team's group. Its person has no Telegram: the clerks answer
outside it and record how when closing (flows/clerk.py).

The steps are a table (`FORM`) run by the form engine (flows/forms.py). The draft (`Draft`,
typed) lives in the FSM storage per clerk and topic; "✖️ Cancel" or /cancel leaves at any step.
Only a clerk of a team in the group may register (as for the desk's commands).
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
from pydantic import Field

from bot.config import Config
from bot.keyboards import InlineKeyboardBuilder
from bot.services import texts
from bot.services.case_commands import CaseCommands, RegisteredBy
from bot.services.case_queries import CaseQueries
from bot.services.cases import AnswerBy, AttachmentDraft, CaseDraft, Contact, ReceivedBy
from bot.services.deadlines import WorkingCalendar
from bot.services.teams import TeamDirectory
from bot.store.models import Case, CaseKind, Channel, utcnow
from flows.case_steps import category_step, eldership_name, eldership_step, kind_step
from flows.clerk import InTeamGroup, acting_clerk
from flows.common import (
    UnderAccessibleMessage,
    acknowledge_later,
    attachment_of,
    cancel_acknowledgement,
    shown,
    too_big_to_keep,
)
from flows.forms import Form, FormDraft, Refused, Step, Turn, show_choice

log = logging.getLogger(__name__)

router = Router(name="register")
router.callback_query.filter(UnderAccessibleMessage())
router.message.filter(InTeamGroup())
router.callback_query.filter(InTeamGroup())

DESCRIPTION, NAME, ADDRESS, MAX_FILES = (
    CaseDraft.DESCRIPTION,
    CaseDraft.NAME,
    CaseDraft.ADDRESS,
    CaseDraft.MAX_FILES,
)


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


class Draft(FormDraft):
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
        return Contact(
            name=self.name, answer_by=self.answer_by, phone=self.phone, email=self.email, address=self.address
        )


# --- keyboards -----------------------------------------------------------------------------


def _with_cancel(builder: InlineKeyboardBuilder, *sizes: int) -> InlineKeyboardMarkup:
    builder.button(text=_("✖️ Cancel"), callback_data=Reg(action="cancel"))
    builder.adjust(*sizes, 1)
    return builder.as_markup()


def _cancel_only(turn: Turn[Draft] | None = None) -> InlineKeyboardMarkup:
    return _with_cancel(InlineKeyboardBuilder())


def _received_by_keyboard(turn: Turn[Draft]) -> InlineKeyboardMarkup:
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


def _files_keyboard(count: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("✅ Done") if count else _("⏭ No files"), callback_data=Reg(action="files_done"))
    return _with_cancel(builder, 1)


def _answer_by_keyboard(turn: Turn[Draft]) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    labels = {
        AnswerBy.PHONE: _("📞 By phone"),
        AnswerBy.EMAIL: _("✉️ By e-mail"),
        AnswerBy.POST: _("📮 By post"),
        AnswerBy.IN_PERSON: _("🤝 In person"),
    }
    for value, label in labels.items():
        builder.button(text=label, callback_data=Reg(action="answer", value=value))
    return _with_cancel(builder, 2, 2)


# --- texts ---------------------------------------------------------------------------------


def _summary(turn: Turn[Draft]) -> str:
    draft, config, locale = turn.draft, turn.config, turn.locale
    assert (
        draft.kind is not None
        and draft.category is not None
        and draft.received_by is not None
        and draft.answer_by is not None
    )
    details = " · ".join(escape(value) for value in (draft.phone, draft.email, draft.address) if value)
    answer = _("Answer {how}").format(how=texts.answer_by_label(draft.answer_by)) + (
        f": {details}" if details else ""
    )
    return "\n".join(
        [
            _("<b>Please check the case before registering it</b>"),
            "",
            _("Received {how}").format(how=texts.received_by_label(draft.received_by)),
            _("Kind: {kind}").format(kind=texts.kind_label(draft.kind)),
            _("Category: {name}").format(
                name=escape(config.municipality.category_by_id[draft.category].get(locale))
            ),
            _("Eldership: {name}").format(
                name=eldership_name(config, locale, draft.eldership, _("whole district"))
            ),
            _("Files: {count}").format(count=len(draft.files)),
            _("Person: {name} (no Telegram)").format(name=escape(draft.name)),
            answer,
            "",
            escape(texts.shorten(draft.description, 1500)),
        ]
    )


def _confirmation(
    case: Case, here: int, calendar: WorkingCalendar, teams: TeamDirectory, config: Config
) -> str:
    today = calendar.local_date(utcnow())
    left = calendar.working_days_left(today, case.due)
    team = teams.get(case.team_id)
    team_name = escape(team.name.get(config.settings.admin_locale))
    lines = [
        _("✅ Case <b>{number}</b> registered.").format(number=case.number),
        _("Handled by: {team}").format(team=team_name),
        _("Deadline: {date} ({left})").format(
            date=texts.day(case.due), left=texts.days_left(today, case.due, left)
        ),
    ]
    if teams.chat_of(team) != here:
        lines.append(
            _("The routing rules sent it to {team}: its card is in that team's group.").format(team=team_name)
        )
    lines += [
        "",
        _(
            "Tell the person the case number and the deadline. When the case is closed, record how the answer was given."
        ),
    ]
    return "\n".join(lines)


# --- the steps -----------------------------------------------------------------------------


def _chosen(value: str | None) -> str:
    assert value is not None, "shown once the button filled it"
    return value


def _received_by(value: str, turn: Turn[Draft]) -> ReceivedBy:
    if value not in ReceivedBy.__members__.values():
        raise Refused
    return ReceivedBy(value)


def _description(text: str, turn: Turn[Draft]) -> str:
    text = text.strip()
    if DESCRIPTION.problem(text):
        raise Refused(
            _(
                "Please write {min} to {max} character.",
                "Please write {min} to {max} characters.",
                DESCRIPTION.max,
            ).format(min=DESCRIPTION.min, max=DESCRIPTION.max)
        )
    return text


def _name(text: str, turn: Turn[Draft]) -> str:
    name = " ".join(text.split())
    if NAME.problem(name):
        raise Refused(
            _(
                "Please write a name of {min} to {max} character.",
                "Please write a name of {min} to {max} characters.",
                NAME.max,
            ).format(min=NAME.min, max=NAME.max)
        )
    return name


def _answer_by(value: str, turn: Turn[Draft]) -> AnswerBy:
    if value not in AnswerBy.__members__.values():
        raise Refused
    return AnswerBy(value)


def _answer_by_chosen(draft: Draft, answer_by: AnswerBy) -> None:
    draft.answer_by = answer_by
    draft.phone = draft.email = draft.address = None  # a detail given for another way goes


def _detail_question(turn: Turn[Draft]) -> str:
    assert turn.draft.answer_by is not None, "the step before chose it"
    return {
        AnswerBy.PHONE: _("The person's phone number?"),
        AnswerBy.EMAIL: _("The person's e-mail address?"),
        AnswerBy.POST: _("The person's postal address?"),
    }[turn.draft.answer_by]


def _detail(text: str, turn: Turn[Draft]) -> str:
    value = " ".join(text.split())
    if turn.draft.answer_by is AnswerBy.PHONE and CaseDraft.phone_problem(value):
        raise Refused(
            _("This does not look like a phone number; please write it with digits, e.g. +370 600 12345.")
        )
    if turn.draft.answer_by is AnswerBy.EMAIL and CaseDraft.email_problem(value):
        raise Refused(_("This does not look like an e-mail address, e.g. name@example.lt."))
    if turn.draft.answer_by is AnswerBy.POST and ADDRESS.problem(value):
        raise Refused(
            _(
                "Please write a postal address of {min} to {max} character.",
                "Please write a postal address of {min} to {max} characters.",
                ADDRESS.max,
            ).format(min=ADDRESS.min, max=ADDRESS.max)
        )
    return value


def _detail_given(draft: Draft, value: str) -> None:
    if draft.answer_by is AnswerBy.PHONE:
        draft.phone = value
    elif draft.answer_by is AnswerBy.EMAIL:
        draft.email = value
    else:
        draft.address = value


def _as_text() -> str:
    return _("Please write it as a text, or press “✖️ Cancel”.")


FORM: Form[Draft] = Form(
    states=Register,
    draft=Draft,
    button=Reg,
    steps=[
        Step(
            Register.received_by,
            lambda turn: _("<b>Registering a case</b> that came outside Telegram. How did it come in?"),
            keyboard=_received_by_keyboard,
            choice="came",
            parse=_received_by,
            field="received_by",
            chosen=lambda turn: _("Received {how}").format(
                how=texts.received_by_label(_chosen(turn.draft.received_by))
            ),
        ),
        kind_step(Register.kind, lambda: _("What kind of case is it?")),
        category_step(Register.category),
        eldership_step(
            Register.eldership,
            whole_district=lambda: _("🗺 Whole district"),
            unnamed=lambda: _("whole district"),
        ),
        Step(
            Register.description,
            lambda turn: _(
                "Write the matter as the person put it ({min} to {max} character).",
                "Write the matter as the person put it ({min} to {max} characters).",
                DESCRIPTION.max,
            ).format(min=DESCRIPTION.min, max=DESCRIPTION.max),
            keyboard=_cancel_only,
            parse=_description,
            field="description",
            other=_as_text,
        ),
        Step(
            Register.files,
            lambda turn: _(
                "Send photos or scanned documents (up to {max} file), or press “No files”.",
                "Send photos or scanned documents (up to {max} files), or press “No files”.",
                MAX_FILES,
            ).format(max=MAX_FILES),
            keyboard=lambda turn: _files_keyboard(len(turn.draft.files)),
            other=lambda: _("Send photos or documents, or press the button."),
        ),
        Step(
            Register.name,
            lambda turn: _("The person's name and surname?"),
            keyboard=_cancel_only,
            parse=_name,
            field="name",
            other=_as_text,
        ),
        Step(
            Register.answer_by,
            lambda turn: _("How is the person to be answered?"),
            keyboard=_answer_by_keyboard,
            choice="answer",
            parse=_answer_by,
            fill=_answer_by_chosen,
            chosen=lambda turn: _("Answer {how}").format(
                how=texts.answer_by_label(_chosen(turn.draft.answer_by))
            ),
            then=lambda draft: Register.confirm if draft.answer_by is AnswerBy.IN_PERSON else Register.detail,
        ),
        Step(
            Register.detail,
            _detail_question,
            keyboard=_cancel_only,
            parse=_detail,
            fill=_detail_given,
            other=_as_text,
        ),
    ],
    summary_state=Register.confirm,
    summary=_summary,
    submit_label=lambda: _("✅ Register the case"),
    use_the_buttons=lambda: _("Please answer with the buttons of the question below, or “✖️ Cancel”."),
    cancelled=lambda: _("Registration cancelled. Nothing was stored."),
    in_group=True,
)


# --- entering, and the steps the table cannot say: files ----------------------------------


@router.message(Command("register"))
async def start_registration(
    message: Message, state: FSMContext, teams: TeamDirectory, config: Config
) -> None:
    if await acting_clerk(message, None, teams) is None:
        return
    await FORM.start(message, state, config)


@router.message(StateFilter(Register.files), F.photo | F.document)
async def file_given(message: Message, state: FSMContext, bot: Bot, i18n: I18n) -> None:
    draft = await FORM.load(state)
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
        await message.reply(
            _("This file is larger than 20 MB, more than a bot can accept; it was not added.")
        )
        return
    draft.files.append(attachment_of(message))
    await FORM.save(state, draft)
    locale, chat_id = i18n.current_locale, message.chat.id
    thread = message.message_thread_id if message.is_topic_message else None

    async def acknowledge() -> None:  # once, after the last file of an album
        count = len((await FORM.load(state)).files)
        with i18n.context(), i18n.use_locale(locale):
            text = _("{count} file attached.", "{count} files attached.", count).format(count=count)
            await bot.send_message(
                chat_id, text, message_thread_id=thread, reply_markup=_files_keyboard(count)
            )

    acknowledge_later(
        ("register", chat_id, thread, message.from_user.id if message.from_user else 0), acknowledge
    )


@router.callback_query(StateFilter(Register.files), Reg.filter(F.action == "files_done"))
async def files_done(query: CallbackQuery, state: FSMContext, config: Config) -> None:
    thread = shown(query).message_thread_id if shown(query).is_topic_message else None
    cancel_acknowledgement(("register", shown(query).chat.id, thread, query.from_user.id))
    count = len((await FORM.load(state)).files)
    await show_choice(query, _("Files: {count}").format(count=count))
    await FORM.advance(Register.files, shown(query), state, config)


@router.callback_query(Reg.filter(F.action == "submit"))
async def submit(
    query: CallbackQuery,
    state: FSMContext,
    event_update: Update,
    queries: CaseQueries,
    commands: CaseCommands,
    teams: TeamDirectory,
    calendar: WorkingCalendar,
    config: Config,
) -> None:
    """Register the case; the same update delivered again finds its case instead of a new one."""
    assert isinstance(shown(query), Message)
    if await state.get_state() != Register.confirm.state:
        existing = await queries.by_update(event_update.update_id)
        if existing is None:
            await query.answer(
                _("This registration was started by another clerk, or it has ended."), show_alert=True
            )
            return
        await query.answer()
        await shown(query).answer(_confirmation(existing, shown(query).chat.id, calendar, teams, config))
        return
    clerk = await acting_clerk(query, None, teams)
    if clerk is None:
        return
    draft = await FORM.load(state)
    assert draft.kind is not None and draft.category is not None and draft.received_by is not None
    case_draft = CaseDraft(
        resident_id=None,
        locale=config.settings.admin_locale,
        kind=draft.kind,
        category_id=draft.category,
        eldership_id=draft.eldership,
        description=draft.description,
        attachments=tuple(draft.files),
        channel=Channel.STAFF,
        contact=draft.contact(),
    )
    opened = await commands.open(
        case_draft,
        utcnow(),
        update_id=event_update.update_id,
        registered_by=RegisteredBy(clerk, draft.received_by),
    )
    await state.clear()
    log.info(
        "case registered by a clerk",
        extra={"case": opened.case.number, "user_id": clerk.id, "team": opened.case.team_id},
    )
    await query.answer()
    with contextlib.suppress(TelegramBadRequest):  # already without buttons
        await shown(query).edit_reply_markup(reply_markup=None)
    await shown(query).answer(_confirmation(opened.case, shown(query).chat.id, calendar, teams, config))


FORM.attach(router)


@router.callback_query(Reg.filter())
async def not_this_clerks(query: CallbackQuery) -> None:
    """A registration button pressed by another clerk, or after the registration ended."""
    await query.answer(_("This registration was started by another clerk, or it has ended."), show_alert=True)
