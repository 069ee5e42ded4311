"""Residents' anonymous answers: the satisfaction question after a case is closed, and polls.

Satisfaction: how satisfied (1-5) → was the matter resolved (yes/partly/no) → send, or add a
comment first; or "no, thank you". Asked once per case (even if it is reopened and closed again);
one answer per case. The choices so far travel in the buttons; only while a comment is being
written do they wait in the conversation state, which is cleared when the answer is stored.

Polls: the buttons carry the answers so far (see bot.services.polls); the resident sees all their
choices before sending, and cannot change them afterwards.
"""

from __future__ import annotations

import logging

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _

from bot.keyboards import InlineKeyboardBuilder
from bot.services import texts
from bot.services.case_queries import CaseQueries
from bot.services.cases import visible_text
from bot.services.notifications import Rate
from bot.services.polls import (
    OPTIONS_MAX,
    PollTap,
    as_choices,
    decode,
    encode,
    question_view,
    questions_of,
    summary_view,
)
from bot.services.surveys import COMMENT_MAX, AlreadyAnswered, PollClosed, SurveyService, valid_choices
from bot.store.models import Case, PollStatus, ResolvedAnswer
from flows.common import UnderAccessibleMessage, drop_buttons, shown
from flows.proposals import offer_keyboard

log = logging.getLogger(__name__)
router = Router(name="feedback")
router.callback_query.filter(UnderAccessibleMessage())


class Feedback(StatesGroup):
    comment = State()


# --- answering -------------------------------------------------------------------------------


