"""The desk in the team groups (texts in ADMIN_LOCALE).

Card buttons change a case through the case commands (only what fits its status, only for the case's
team); a message in a case's topic, or a reply to its card or to a relayed message, goes to the
resident; `!text` and /note are internal notes. A prompt (the final answer, a reason) waits for
the clerk who pressed the button, in that topic, for PROMPT_MINUTES; in a group without topics
the answer is a reply to the prompt.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from html import escape
from typing import Any, TypeVar

from aiogram import F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject, Filter, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, ReactionTypeEmoji
from aiogram.utils.i18n import gettext as _

from bot.config import Config
from bot.keyboards import InlineKeyboardBuilder
from bot.municipality import Team
from bot.services import texts
from bot.services.case_commands import (
    TRANSITIONS,
    Action,
    CaseCommands,
    Clerk,
    GroupMessage,
    NotAllowed,
    Refusal,
    answered_outside_telegram,
    records_how_answered,
)
from bot.services.case_queries import CaseQueries
from bot.services.cases import AnswerBy, parse_case_number
from bot.services.deadlines import WorkingCalendar
from bot.services.groups import ACTION_LABELS, ClerkTexts, DeskAction
from bot.services.numbers import Page, RowId, UserId
from bot.services.prompts import prompt_expired, prompt_expiry
from bot.services.quality import PeriodError, parse_period
from bot.services.roles import Role
from bot.services.schedule import Schedule
from bot.services.teams import TeamDirectory
from bot.store.models import Case, Channel, utcnow
from flows.common import UnderAccessibleMessage, attachment_of, collect_album, drop_buttons, shown
from flows.staff import acted, person_of, refused

log = logging.getLogger(__name__)
T = TypeVar("T")

TEXT_MIN, TEXT_MAX = 3, 3000
PER_PAGE = 10

PROMPTS = {
    Action.EXTEND: lambda: _("{number}: write the reason for the extension. The resident will see it."),
    Action.ANSWER: lambda: _(
        "{number}: write the final answer. It goes to the resident, and the case is closed."
    ),
    Action.PASS: lambda: _(
        "{number}: write why the case goes to {team}. The team and the resident will see it."
    ),
    Action.REDIRECT: lambda: _(
        "{number}: write to which institution the case goes, and why. The resident will see it."
    ),
    Action.REJECT: lambda: _("{number}: write why the case is rejected. The resident will see it."),
    Action.DUPLICATE: lambda: _(
        "{number}: write the number of the case this one duplicates. This case is closed, and its resident follows that one."
    ),
}
# The same for a case whose person has no Telegram (registered by a clerk): nothing is sent.
PROMPTS_OUTSIDE_TELEGRAM = {
    Action.EXTEND: lambda: _(
        "{number}: write the reason for the extension, for the case's record. Tell the person yourself: they have no Telegram."
    ),
    Action.ANSWER: lambda: _(
        "{number}: write the answer given {how}, for the case's record. The case is then closed."
    ),
    Action.PASS: lambda: _("{number}: write why the case goes to {team}. The team will see it."),
    Action.REDIRECT: lambda: _(
        "{number}: write to which institution the case went, and why (told {how}), for the case's record."
    ),
    Action.REJECT: lambda: _("{number}: write why the case is rejected (told {how}), for the case's record."),
    Action.DUPLICATE: lambda: _(
        "{number}: write the number of the case this one duplicates. This case is closed, and its resident follows that one."
    ),
}

# The same for a case that came through Open311: what closes it is published there (status notes).
PROMPTS_OPEN311 = {
    Action.EXTEND: lambda: _(
        "{number}: write the reason for the extension, for the case's record. The Open311 client sees the new deadline."
    ),
    Action.ANSWER: lambda: _(
        "{number}: write the final answer. It is published through Open311, where the person reads it, and the case is closed."
    ),
    Action.PASS: lambda: _("{number}: write why the case goes to {team}. The team will see it."),
    Action.REDIRECT: lambda: _(
        "{number}: write to which institution the case goes, and why. It is published through Open311."
    ),
    Action.REJECT: lambda: _("{number}: write why the case is rejected. It is published through Open311."),
    Action.DUPLICATE: lambda: _(
        "{number}: write the number of the case this one duplicates. This case is closed, and its resident follows that one."
    ),
}


def _prompts(case: Case) -> dict[Action, Callable[[], str]]:
    if answered_outside_telegram(case):
        return PROMPTS_OUTSIDE_TELEGRAM
    return PROMPTS_OPEN311 if case.channel == Channel.OPEN311 else PROMPTS


def _no_telegram() -> str:
    return _(
        "Not sent: the person of this case has no Telegram. Answer them as the card says (phone, e-mail, post or in person), "
        "then close the case recording how the answer was given. Start a message with ! for an internal note."
    )


def _refusal(refused: NotAllowed) -> str:
    """What the clerk is told when the case commands refuse an action."""
    if refused.reason is Refusal.NO_EXTENSION_LEFT:
        return _("The deadline of this case cannot be extended any further.")
    if refused.reason is Refusal.MERGE:
        return str(refused)  # says why, in ADMIN_LOCALE
    if refused.reason in (Refusal.NO_TELEGRAM, Refusal.PROFILE_ERASED):
        return _not_sent(refused)
    return _("This cannot be done with the case now.")


def _not_sent(refused: NotAllowed) -> str:
    """Why a clerk's message or canned answer did not go to the resident."""
    if refused.reason is Refusal.NO_TELEGRAM:
        return _no_telegram()
    return _(
        "Not sent: the resident erased their profile and the case is closed, or its retention period is over."
    )


