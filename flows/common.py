"""What several flows show: the main menu, the language picker, the command list."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import BotCommand, InlineKeyboardMarkup, ReplyKeyboardMarkup
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import lazy_gettext as __
from aiogram.utils.keyboard import InlineKeyboardBuilder, ReplyKeyboardBuilder

# Language names are written in their own language, whatever the current locale.
LANGUAGE_NAMES = {"pl": "Polski", "lt": "Lietuvių", "en": "English"}

MENU_LANGUAGE = __("🌐 Language")
MENU_HELP = __("❓ Help")


class LanguageChoice(CallbackData, prefix="lang"):
    code: str


def language_keyboard(preselected: str | None) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for code, name in LANGUAGE_NAMES.items():
        label = f"✓ {name}" if code == preselected else name
        builder.button(text=label, callback_data=LanguageChoice(code=code))
    builder.adjust(3)
    return builder.as_markup()


def language_prompt(i18n: I18n, first: str) -> str:
    """"Choose your language" in every language, the preselected one first."""
    order = [first, *(code for code in LANGUAGE_NAMES if code != first)]
    lines = []
    for code in order:
        with i18n.use_locale(code):
            lines.append(_("Please choose your language."))
    return "\n".join(lines)


def main_menu() -> ReplyKeyboardMarkup:
    builder = ReplyKeyboardBuilder()
    builder.button(text=str(MENU_LANGUAGE))
    builder.button(text=str(MENU_HELP))
    builder.adjust(2)
    return builder.as_markup(resize_keyboard=True, is_persistent=True)


def resident_commands() -> list[BotCommand]:
    """The command menu, in the current locale."""
    return [
        BotCommand(command="start", description=_("Main menu")),
        BotCommand(command="language", description=_("Change the language")),
        BotCommand(command="help", description=_("What this bot can do")),
        BotCommand(command="cancel", description=_("Leave the current step")),
    ]
