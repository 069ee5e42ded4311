"""A resident's improvement proposal: "💡 Suggest an improvement" (or /suggest, or the button
offered once under the thanks for a satisfaction answer) asks for the text, then how to send it:
anonymously (nothing ties it to them) or to be answered (a case of its own).
Rules in bot.services.proposals."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.filters import Command, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, Update
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.keyboards import InlineKeyboardBuilder
from bot.services.case_commands import DailyLimitReached
from bot.services.deadlines import WorkingCalendar
from bot.services.proposals import Proposals
from bot.store.models import Resident, utcnow
from flows.common import MENU_SUGGEST, Onboarded, UnderAccessibleMessage, main_menu, shown, stale_button

router = Router(name="proposals")
router.callback_query.filter(UnderAccessibleMessage())
router.message.filter(F.chat.type == ChatType.PRIVATE)
router.callback_query.filter(F.message.chat.type == ChatType.PRIVATE)


class Suggest(StatesGroup):
    text = State()
    how = State()


class SuggestHow(CallbackData, prefix="sg"):
    how: str  # anonymous, answered, cancel


class SuggestOffer(CallbackData, prefix="sgo"):
    """The offer under the thanks for a satisfaction answer (it carries nothing about the answer)."""


def offer_keyboard() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=str(MENU_SUGGEST), callback_data=SuggestOffer())
    return builder.as_markup()


def _how_keyboard() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("🕶 Send anonymously"), callback_data=SuggestHow(how="anonymous"))
    builder.button(text=_("✉️ Please answer"), callback_data=SuggestHow(how="answered"))
    builder.button(text=_("✖️ Cancel"), callback_data=SuggestHow(how="cancel"))
    builder.adjust(1)
    return builder.as_markup()


@router.message(Command("suggest"), Onboarded())
@router.message(F.text == MENU_SUGGEST, Onboarded())
async def suggest(message: Message, state: FSMContext) -> None:
    await _ask_for_text(message, state)


@router.callback_query(SuggestOffer.filter(), Onboarded())
async def offered(query: CallbackQuery, state: FSMContext) -> None:
    """The offer after the satisfaction answer: pressed once, it goes, and the proposal is asked for."""
    await query.answer()
    await shown(query).edit_reply_markup(reply_markup=None)
    await _ask_for_text(shown(query), state)


async def _ask_for_text(message: Message, state: FSMContext) -> None:
    await state.set_state(Suggest.text)
    await message.answer(
        _(
            "💡 What could the municipality do better? Please write your proposal ({min} to {max} character).",
            "💡 What could the municipality do better? Please write your proposal ({min} to {max} characters).",
            Proposals.TEXT.max,
        ).format(min=Proposals.TEXT.min, max=Proposals.TEXT.max)
    )


@router.message(StateFilter(Suggest.text), F.text, ~F.text.startswith("/"))
async def proposal_text(message: Message, state: FSMContext) -> None:
    text = (message.text or "").strip()
    if Proposals.TEXT.problem(text) is not None:  # nothing is stored; the question stands
        await message.answer(
            _(
                "Please write {min} to {max} character.",
                "Please write {min} to {max} characters.",
                Proposals.TEXT.max,
            ).format(min=Proposals.TEXT.min, max=Proposals.TEXT.max)
        )
        return
    await state.set_state(Suggest.how)
    await state.set_data({"text": text})
    await message.answer(
        _(
            "Thank you. How should we pass it on? Anonymously: we store only the text, without your name. "
            "If you would like an answer, it becomes a case of its own and we answer you here."
        ),
        reply_markup=_how_keyboard(),
    )


@router.callback_query(SuggestHow.filter())
async def proposal_how(
    query: CallbackQuery,
    callback_data: SuggestHow,
    state: FSMContext,
    resident: Resident | None,
    proposals: Proposals,
    calendar: WorkingCalendar,
    i18n: I18n,
    event_update: Update,
) -> None:
    data = await state.get_data()
    if await state.get_state() != Suggest.how.state or "text" not in data or resident is None:
        await stale_button(query)
        return
    await state.clear()
    await shown(query).edit_reply_markup(reply_markup=None)
    if callback_data.how == "anonymous":
        await proposals.anonymous(data["text"], i18n.current_locale, calendar.local_date(utcnow()))
        await query.answer()
        await shown(query).answer(
            _("Thank you! Your proposal has been passed on anonymously."), reply_markup=main_menu()
        )
    elif callback_data.how == "answered":
        try:
            opened = await proposals.answered(
                resident.id, i18n.current_locale, data["text"], event_update.update_id
            )
        except DailyLimitReached:
            await query.answer(
                _("You have reached today's limit of new cases. Please write again tomorrow."),
                show_alert=True,
            )
            return
        await query.answer()
        await shown(query).answer(
            _("Thank you! Your proposal is registered as case {number}; we will answer you here.").format(
                number=opened.case.number
            ),
            reply_markup=main_menu(),
        )
    else:
        await query.answer(_("Cancelled."))
        await shown(query).answer(_("Cancelled."), reply_markup=main_menu())