def _resolved_keyboard(case_id: int, score: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for value, label in (
        (ResolvedAnswer.YES, _("Yes")),
        (ResolvedAnswer.PARTLY, _("Partly")),
        (ResolvedAnswer.NO, _("No")),
    ):
        builder.button(
            text=label, callback_data=Rate(case_id=case_id, act="resolved", score=score, resolved=value)
        )
    builder.adjust(3)
    return builder.as_markup()


def _send_keyboard(
    case_id: int, score: int, resolved: str, with_comment_button: bool = True
) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(
        text=_("📨 Send without a comment"),
        callback_data=Rate(case_id=case_id, act="send", score=score, resolved=resolved),
    )
    if with_comment_button:
        builder.button(
            text=_("✍️ Add a comment"),
            callback_data=Rate(case_id=case_id, act="comment", score=score, resolved=resolved),
        )
    builder.adjust(1)
    return builder.as_markup()


@router.callback_query(F.message.chat.type == ChatType.PRIVATE, Rate.filter())
async def rate(
    query: CallbackQuery, callback_data: Rate, state: FSMContext, queries: CaseQueries, surveys: SurveyService
) -> None:
    case = await queries.own_case(query.from_user.id, case_id=callback_data.case_id)
    if case is None or not case.feedback_asked:
        await query.answer(_("This cannot be done now."), show_alert=True)
        return
    if await surveys.feedback_given(case.id):
        await query.answer(_("You have already answered about this case. Thank you!"), show_alert=True)
        await drop_buttons(query)
        return
    valid_score = callback_data.score in range(1, 6)
    valid_resolved = callback_data.resolved in set(ResolvedAnswer)
    act = callback_data.act
    if act == "no":
        try:
            await surveys.decline_satisfaction(case)
        except AlreadyAnswered:  # a second tap racing the first
            await query.answer()
            return
        await query.answer()
        await shown(query).edit_text(_("All right, we will not ask about this case again."))
    elif act == "score" and valid_score:
        await query.answer()
        await shown(query).edit_text(
            _("Your rating: {score} ★. Was the matter resolved?").format(score=callback_data.score),
            reply_markup=_resolved_keyboard(case.id, callback_data.score),
        )
    elif act == "resolved" and valid_score and valid_resolved:
        await query.answer()
        await shown(query).edit_text(
            _("Thank you. Would you like to add a comment? It is optional."),
            reply_markup=_send_keyboard(case.id, callback_data.score, callback_data.resolved),
        )
    elif act == "comment" and valid_score and valid_resolved:
        await state.set_state(Feedback.comment)
        await state.update_data(case_id=case.id, score=callback_data.score, resolved=callback_data.resolved)
        await query.answer()
        await shown(query).edit_text(
            _(
                "Please write your comment in one message (up to {max} character).",
                "Please write your comment in one message (up to {max} characters).",
                COMMENT_MAX,
            ).format(max=COMMENT_MAX),
            reply_markup=_send_keyboard(
                case.id, callback_data.score, callback_data.resolved, with_comment_button=False
            ),
        )
    elif act == "send" and valid_score and valid_resolved:
        await state.clear()
        await _store(
            shown(query), case, callback_data.score, callback_data.resolved, None, surveys, edit=True
        )
        await query.answer()
    else:
        await query.answer(_("This cannot be done now."), show_alert=True)


@router.message(
    F.chat.type == ChatType.PRIVATE, StateFilter(Feedback.comment), F.text, ~F.text.startswith("/")
)
async def comment_written(
    message: Message, state: FSMContext, queries: CaseQueries, surveys: SurveyService
) -> None:
    comment = message.text.strip()
    if not visible_text(comment):  # only spaces or zero-width characters
        await comment_not_text(message, state)
        return
    if len(comment) > COMMENT_MAX:
        await message.answer(
            _(
                "That is {length} character; please shorten it to {max}.",
                "That is {length} characters; please shorten it to {max}.",
                len(comment),
            ).format(length=len(comment), max=COMMENT_MAX)
        )
        return
    data = await state.get_data()
    await state.clear()
    case = await queries.own_case(message.from_user.id, case_id=data.get("case_id", 0))
    if case is None:
        await message.answer(_("This cannot be done now."))
        return
    await _store(message, case, data["score"], data["resolved"], comment, surveys, edit=False)


@router.message(F.chat.type == ChatType.PRIVATE, StateFilter(Feedback.comment))
async def comment_not_text(message: Message, state: FSMContext) -> None:
    """With the button it names: the question above may have scrolled far away."""
    data = await state.get_data()
    keyboard = _send_keyboard(
        data.get("case_id", 0), data.get("score", 0), data.get("resolved", ""), with_comment_button=False
    )
    await message.answer(
        _("Please write the comment as text, or tap “Send without a comment”."), reply_markup=keyboard
    )


async def _store(
    message: Message,
    case: Case,
    score: int,
    resolved: str,
    comment: str | None,
    surveys: SurveyService,
    *,
    edit: bool,
) -> None:
    offer: InlineKeyboardMarkup | None = None
    try:
        await surveys.answer_satisfaction(case, score, resolved, comment)
        text = _("Thank you for your answer! It helps us improve. It is stored anonymously.")
        offer = offer_keyboard()  # once: there is one answer per case, and the button goes when pressed
    except AlreadyAnswered:
        text = _("You have already answered about this case. Thank you!")
    if edit:
        await message.edit_text(text, reply_markup=offer)
    else:
        await message.answer(text, reply_markup=offer)


# --- polls -----------------------------------------------------------------------------------


@router.callback_query(PollTap.filter(), F.message.chat.type != ChatType.PRIVATE)
async def poll_preview_tapped(query: CallbackQuery) -> None:
    await query.answer(_("This is a preview: residents answer in their chat with the bot."), show_alert=True)


@router.callback_query(PollTap.filter())
async def poll_tapped(query: CallbackQuery, callback_data: PollTap, surveys: SurveyService) -> None:
    poll = await surveys.poll(callback_data.poll_id)
    if poll is None or not await surveys.invited(poll, query.from_user.id):
        await query.answer(_("This poll is not available."), show_alert=True)
        return
    if poll.status != PollStatus.OPEN:
        await query.answer(_("This poll is closed. Thank you for your interest!"), show_alert=True)
        await drop_buttons(query)
        return
    if await surveys.poll_answered(poll.id, query.from_user.id):
        await query.answer(_("You have already answered this poll. Thank you!"), show_alert=True)
        await drop_buttons(query)
        return
    locale = texts.current_locale()
    questions = questions_of(poll)
    try:
        done = decode(callback_data.done)
    except ValueError:
        done = None
    act, sel = callback_data.act, callback_data.sel
    if (
        done is None
        or len(done) > len(questions)
        or not valid_choices(questions[: len(done)], as_choices(done))
    ):
        await query.answer(_("This cannot be done now."), show_alert=True)
        return
    if act == "r":
        await query.answer()
        await _show(query, *question_view(poll.id, questions, locale))
        return
    if act == "s":
        if len(done) != len(questions):
            await query.answer(_("This cannot be done now."), show_alert=True)
            return
        try:
            await surveys.answer_poll(poll.id, query.from_user.id, locale, as_choices(done))
        except PollClosed:
            await query.answer(_("This poll is closed. Thank you for your interest!"), show_alert=True)
            return
        except AlreadyAnswered:
            await query.answer(_("You have already answered this poll. Thank you!"), show_alert=True)
            return
        await query.answer(_("Thank you!"))
        await _show(query, *summary_view(poll.id, questions, locale, callback_data.done, sent=True))
        return
    if len(done) == len(questions):  # a stale question button after the summary was shown
        await query.answer(_("This cannot be done now."), show_alert=True)
        return
    question = questions[len(done)]
    if act == "t":
        if not 0 <= callback_data.opt < min(len(question.options), OPTIONS_MAX):
            await query.answer(_("This cannot be done now."), show_alert=True)
            return
        bit = 1 << callback_data.opt
        sel = sel ^ bit if question.multiple else bit
        await query.answer()
        await _show(query, *question_view(poll.id, questions, locale, callback_data.done, sel))
        return
    if act == "c":
        if not valid_choices([question], as_choices([sel])):
            await query.answer(_("Please choose an answer first."), show_alert=True)
            return
        await query.answer()
        done_now = encode([*done, sel])
        if len(done) + 1 == len(questions):
            await _show(query, *summary_view(poll.id, questions, locale, done_now))
        else:
            await _show(query, *question_view(poll.id, questions, locale, done_now))
        return
    await query.answer(_("This cannot be done now."), show_alert=True)


async def _show(query: CallbackQuery, text: str, keyboard: InlineKeyboardMarkup | None) -> None:
    await shown(query).edit_text(text, reply_markup=keyboard)