async def _allowed(query: CallbackQuery, check: Callable[[], T]) -> T | None:
    """What the case commands' `check` gives, or None once the clerk has been shown its refusal."""
    try:
        return check()
    except NotAllowed as refused:
        await query.answer(_refusal(refused), show_alert=True)
        return None


class InTeamGroup(Filter):
    """Updates from a team group (the desk's whole router is scoped to them)."""

    async def __call__(self, event: Message | CallbackQuery, teams: TeamDirectory) -> bool:
        message = event.message if isinstance(event, CallbackQuery) else event
        return message is not None and teams.is_team_chat(message.chat.id)


router = Router(name="clerk")
router.callback_query.filter(UnderAccessibleMessage())
router.message.filter(InTeamGroup())
router.callback_query.filter(InTeamGroup())

# Presses of the desk's buttons from anywhere else (a forwarded card, a forged query).
outside = Router(name="clerk-outside")


class Pending(StatesGroup):
    text = State()  # a reason or the final answer, for the action in the data


class ExtendBy(CallbackData, prefix="dx"):
    case_id: RowId
    days: Page


class PassTo(CallbackData, prefix="dp"):
    case_id: RowId
    team: str


class AssignTo(CallbackData, prefix="da"):
    case_id: RowId
    user_id: UserId


class DeskCancel(CallbackData, prefix="dc"):
    case_id: RowId


class PromptCancel(CallbackData, prefix="dq"):
    """ "Cancel" under a prompt that waits for a text (a reason, the final answer)."""

    case_id: RowId


class UseTemplate(CallbackData, prefix="tp"):
    case_id: RowId
    template: str
    send: bool = False


class OpenPage(CallbackData, prefix="op"):
    page: Page


class AnsweredVia(CallbackData, prefix="dv"):
    """How the answer to a person without Telegram was given, before closing their case."""

    case_id: RowId
    action: Action
    via: AnswerBy


@outside.callback_query(F.data.regexp(r"^(dk|dx|dp|da|dc|dq|tp|op|dv|rg):"))
async def pressed_elsewhere(query: CallbackQuery) -> None:
    log.warning("desk button pressed outside a team group", extra={"user_id": query.from_user.id})
    await query.answer(_("Not allowed here."), show_alert=True)


# --- who acts ------------------------------------------------------------------------------


async def acting_clerk(
    event: Message | CallbackQuery, case: Case | None, teams: TeamDirectory, *, heads_only: bool = False
) -> Clerk | None:
    """The person acting, if they may act on `case` (or, without a case, for a team in this chat);
    otherwise they are told why not (flows.staff: a message once an hour), it is logged, and None
    is returned."""
    message = event if isinstance(event, Message) else event.message
    user = await person_of(event, teams.roles)
    if user is None:
        return None
    assert message is not None
    candidates = [teams.get(case.team_id)] if case is not None else teams.teams_in(message.chat.id)
    roles = [await teams.role(user.id, team) for team in candidates]
    allowed = any(role.assigns for role in roles) if heads_only else any(role.acts for role in roles)
    moved = (
        case is not None and teams.chat_of(candidates[0]) != message.chat.id
    )  # the case lives in another team's group now
    case_id = case.id if case else None
    if moved or not allowed:
        refusal = (
            _("Only the team's head can do this.")
            if heads_only
            else _("Only the team handling this case can do this.")
        )
        if moved and case is not None:
            refusal = moved_away(case, teams)
        await refused(event, user, refusal, teams.roles, case_id=case_id)
        if (
            moved
            and isinstance(event, CallbackQuery)
            and isinstance(event.message, Message)
            and event.message.reply_markup
        ):
            await event.message.edit_reply_markup(reply_markup=None)  # its buttons no longer act here
        return None
    acted(event, user, Role.strongest(roles), case_id=case_id)
    return Clerk(id=user.id, name=user.full_name)


