"""Answers to whatever no flow took: a resident is never met with silence."""

from __future__ import annotations

from html import escape

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from bot.store.models import Resident
from flows.common import Onboarded, is_navigation, main_menu, onboarded, stale_button, start_first_text

router = Router(name="fallback")
router.message.filter(F.chat.type == ChatType.PRIVATE)


# A resident who has not finished onboarding, turned away by `Onboarded` on every resident's
# command, menu entry and button: one answer, wherever they went.
@router.message(~Onboarded(), F.text.func(is_navigation))
async def not_onboarded(message: Message) -> None:
    await message.answer(start_first_text())


@router.callback_query(~Onboarded(), F.message.chat.type == ChatType.PRIVATE)
async def not_onboarded_button(query: CallbackQuery) -> None:
    await query.answer(start_first_text(), show_alert=True)


@router.message(F.text.startswith("/"))
async def unknown_command(message: Message, resident: Resident | None) -> None:
    command = (message.text or "").split()[0].split("@")[0]
    text = _(
        "There is no command {command}. Available: /new, /cases, /news, /language, /privacy, /help, /cancel, /start."
    ).format(command=escape(command[:64]))
    await _answer(message, resident, text)


@router.message()
async def unexpected(message: Message, resident: Resident | None) -> None:
    await _answer(
        message, resident, _("Sorry, we did not understand that. Please use the menu buttons, or type /help.")
    )


@router.callback_query()
async def old_button(query: CallbackQuery) -> None:
    # A button from an old message whose conversation has ended (or a restart lost track of it).
    await stale_button(query)


async def _answer(message: Message, resident: Resident | None, text: str) -> None:
    if onboarded(resident):
        await message.answer(text, reply_markup=main_menu())
    else:
        await message.answer(text + "\n" + _("Send /start to begin."))
