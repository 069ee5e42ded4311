"""Residents' data rights in the chat: /privacy (the notice), /mydata (a copy), /forget (erasure)."""

from __future__ import annotations

from html import escape

from aiogram import Bot, F, Router
from aiogram.enums import ChatType
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.types import (
    BotCommandScopeChat,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardMarkup,
    Message,
    ReplyKeyboardRemove,
)
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.config import Config
from bot.keyboards import InlineKeyboardBuilder
from bot.services import texts
from bot.services.privacy import EXPORTS_PER_DAY, DataRights, TooManyExports, as_json
from bot.store.models import Resident, utcnow
from flows.common import UnderAccessibleMessage, onboarded, shown, stale_button

router = Router(name="privacy")
router.callback_query.filter(UnderAccessibleMessage())
router.message.filter(F.chat.type == ChatType.PRIVATE)
router.callback_query.filter(F.message.chat.type == ChatType.PRIVATE)


class ForgetChoice(CallbackData, prefix="forget"):
    confirm: bool


def privacy_notice(config: Config, locale: str) -> str:
    """The notice shown at /start and by /privacy: who, what, why, how long, the rights."""
    municipality = config.municipality
    retention = "; ".join(
        _(
            "{kind}: {count} year after closing", "{kind}: {count} years after closing", rules.retention_years
        ).format(kind=texts.kind_label(kind), count=rules.retention_years)
        for kind, rules in municipality.kinds.items()
    )
    return (
        _(
            "<b>Privacy notice</b>\n\n"
            "<b>Controller:</b> {controller}. <b>Data protection officer:</b> {dpo}.\n\n"
            "<b>What we keep:</b> your Telegram account number, your name, your language, what you submit "
            "(text, files, location), your phone number only if you choose to share it, and your news subscriptions.\n\n"
            "<b>Why:</b> to register each request, complaint or report of a problem you send, handle it and answer you. "
            "This is the municipality's public task and its legal obligation under the laws on public administration "
            "and on the handling of submissions (GDPR Art. 6(1)(c) and (e)); it does not depend on consent.\n\n"
            "<b>How long:</b> your profile until you erase it; the personal data in cases, as the rules on records require "
            "({retention}), then it is removed.\n\n"
            "<b>Your rights:</b> /mydata sends you everything we keep about you; /forget erases your profile. "
            "You may also ask the data protection officer for correction or restriction, object, "
            "and complain to the State Data Protection Inspectorate (vdai.lrv.lt)."
        ).format(
            controller=escape(municipality.privacy.controller.get(locale)),
            dpo=escape(municipality.privacy.dpo),
            retention=retention,
        )
        + "\n\n"
        + _(
            "<b>What is published:</b> nothing that names you. The municipality's open list of cases (Open311) shows two kinds of cases. "
            "A report of a problem sent here, only once a clerk makes it public: its number, category, the department handling it, "
            "the day it came (not the hour), its deadline, its status and the answer, your description, and the address and place "
            "rounded to about 100 m. A case sent through an Open311 service (a city app or website): its number, category, department, "
            "days, deadline, status and the answer. Never a name, phone number, e-mail address or Telegram account. "
            "Requests and complaints sent here are never listed.\n\n"
            "<b>Telegram:</b> this chat runs through Telegram, a service based outside the European Economic Area; what you send "
            "here passes through its servers under its own privacy policy (telegram.org/privacy). You may also submit the same "
            "in person, by post or by e-mail to the municipality."
        )
    )


def _forget_keyboard() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("🗑 Erase my profile"), callback_data=ForgetChoice(confirm=True))
    builder.button(text=_("Keep it"), callback_data=ForgetChoice(confirm=False))
    return builder.as_markup()


@router.message(Command("privacy"))
async def show_privacy(message: Message, config: Config, i18n: I18n) -> None:
    await message.answer(privacy_notice(config, i18n.current_locale))


@router.message(Command("mydata"))
async def my_data(message: Message, resident: Resident | None, rights: DataRights) -> None:
    if not onboarded(resident):
        await message.answer(_("We keep no profile of yours. Send /start to use the service."))
        return
    try:
        data = await rights.export(resident.id, utcnow())
    except TooManyExports:
        await message.answer(
            _(
                "You can ask for your data {count} time a day. Please try again tomorrow.",
                "You can ask for your data {count} times a day. Please try again tomorrow.",
                EXPORTS_PER_DAY,
            ).format(count=EXPORTS_PER_DAY)
        )
        return
    day = data["exported_at"][:10]
    await message.answer_document(BufferedInputFile(as_json(data), f"my-data-{day}.json"))
    await message.answer_document(
        BufferedInputFile(rights.readable(data).encode(), f"my-data-{day}.txt"),
        caption=_("Everything we keep about you: the text file to read, the JSON file for computers."),
    )


@router.message(Command("forget"))
async def forget(message: Message, resident: Resident | None) -> None:
    if not onboarded(resident):
        await message.answer(_("We keep no profile of yours. Send /start to use the service."))
        return
    await message.answer(
        _(
            "<b>Erase your profile?</b>\n\n"
            "• Erased at once: your name, phone number, language, news subscriptions and any step in progress. "
            "We will send you no news, polls or questions.\n"
            "• Kept, because the law on handling submissions requires it: your cases, without your name and phone, "
            "for as long as the rules on records say (see /privacy). Answers to cases still being handled will still come here.\n"
            "• Your cases will no longer show under /cases. With /start you begin afresh.\n\n"
            "This cannot be undone."
        ),
        reply_markup=_forget_keyboard(),
    )


@router.callback_query(ForgetChoice.filter())
async def forget_chosen(
    query: CallbackQuery,
    callback_data: ForgetChoice,
    resident: Resident | None,
    state: FSMContext,
    rights: DataRights,
    bot: Bot,
) -> None:
    if not onboarded(resident):
        await stale_button(query)
        return
    await query.answer()
    if not callback_data.confirm:
        await shown(query).edit_text(_("Nothing was erased."))
        return
    await rights.forget(query.from_user.id, utcnow())
    await state.clear()
    await bot.delete_my_commands(scope=BotCommandScopeChat(chat_id=query.from_user.id))
    await shown(query).edit_text(_("Your profile is erased."))
    await shown(query).answer(
        _(
            "We will not write to you again, except the answers to cases still being handled. Send /start if you want to use the service again."
        ),
        reply_markup=ReplyKeyboardRemove(),
    )