def moved_away(case: Case, teams: TeamDirectory) -> str:
    """Where a case is now, for a clerk acting on it in a group it has left (in ADMIN_LOCALE)."""
    team = teams.get(case.team_id)
    return _(
        "{number} was passed on to {team} and is handled in its group now; nothing was done or sent from here."
    ).format(number=case.number, team=escape(team.name.get(texts.current_locale())))


async def _left_this_topic(message: Message, queries: CaseQueries, teams: TeamDirectory) -> bool:
    """A message in the topic of a case passed on since: the clerk is told where the case is now."""
    if not (message.message_thread_id and message.is_topic_message):
        return False
    case = await queries.by_former_topic(message.chat.id, message.message_thread_id)
    if case is None:
        return False
    # Not in the topic: it is closed, and the bot cannot write there (TOPIC_CLOSED); in the group's main chat, naming the clerk.
    team = teams.get(case.team_id).name.get(texts.current_locale())
    text = _(
        "{name}: {number} was passed on to {team} and is handled in its group now; your message in its old topic was not sent to anyone."
    )
    name = escape(message.from_user.full_name if message.from_user else "?")
    await message.bot.send_message(
        message.chat.id, text.format(name=name, number=case.number, team=escape(team))
    )
    return True


async def case_of(message: Message, queries: CaseQueries) -> Case | None:
    """The case a group message is about: its topic, or the card / relayed message it replies to."""
    if message.message_thread_id and message.is_topic_message:
        case = await queries.by_topic(message.chat.id, message.message_thread_id)
        if case is not None:
            return case
    reply = message.reply_to_message
    if reply is not None and not reply.forum_topic_created:
        return await queries.by_group_message(message.chat.id, reply.message_id)
    return None


# --- buttons -------------------------------------------------------------------------------


@router.callback_query(DeskAction.filter())
async def card_button(
    query: CallbackQuery,
    callback_data: DeskAction,
    queries: CaseQueries,
    commands: CaseCommands,
    teams: TeamDirectory,
    clerk_texts: ClerkTexts,
    state: FSMContext,
    config: Config,
) -> None:
    action = callback_data.action
    found = await queries.get(callback_data.case_id)
    rule = TRANSITIONS[action]
    clerk = await acting_clerk(query, found, teams, heads_only=rule.heads_only)
    if clerk is None:
        return
    try:
        case = commands.check_action(found, action)
    except NotAllowed as refused:
        log.warning(
            "desk action does not fit the case now",
            extra={"user_id": clerk.id, "case_id": callback_data.case_id, "action": action},
        )
        await query.answer(_refusal(refused), show_alert=True)
        return
    if action is Action.EXTEND:
        left = commands.extension_left(case)
        await query.answer()
        await _send_in_case(
            query,
            case,
            _("{number}: by how many working days? At most {max}.").format(number=case.number, max=left),
            _days_keyboard(case, left),
        )
        return
    if action is Action.PASS:
        await query.answer()
        await _send_in_case(
            query,
            case,
            _("{number}: to which team?").format(number=case.number),
            _teams_keyboard(case, teams, config),
        )
        return
    if action is Action.ASSIGN:
        await query.answer()
        keyboard = await _members_keyboard(case, teams.get(case.team_id), teams, commands)
        await _send_in_case(
            query, case, _("{number}: who is responsible?").format(number=case.number), keyboard
        )
        return
    if records_how_answered(case, action):
        await query.answer()
        await _send_in_case(
            query,
            case,
            _("{number}: how was the answer given?").format(number=case.number),
            _answered_via_keyboard(case, action),
        )
        return
    if rule.needs_text:
        await query.answer()
        await _ask(query, state, case, action, config)
        return
    await _act(query, commands, case, action, clerk)


async def _act(
    query: CallbackQuery, commands: CaseCommands, case: Case, action: Action, clerk: Clerk, **details: Any
) -> None:
    try:
        await commands.act(case.id, action, clerk, **details)
    except NotAllowed as refused:
        await query.answer(_refusal(refused), show_alert=True)
        return
    await query.answer(str(ACTION_LABELS[action]))


async def _send_in_case(
    query: CallbackQuery, case: Case, text: str, keyboard: InlineKeyboardMarkup
) -> Message:
    """Something for the clerk who pressed, in the topic where they pressed (clerks go before cards in the lane)."""
    thread = shown(query).message_thread_id if shown(query).is_topic_message else None
    return await query.bot.send_message(
        shown(query).chat.id, text, message_thread_id=thread, reply_markup=keyboard
    )


def _cancel_keyboard(case: Case) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("✖️ Cancel"), callback_data=PromptCancel(case_id=case.id))
    return builder.as_markup()


def _answered_via_keyboard(case: Case, action: Action) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    labels = {
        AnswerBy.PHONE: _("📞 By phone"),
        AnswerBy.EMAIL: _("✉️ By e-mail"),
        AnswerBy.POST: _("📮 By post"),
        AnswerBy.IN_PERSON: _("🤝 In person"),
    }
    for via, label in labels.items():
        builder.button(text=label, callback_data=AnsweredVia(case_id=case.id, action=action, via=via))
    builder.button(text=_("✖️ Cancel"), callback_data=DeskCancel(case_id=case.id))
    builder.adjust(2, 2, 1)
    return builder.as_markup()


