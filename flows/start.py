"""Onboarding and the always-available commands: /start, /language, /help, /cancel."""

from __future__ import annotations

from html import escape

from aiogram import Bot, F, Router
from aiogram.enums import ChatType
from aiogram.filters import Command, CommandStart, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import BotCommandScopeChat, CallbackQuery, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.config import Config
from bot.keyboards import InlineKeyboardBuilder
from bot.middlewares.i18n import guess_locale
from bot.services.profiles import ResidentProfiles
from bot.settings import LOCALES
from bot.store.models import Resident
from flows.common import (
    LANGUAGE_NAMES,
    MENU_HELP,
    MENU_LANGUAGE,
    LanguageChoice,
    UnderAccessibleMessage,
    language_keyboard,
    language_prompt,
    main_menu,
    onboarded,
    resident_commands,
    shown,
    stale_button,
)
from flows.news import subscriptions_keyboard
from flows.privacy import privacy_notice

router = Router(name="start")
router.callback_query.filter(UnderAccessibleMessage())
router.message.filter(F.chat.type == ChatType.PRIVATE)
router.callback_query.filter(F.message.chat.type == ChatType.PRIVATE)


class Onboarding(StatesGroup):
    language = State()
    consent = State()


class Consent(CallbackData, prefix="consent"):
    pass


async def _show_notice(message: Message, config: Config, locale: str) -> None:
    """The privacy notice to acknowledge before the first use (the legal basis is not consent)."""
    builder = InlineKeyboardBuilder()
    builder.button(text=_("✅ Noted"), callback_data=Consent())
    await message.answer(
        privacy_notice(config, locale) + "\n\n" + _("Press “Noted” to continue."),
        reply_markup=builder.as_markup(),
    )


async def _show_language_picker(
    message: Message, resident: Resident | None, config: Config, i18n: I18n
) -> None:
    current = resident.locale if resident and resident.locale else None
    preselected = current or guess_locale(
        message.from_user.language_code if message.from_user else None, config.settings.default_locale
    )
    await message.answer(
        language_prompt(i18n, first=preselected), reply_markup=language_keyboard(preselected)
    )


async def _show_main_menu(message: Message, text: str) -> None:
    await message.answer(text, reply_markup=main_menu())


@router.message(CommandStart())
async def start(
    message: Message, state: FSMContext, resident: Resident | None, config: Config, i18n: I18n
) -> None:
    await state.clear()
    if onboarded(resident):
        await _show_main_menu(message, _("Welcome back! How can we help you? Choose from the menu below."))
        return
    await state.set_state(Onboarding.language)
    await message.answer(
        _("Hello! This is the e-service desk of {municipality}.").format(
            municipality=escape(config.municipality.name.get(i18n.current_locale))
        )
    )
    await _show_language_picker(message, resident, config, i18n)


@router.message(Command("language"))
@router.message(F.text == MENU_LANGUAGE)
async def choose_language(message: Message, resident: Resident | None, config: Config, i18n: I18n) -> None:
    await _show_language_picker(message, resident, config, i18n)


@router.callback_query(LanguageChoice.filter())
async def language_chosen(
    query: CallbackQuery,
    callback_data: LanguageChoice,
    state: FSMContext,
    bot: Bot,
    i18n: I18n,
    profiles: ResidentProfiles,
    config: Config,
) -> None:
    if callback_data.code not in LOCALES:
        await stale_button(query)
        return
    locale = callback_data.code
    resident = await profiles.choose_language(query.from_user.id, locale)
    with i18n.use_locale(locale):
        await query.answer()
        await shown(query).edit_text(_("Language: {language}").format(language=LANGUAGE_NAMES[locale]))
        await bot.set_my_commands(resident_commands(), scope=BotCommandScopeChat(chat_id=query.from_user.id))
        if onboarded(resident):
            if await state.get_state() in (None, Onboarding.language.state):
                await state.clear()
                await _show_main_menu(shown(query), _("Done. We will write to you in English from now on."))
            else:
                await shown(query).answer(_("Done. We will write to you in English from now on."))
            return
        await state.set_state(Onboarding.consent)
        await _show_notice(shown(query), config, locale)


@router.callback_query(Consent.filter())
async def consent_given(
    query: CallbackQuery, state: FSMContext, profiles: ResidentProfiles, i18n: I18n, config: Config
) -> None:
    await profiles.give_consent(query.from_user.id, query.from_user.full_name, i18n.current_locale)
    if await state.get_state() in (Onboarding.language.state, Onboarding.consent.state):
        await state.clear()
    await query.answer()
    await shown(query).edit_reply_markup(reply_markup=None)
    await _show_main_menu(
        shown(query),
        _("Thank you. You can now use the menu below. Type /help at any time to see how we can help."),
    )
    resident = await profiles.get(query.from_user.id)
    assert resident is not None, "consent was just stored"
    await shown(query).answer(
        _(
            "Would you like news from the municipality? Choose topics (you can change them any time under “📰 News”)."
        ),
        reply_markup=subscriptions_keyboard(resident, config, i18n.current_locale),
    )


@router.message(Command("help"))
@router.message(F.text == MENU_HELP)
async def show_help(message: Message, config: Config, i18n: I18n) -> None:
    await message.answer(
        _(
            "<b>E-service desk of {municipality}</b>\n\n"
            "Here you can contact the municipality without queues, in Polish, Lithuanian or English: "
            "submit a request, a complaint or a report of a problem, with photos, documents and a location. "
            "You get a case number and the date by which the law requires an answer (20 working days), "
            "and the clerk's answer arrives here.\n\n"
            "/new: submit a request, complaint or report\n"
            "/cases: my cases and their status (or type a case number)\n"
            "/news: announcements and news subscriptions\n"
            "/language: change the language\n"
            "/cancel: leave the current step\n"
            "/start: main menu"
        ).format(municipality=escape(config.municipality.name.get(i18n.current_locale)))
        + "\n\n"
        + _(
            "Your data: /privacy shows the privacy notice, /mydata sends you everything we keep about you, /forget erases your profile."
        )
    )


@router.message(Command("cancel"))
async def cancel(message: Message, state: FSMContext, resident: Resident | None) -> None:
    had_conversation = await state.get_state() is not None
    await state.clear()
    text = _("Cancelled. Nothing was sent.") if had_conversation else _("There is nothing to cancel.")
    if onboarded(resident):
        await _show_main_menu(message, text)
    else:
        await message.answer(text + "\n" + _("Send /start to begin."))


@router.message(StateFilter(Onboarding.language))
async def waiting_for_language(
    message: Message, resident: Resident | None, config: Config, i18n: I18n
) -> None:
    await message.answer(_("Please choose a language with one of the buttons."))
    await _show_language_picker(message, resident, config, i18n)


@router.message(StateFilter(Onboarding.consent))
async def waiting_for_consent(message: Message, config: Config, i18n: I18n) -> None:
    await message.answer(_("To continue, please read the notice and press “Noted”."))
    await _show_notice(message, config, i18n.current_locale)