def _days_keyboard(case: Case, left: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for days in sorted({d for d in (1, 5, 10, 15, 20) if d <= left} | {left}):
        builder.button(text=str(days), callback_data=ExtendBy(case_id=case.id, days=days))
    builder.button(text=_("✖️ Cancel"), callback_data=DeskCancel(case_id=case.id))
    builder.adjust(6, 1)
    return builder.as_markup()


def _teams_keyboard(case: Case, teams: TeamDirectory, config: Config) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for team in teams.others(teams.get(case.team_id)):
        builder.button(
            text=team.name.get(config.settings.admin_locale),
            callback_data=PassTo(case_id=case.id, team=team.id),
        )
    builder.button(text=_("✖️ Cancel"), callback_data=DeskCancel(case_id=case.id))
    builder.adjust(1)
    return builder.as_markup()


async def _members_keyboard(
    case: Case, team: Team, teams: TeamDirectory, commands: CaseCommands
) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for user_id in commands.assignable(team):
        builder.button(
            text=await teams.member_name(team, user_id),
            callback_data=AssignTo(case_id=case.id, user_id=user_id),
        )
    builder.button(text=_("✖️ Cancel"), callback_data=DeskCancel(case_id=case.id))
    builder.adjust(1)
    return builder.as_markup()


async def _ask(
    query: CallbackQuery, state: FSMContext, case: Case, action: Action, config: Config, **details: Any
) -> None:
    """Prompt for the text; the prompt waits for this clerk, in this topic, for PROMPT_MINUTES."""
    team_name = details.pop("team_name", "")
    prompts = _prompts(case)
    how = texts.answer_by_label(details["answered_via"]) if details.get("answered_via") else ""
    text = prompts[action]().format(number=case.number, team=escape(team_name), how=how)
    text += "\n\n" + _("⏳ Waiting for your answer to {number} ({minutes} min).").format(
        number=case.number, minutes=config.settings.prompt_minutes
    )
    prompt = await _send_in_case(query, case, text, _cancel_keyboard(case))
    await state.set_state(Pending.text)
    await state.set_data(
        {
            "case_id": case.id,
            "action": action,
            "prompt": prompt.message_id,
            "in_topic": bool(prompt.is_topic_message),
            "expires": prompt_expiry(config.settings.prompt_minutes),
            **details,
        }
    )


@router.callback_query(ExtendBy.filter())
async def extend_days(
    query: CallbackQuery,
    callback_data: ExtendBy,
    state: FSMContext,
    queries: CaseQueries,
    commands: CaseCommands,
    teams: TeamDirectory,
    config: Config,
) -> None:
    found = await queries.get(callback_data.case_id)
    if await acting_clerk(query, found, teams) is None or found is None:
        return
    case = await _allowed(query, lambda: commands.check_extension(found, callback_data.days))
    if case is None:
        return
    await query.answer()
    await drop_buttons(query)
    await _ask(query, state, case, Action.EXTEND, config, days=callback_data.days)


@router.callback_query(AnsweredVia.filter())
async def answered_via(
    query: CallbackQuery,
    callback_data: AnsweredVia,
    state: FSMContext,
    queries: CaseQueries,
    commands: CaseCommands,
    teams: TeamDirectory,
    config: Config,
) -> None:
    """How the answer was given (a case without Telegram): then the answer's text, for the record."""
    found = await queries.get(callback_data.case_id)
    if await acting_clerk(query, found, teams) is None or found is None:
        return
    action = callback_data.action
    case = await _allowed(query, lambda: commands.check_how_answered(found, action))
    if case is None:
        return
    await query.answer()
    await drop_buttons(query)
    await _ask(query, state, case, action, config, answered_via=callback_data.via)


@router.callback_query(PassTo.filter())
async def pass_to(
    query: CallbackQuery,
    callback_data: PassTo,
    state: FSMContext,
    queries: CaseQueries,
    commands: CaseCommands,
    teams: TeamDirectory,
    config: Config,
) -> None:
    case = await queries.get(callback_data.case_id)
    if await acting_clerk(query, case, teams) is None or case is None:
        return
    target = await _allowed(query, lambda: commands.check_pass(case, callback_data.team))
    if target is None:
        return
    await query.answer()
    await drop_buttons(query)
    await _ask(
        query,
        state,
        case,
        Action.PASS,
        config,
        team_id=target.id,
        team_name=target.name.get(config.settings.admin_locale),
    )


@router.callback_query(AssignTo.filter())
async def assign_to(
    query: CallbackQuery,
    callback_data: AssignTo,
    queries: CaseQueries,
    commands: CaseCommands,
    teams: TeamDirectory,
) -> None:
    case = await queries.get(callback_data.case_id)
    clerk = await acting_clerk(query, case, teams, heads_only=True)
    if clerk is None or case is None:
        return
    team = await _allowed(query, lambda: commands.check_assignee(case, callback_data.user_id))
    if team is None:
        return
    assignee = Clerk(id=callback_data.user_id, name=await teams.member_name(team, callback_data.user_id))
    await drop_buttons(query)
    await _act(query, commands, case, Action.ASSIGN, clerk, assignee=assignee)


@router.callback_query(DeskCancel.filter())
async def cancel_pending(query: CallbackQuery, callback_data: DeskCancel, state: FSMContext) -> None:
    data = await state.get_data()
    if await state.get_state() == Pending.text.state and data.get("case_id") == callback_data.case_id:
        await state.clear()
    await query.answer(_("Cancelled."))
    await drop_buttons(query)


@router.callback_query(PromptCancel.filter())
async def cancel_prompt(query: CallbackQuery, callback_data: PromptCancel, state: FSMContext) -> None:
    """ "Cancel" under a prompt: it stops waiting, if it still waits (for this clerk); else nothing
    is undone, and the clerk is told so. Either way its button goes."""
    data = await state.get_data()
    waiting = (
        await state.get_state() == Pending.text.state
        and data.get("case_id") == callback_data.case_id
        and data.get("prompt") == shown(query).message_id
    )
    if waiting:
        await state.clear()
        await query.answer(_("Cancelled."))
    else:
        await query.answer(
            _("Nothing to cancel: this question no longer waits for your answer."), show_alert=True
        )
    await drop_buttons(query)


async def _retire_prompt(message: Message, data: dict[str, Any]) -> None:
    """The prompt was answered (or ran out): its "Cancel" goes, it no longer acts."""
    try:
        await message.bot.edit_message_reply_markup(
            chat_id=message.chat.id, message_id=data["prompt"], reply_markup=None
        )
    except TelegramBadRequest:
        log.debug("could not remove a prompt's button")  # deleted meanwhile: nothing left to press


# --- the text a prompt waits for -----------------------------------------------------------


class AnswersPrompt(Filter):
    """The clerk's message answers their pending prompt: in the prompt's topic (FSM keys are per
    clerk and topic), or, in a group without topics, as a reply to the prompt."""

    async def __call__(self, message: Message, state: FSMContext) -> bool:
        if await state.get_state() != Pending.text.state:
            return False
        data = await state.get_data()
        if data.get("in_topic"):
            return True
        return message.reply_to_message is not None and message.reply_to_message.message_id == data.get(
            "prompt"
        )


@router.message(
    StateFilter(Pending.text), AnswersPrompt(), F.text, ~F.text.startswith("/"), ~F.text.startswith("!")
)
async def pending_text(
    message: Message, state: FSMContext, queries: CaseQueries, commands: CaseCommands, teams: TeamDirectory
) -> None:
    data = await state.get_data()
    case = await queries.get(data["case_id"])
    action = Action(data["action"])
    if prompt_expired(data["expires"]):
        await state.clear()
        await _retire_prompt(message, data)
        await message.reply(
            _(
                "The prompt for {number} has expired, so this message was not sent. Press the button on the card again."
            ).format(number=case.number if case else "?")
        )
        return
    text = (message.text or "").strip()
    if (
        action is not Action.DUPLICATE and not TEXT_MIN <= len(text) <= TEXT_MAX
    ):  # any answer to "which case?" ends that prompt
        await message.reply(
            _(
                "Please write {min} to {max} character.", "Please write {min} to {max} characters.", TEXT_MAX
            ).format(min=TEXT_MIN, max=TEXT_MAX)
        )
        return
    clerk = await acting_clerk(message, case, teams)
    if clerk is None or case is None:
        await state.clear()
        return
    await state.clear()
    if action is Action.DUPLICATE:
        await _merge(message, case, text, clerk, queries, commands, teams)
        await _retire_prompt(message, data)
        return
    answer = (
        GroupMessage(message.chat.id, message.message_id, message.html_text)
        if action is Action.ANSWER
        else None
    )
    via = AnswerBy(data["answered_via"]) if data.get("answered_via") else None
    try:
        await commands.act(
            case.id,
            action,
            clerk,
            text=text,
            days=data.get("days"),
            team_id=data.get("team_id"),
            answer=answer,
            answered_via=via,
        )
    except NotAllowed as refused:
        await message.reply(_refusal(refused))
    await _retire_prompt(message, data)


async def _merge(
    message: Message,
    case: Case,
    number: str,
    clerk: Clerk,
    queries: CaseQueries,
    commands: CaseCommands,
    teams: TeamDirectory,
) -> None:
    """ "Duplicate of…": the original by its number; a head of its team may merge from another team.
    Anything else ends the prompt with the reason, and nothing changes."""
    typed = parse_case_number(number)
    original = await queries.by_number(typed) if typed is not None else None
    head = original is not None and (await teams.role(clerk.id, teams.get(original.team_id))).assigns
    try:
        await commands.merge(
            case.id, original.id if original is not None else 0, clerk, head_of_original=head
        )
    except NotAllowed as refused:
        await message.reply(_refusal(refused))


# --- notes and messages to the resident ----------------------------------------------------


@router.message(F.text.startswith("!"))
@router.message(Command("note"))
async def note(message: Message, queries: CaseQueries, commands: CaseCommands, teams: TeamDirectory) -> None:
    case = await case_of(message, queries)
    if case is None:
        if not await _left_this_topic(message, queries, teams):
            await message.reply(_("Write notes in a case's topic, or as a reply to its card."))
        return
    clerk = await acting_clerk(message, case, teams)
    if clerk is None:
        return
    text = (message.text or "").removeprefix("!").removeprefix("/note").strip()
    if not text:
        await message.reply(_("The note is empty."))
        return
    try:
        await commands.note(case.id, clerk, text, GroupMessage(message.chat.id, message.message_id))
    except NotAllowed:
        await message.reply(_("This cannot be done with the case now."))
        return
    await _react(message, "✍️")


@router.message(~F.text.startswith("/"), F.text | F.photo | F.document)
async def clerk_message(
    message: Message, queries: CaseQueries, commands: CaseCommands, teams: TeamDirectory
) -> None:
    case = await case_of(message, queries)
    if case is None:
        await _left_this_topic(message, queries, teams)  # else: the clerks talking among themselves
        return
    clerk = await acting_clerk(message, case, teams)
    if clerk is None:
        return
    if (
        case.channel == Channel.OPEN311
    ):  # no chat to relay to: the resident reads the final answer through Open311
        await message.reply(
            _(
                "Not sent: this case came through Open311, not Telegram. The final answer ({button}) is published there; start a note with !."
            ).format(button=ACTION_LABELS[Action.ANSWER])
        )
        return

    async def relay(messages: list[Message]) -> None:
        first = messages[0]
        refs = [
            GroupMessage(
                m.chat.id,
                m.message_id,
                m.html_text if (m.text or m.caption) else None,
                media=bool(m.photo or m.document),
            )
            for m in messages
        ]
        files = tuple(attachment_of(m) for m in messages if m.photo or m.document)
        try:
            await commands.relay(case.id, clerk, refs, first.text or first.caption, files)
        except NotAllowed as refused:
            await first.reply(_not_sent(refused))

    if message.media_group_id:
        collect_album(message, relay)
        return
    await relay([message])


async def _react(message: Message, emoji: str) -> None:
    try:
        await message.react([ReactionTypeEmoji(emoji=emoji)])
    except Exception:  # a reaction is a courtesy; what it marks is stored
        log.debug("could not react to a message")


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


async def _chat_cases(
    chat_id: int, teams: TeamDirectory, queries: CaseQueries, assignee_id: int | None = None
) -> list[Case]:
    cases = [case for team in teams.teams_in(chat_id) for case in await queries.open_cases(team, assignee_id)]
    return sorted(cases, key=lambda c: (c.due, c.id))


async def _open_page(
    page: int, chat_id: int, teams: TeamDirectory, queries: CaseQueries, calendar: WorkingCalendar
) -> tuple[str, InlineKeyboardMarkup | None]:
    cases = await _chat_cases(chat_id, teams, queries)
    pages = max(1, -(-len(cases) // PER_PAGE))
    page = min(max(page, 0), pages - 1)
    title = _("<b>Open cases</b>, nearest deadline first:") + (f" {page + 1}/{pages}" if pages > 1 else "")
    text = _listing(title, cases[page * PER_PAGE : (page + 1) * PER_PAGE], calendar)
    builder = InlineKeyboardBuilder()
    for label, target in (("◀", page - 1), ("▶", page + 1)):
        if 0 <= target < pages:
            builder.button(text=f"{label} {target + 1}/{pages}", callback_data=OpenPage(page=target))
    return text, builder.as_markup() if pages > 1 else None


@router.message(Command("open"))
async def open_cases(
    message: Message, teams: TeamDirectory, queries: CaseQueries, calendar: WorkingCalendar
) -> None:
    if await acting_clerk(message, None, teams) is None:
        return
    text, keyboard = await _open_page(0, message.chat.id, teams, queries, calendar)
    await message.reply(text, reply_markup=keyboard)


@router.callback_query(OpenPage.filter())
async def open_cases_page(
    query: CallbackQuery,
    callback_data: OpenPage,
    teams: TeamDirectory,
    queries: CaseQueries,
    calendar: WorkingCalendar,
) -> None:
    if await acting_clerk(query, None, teams) is None:
        return
    await query.answer()
    text, keyboard = await _open_page(callback_data.page, shown(query).chat.id, teams, queries, calendar)
    await shown(query).edit_text(text, reply_markup=keyboard)


@router.message(Command("overdue"))
async def overdue_cases(
    message: Message,
    teams: TeamDirectory,
    schedule: Schedule,
    queries: CaseQueries,
    calendar: WorkingCalendar,
) -> None:
    if await acting_clerk(message, None, teams) is None:
        return
    _soon, overdue = schedule.due_soon_and_overdue(
        await _chat_cases(message.chat.id, teams, queries), calendar.local_date(utcnow())
    )
    await message.reply(_listing(_("<b>Overdue cases</b>:"), overdue, calendar))


@router.message(Command("mine"))
async def my_cases(
    message: Message, teams: TeamDirectory, queries: CaseQueries, calendar: WorkingCalendar
) -> None:
    clerk = await acting_clerk(message, None, teams)
    if clerk is None:
        return
    mine = [case for team in teams.teams for case in await queries.open_cases(team, clerk.id)]
    mine.sort(key=lambda c: (c.due, c.id))
    await message.reply(_listing(_("<b>Your open cases</b>:"), mine, calendar))


@router.message(Command("team"))
async def team_load(
    message: Message, teams: TeamDirectory, queries: CaseQueries, calendar: WorkingCalendar, config: Config
) -> None:
    """The load of each team in this group: open and overdue cases per responsible clerk."""
    if await acting_clerk(message, None, teams) is None:
        return
    today = calendar.local_date(utcnow())
    lines = []
    for team in teams.teams_in(message.chat.id):
        count, load = await queries.team_load(team, today)
        lines.append(
            _("<b>{team}</b>: {count} open").format(
                team=escape(team.name.get(config.settings.admin_locale)), count=count
            )
        )
        for row in load:
            name = row.name or _("nobody responsible")
            lines.append(
                _("👤 {name}: {count} open, {overdue} overdue").format(
                    name=escape(name), count=row.open, overdue=row.overdue
                )
            )
    await message.reply("\n".join(lines) or _("No cases."))


async def _named_case(message: Message, command: CommandObject, queries: CaseQueries) -> Case | None:
    if command.args:
        return await queries.by_number(command.args.strip().upper())
    return await case_of(message, queries)


@router.message(Command("case"))
async def show_case(
    message: Message,
    command: CommandObject,
    queries: CaseQueries,
    teams: TeamDirectory,
    clerk_texts: ClerkTexts,
) -> None:
    case = await _named_case(message, command, queries)
    if case is None:
        await message.reply(_("No such case. Usage: /case VRS-2026-000042"))
        return
    if await acting_clerk(message, case, teams) is None:
        return
    text, keyboard = clerk_texts.card(
        case, await queries.resident(case), await queries.registration(case), await queries.closing(case)
    )
    await message.reply(text, reply_markup=keyboard)
    if (
        "/case" in text.rsplit("\n", 1)[-1]
    ):  # the card had to shorten the description: the whole of it follows
        for part in clerk_texts.description_parts(case):
            await message.answer(
                part, message_thread_id=message.message_thread_id if message.is_topic_message else None
            )


@router.message(Command("history"))
async def history(
    message: Message,
    command: CommandObject,
    queries: CaseQueries,
    teams: TeamDirectory,
    clerk_texts: ClerkTexts,
) -> None:
    case = await _named_case(message, command, queries)
    if case is None:
        await message.reply(_("No such case. Usage: /history VRS-2026-000042"))
        return
    if await acting_clerk(message, case, teams) is None:
        return
    await message.reply(clerk_texts.trail(case, await queries.history(case.id)))


# --- canned answers ------------------------------------------------------------------------


@router.message(Command("templates"))
async def templates(message: Message, queries: CaseQueries, teams: TeamDirectory, config: Config) -> None:
    case = await case_of(message, queries)
    if case is None:
        await message.reply(_("Use /templates in a case's topic, or as a reply to its card."))
        return
    if await acting_clerk(message, case, teams) is None:
        return
    fitting = [t for t in config.municipality.templates if t.fits(case.kind, case.status)]
    if not fitting:
        await message.reply(_("No canned answer fits this case."))
        return
    builder = InlineKeyboardBuilder()
    for template in fitting:
        builder.button(
            text=template.title.get(config.settings.admin_locale),
            callback_data=UseTemplate(case_id=case.id, template=template.id),
        )
    builder.button(text=_("✖️ Cancel"), callback_data=DeskCancel(case_id=case.id))
    builder.adjust(1)
    await message.reply(
        _("Canned answers for {number}: choose one to see it as the resident will.").format(
            number=case.number
        ),
        reply_markup=builder.as_markup(),
    )


@router.callback_query(UseTemplate.filter())
async def use_template(
    query: CallbackQuery,
    callback_data: UseTemplate,
    queries: CaseQueries,
    commands: CaseCommands,
    teams: TeamDirectory,
    config: Config,
) -> None:
    case = await queries.get(callback_data.case_id)
    template = next((t for t in config.municipality.templates if t.id == callback_data.template), None)
    clerk = await acting_clerk(query, case, teams)
    if clerk is None or case is None:
        return
    if template is None:
        await query.answer(_("This cannot be done with the case now."), show_alert=True)
        return
    locale = await queries.resident_locale(case)
    text = template.text.get(locale)
    if not callback_data.send:
        await query.answer()
        builder = InlineKeyboardBuilder()
        builder.button(
            text=_("📨 Send to the resident"),
            callback_data=UseTemplate(case_id=case.id, template=template.id, send=True),
        )
        builder.button(text=_("✖️ Cancel"), callback_data=DeskCancel(case_id=case.id))
        builder.adjust(1)
        preview = _("Preview ({language}):").format(language=locale) + "\n\n" + escape(text)
        await shown(query).edit_text(preview, reply_markup=builder.as_markup())
        return
    try:
        await commands.send_template(
            case.id, clerk, text, GroupMessage(shown(query).chat.id, shown(query).message_id)
        )
    except NotAllowed as refused:
        await query.answer(_not_sent(refused), show_alert=True)
        return
    await query.answer(_("Sent."))
    await shown(query).edit_text(_("Sent to the resident:") + "\n\n" + escape(text))


# --- help, digest, report ------------------------------------------------------------------


@router.message(Command("help"))
async def clerk_help(message: Message) -> None:
    await message.reply(
        _(
            "<b>Case desk</b>\n"
            "Each new case of your team opens a topic with its card. Use the card's buttons to take, assign (heads), extend, answer, "
            "pass to another team, redirect, reject or reopen it.\n"
            "Anything you write in a case's topic (or as a reply to its card) goes to the resident; 👍 shows it was delivered.\n"
            "Start a message with ! (or use /note) for an internal note the resident never sees.\n\n"
            "/open: open cases, nearest deadline first\n"
            "/overdue: overdue cases\n"
            "/mine: cases you are responsible for\n"
            "/team: the team's load per clerk\n"
            "/case NUMBER: a case's card\n"
            "/history NUMBER: everything that happened to a case\n"
            "/templates: canned answers for the case of this topic\n"
            "/digest: the daily digest, now\n"
            "/report [period]: the quality report (period: 30d, 2026-10, 2026-Q4, 2026 or 2026-10-01..2026-12-31; the last 30 days if left out)"
        )
        + "\n"
        + _("/register: register a case that came by phone, e-mail, post or at the front desk")
        + "\n"
        + _(
            "/nc description: a nonconformity (in a case's topic the case is linked; in the quality group: /nc TEAM description)\n"
            "/review PERIOD: the management review as one XLSX file (in the quality group)\n"
            "/who: who is responsible for what: the teams' categories and elderships, people and open cases"
        )
        + "\n"
        + _(
            "/audit TEAM PERIOD: an internal audit's sample; /finding AUDIT KIND [CASE] text: its findings (nc, obs, ofi); "
            "/auditreport AUDIT: its report as one XLSX file (in the quality group)"
        )
    )


@router.message(Command("digest"))
async def digest_now(
    message: Message, teams: TeamDirectory, schedule: Schedule, calendar: WorkingCalendar
) -> None:
    if await acting_clerk(message, None, teams) is None:
        return
    await schedule.digest(calendar.local_date(utcnow()), teams.teams_in(message.chat.id))


@router.message(Command("report"))
async def quality_report(
    message: Message,
    command: CommandObject,
    teams: TeamDirectory,
    schedule: Schedule,
    calendar: WorkingCalendar,
) -> None:
    """The whole municipality's report (with every satisfaction comment) for heads and the quality
    staff; anyone else who acts here gets their team's figures (TeamDirectory.report_scope)."""
    clerk = await acting_clerk(message, None, teams)
    if clerk is None:
        return
    try:
        period = parse_period(command.args, calendar.local_date(utcnow()))
    except PeriodError as exc:  # the reason (a period too long, in the future...), then how to write one
        usage = _(
            "Usage: /report, /report 7d, /report 2026-10, /report 2026-Q4, /report 2026 or /report 2026-10-01..2026-12-31 (the last 30 days if left out)."
        )
        await message.reply(f"{escape(str(exc))}\n{usage}" if str(exc) else usage)
        return
    scope = await teams.report_scope(clerk.id, message.chat.id)
    await schedule.post_report(
        message.chat.id,
        period,
        thread_id=message.message_thread_id if message.is_topic_message else None,
        teams=scope,
    )
