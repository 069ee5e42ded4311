"""What several flows show: the main menu, the language picker, the command list."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import TypeGuard

from aiogram.filters import Filter
from aiogram.filters.callback_data import CallbackData
from aiogram.types import BotCommand, CallbackQuery, InlineKeyboardMarkup, Message, ReplyKeyboardMarkup
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import lazy_gettext as __

from bot.config import Config
from bot.keyboards import InlineKeyboardBuilder, ReplyKeyboardBuilder
from bot.services import texts
from bot.services.case_commands import AlreadyAdded, FileLimit, FileQuotaReached
from bot.services.cases import AttachmentDraft
from bot.services.collation import sorted_by_name
from bot.services.texts import LANGUAGE_NAMES
from bot.store.models import CaseKind, Resident

# Language names are written in their own language, whatever the current locale.

MENU_NEW_CASE = __("📝 New case")
MENU_MY_CASES = __("📂 My cases")
MENU_NEWS = __("📰 News")
MENU_PROJECTS = __("🏗 Projects")
MENU_LANGUAGE = __("🌐 Language")
MENU_HELP = __("❓ Help")
MENU_SUGGEST = __("💡 Suggest an improvement")


class UnderAccessibleMessage(Filter):
    """A button pressed under a message the bot can still see and edit. Every router with buttons
    carries it; presses under an inaccessible (deleted or too old) message fall through to
    flows.fallback, which says the button is no longer active."""

    async def __call__(self, query: CallbackQuery) -> bool:
        return isinstance(query.message, Message)


def onboarded(resident: Resident | None) -> TypeGuard[Resident]:
    """The resident chose a language and acknowledged the privacy notice: the menu is theirs."""
    return resident is not None and resident.consent_at is not None


class Onboarded(Filter):
    """Only residents who finished onboarding (`onboarded`). Whom it turns away, flows.fallback
    answers with `start_first_text`."""

    async def __call__(self, event: Message | CallbackQuery, resident: Resident | None = None) -> bool:
        return onboarded(resident)


def start_first_text() -> str:
    """What a resident who has not finished onboarding is told when going anywhere else."""
    return _("Please start with /start: choose your language and accept the privacy notice.")


async def stale_button(query: CallbackQuery) -> None:
    """The one answer to a button that no longer acts: its conversation ended, or it was not ours."""
    await query.answer(_("This button is no longer active."), show_alert=True)


def shown(query: CallbackQuery) -> Message:
    """The message whose button was pressed (accessible: see UnderAccessibleMessage)."""
    assert isinstance(query.message, Message), (
        "the router's UnderAccessibleMessage filter lets only these through"
    )
    return query.message


async def drop_buttons(query: CallbackQuery) -> None:
    """The pressed message's buttons go: they no longer act (Telegram refuses an edit that changes nothing)."""
    if shown(query).reply_markup is not None:
        await shown(query).edit_reply_markup(reply_markup=None)


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
    """ "Choose your language" in every language, the preselected one first."""
    order = [first, *(code for code in LANGUAGE_NAMES if code != first)]
    lines = []
    for code in order:
        with i18n.use_locale(code):
            lines.append(_("Please choose your language."))
    return "\n".join(lines)


MAIN_MENU = (MENU_NEW_CASE, MENU_MY_CASES, MENU_NEWS, MENU_PROJECTS, MENU_LANGUAGE, MENU_HELP, MENU_SUGGEST)


def main_menu() -> ReplyKeyboardMarkup:
    builder = ReplyKeyboardBuilder()
    for entry in MAIN_MENU:
        builder.button(text=str(entry))
    builder.adjust(2, 2, 2, 1)
    return builder.as_markup(resize_keyboard=True, is_persistent=True)


def is_navigation(text: str | None) -> bool:
    """A command or a main-menu button (in the current language): where the resident goes next,
    never an answer to a question."""
    return text is not None and (text.startswith("/") or text in {str(entry) for entry in MAIN_MENU})


def resident_commands() -> list[BotCommand]:
    """The command menu, in the current locale."""
    return [
        BotCommand(command="start", description=_("Main menu")),
        BotCommand(command="new", description=_("Submit a request, complaint or report")),
        BotCommand(command="cases", description=_("My cases and their status")),
        BotCommand(command="news", description=_("News and subscriptions")),
        BotCommand(command="projects", description=_("The municipality's projects: follow them")),
        BotCommand(command="language", description=_("Change the language")),
        BotCommand(command="help", description=_("What this bot can do")),
        BotCommand(command="privacy", description=_("Privacy notice and your data")),
        BotCommand(command="cancel", description=_("Leave the current step")),
    ]


# Albums arrive as separate updates a few milliseconds apart: acknowledge once, after the last.
ACKNOWLEDGE_AFTER = 0.8
_acknowledgements: dict[Hashable, asyncio.Task[None]] = {}
_sending: set[asyncio.Task[object] | None] = set()  # acknowledgements past their wait, being sent


def acknowledge_later(key: Hashable, send: Callable[[], Awaitable[object]]) -> None:
    """Run `send` once `key` (a chat, an album) has been quiet for a moment; a newer call replaces it."""
    cancel_acknowledgement(key)

    async def later() -> None:
        await asyncio.sleep(ACKNOWLEDGE_AFTER)
        _acknowledgements.pop(key, None)  # from here on, a newer call no longer cancels it
        sending = asyncio.current_task()
        _sending.add(sending)
        try:
            await send()
        finally:
            _sending.discard(sending)

    _acknowledgements[key] = asyncio.create_task(later())


def acknowledgements_pending() -> bool:
    """Whether an acknowledgement waits for quiet or is being sent (the tests' "settled" barrier)."""
    return bool(_acknowledgements or _sending)


_albums: dict[str, list[Message]] = {}


def collect_album(message: Message, handle: Callable[[list[Message]], Awaitable[object]]) -> None:
    """Albums arrive as one update per item: `handle` gets them all, once the last has come."""
    group_id = message.media_group_id
    assert group_id is not None, "only album items are collected"
    _albums.setdefault(group_id, []).append(message)

    async def whole() -> None:
        await handle(_albums.pop(group_id))

    acknowledge_later(("album", group_id), whole)


def cancel_acknowledgement(key: Hashable) -> None:
    pending = _acknowledgements.pop(key, None)
    if pending is not None:
        pending.cancel()


def attachment_of(message: Message) -> AttachmentDraft:
    """The photo (largest size) or document of a message, as stored with a case."""
    if message.photo:
        photo = message.photo[-1]
        return AttachmentDraft(
            "photo",
            photo.file_id,
            photo.file_unique_id,
            message.caption,
            message.media_group_id,
            file_size=photo.file_size,
        )
    document = message.document
    assert document is not None, "called for photos and documents only"
    return AttachmentDraft(
        "document",
        document.file_id,
        document.file_unique_id,
        message.caption,
        message.media_group_id,
        file_name=document.file_name,
        mime_type=document.mime_type,
        file_size=document.file_size,
    )


# The most a bot may download from Telegram (getFile): a larger file could not be kept.
MAX_FILE_BYTES = 20 * 1024 * 1024


def too_big_to_keep(message: Message) -> bool:
    """A photo or document the municipality could not download into its storage (over 20 MB)."""
    size = (
        message.photo[-1].file_size
        if message.photo
        else message.document.file_size
        if message.document
        else None
    )
    return (size or 0) > MAX_FILE_BYTES


def too_big_text() -> str:
    """What the resident is told about a file over 20 MB, in their language."""
    return _(
        "This file is larger than 20 MB: the municipality cannot keep files that large, so it was not added. "
        "Please send a smaller file, or split it into parts of up to 20 MB."
    )


def files_refused_text(refused: FileQuotaReached | AlreadyAdded) -> str:
    """Why a resident's file was not added to the case, in their language (nothing else changed)."""
    if isinstance(refused, AlreadyAdded):
        return _("This file is already in the case; it was not added again.")
    maximum = refused.maximum
    if refused.limit is FileLimit.CASE_FILES:
        return _(
            "A case can hold at most {max} file; this one was not added.",
            "A case can hold at most {max} files; this one was not added.",
            maximum,
        ).format(max=maximum)
    if refused.limit is FileLimit.CASE_BYTES:
        return _("The files of a case can take up at most {size}; this one was not added.").format(
            size=texts.file_size(maximum)
        )
    if refused.limit is FileLimit.DAY_FILES:
        return _(
            "You can send at most {max} file a day; this one was not added. Please send the rest tomorrow.",
            "You can send at most {max} files a day; this one was not added. Please send the rest tomorrow.",
            maximum,
        ).format(max=maximum)
    return _(
        "Your files can take up at most {size} a day; this one was not added. Please send the rest tomorrow."
    ).format(size=texts.file_size(maximum))


def kind_keyboard(pick: Callable[[str], CallbackData], cancel: CallbackData) -> InlineKeyboardMarkup:
    """The kinds of case with their icons, one a row, then "Cancel" (residents' and clerks' forms)."""
    builder = InlineKeyboardBuilder()
    for kind in CaseKind:
        builder.button(text=f"{texts.KIND_ICONS[kind]} {texts.kind_label(kind)}", callback_data=pick(kind))
    builder.button(text=_("✖️ Cancel"), callback_data=cancel)
    builder.adjust(1)
    return builder.as_markup()


def category_keyboard(
    config: Config, locale: str, pick: Callable[[str], CallbackData], cancel: CallbackData
) -> InlineKeyboardMarkup:
    """The municipality file's categories, two a row in its order, then "Cancel"."""
    categories = config.municipality.categories
    builder = InlineKeyboardBuilder()
    for entry in categories:
        builder.button(text=entry.get(locale), callback_data=pick(entry.id))
    builder.button(text=_("✖️ Cancel"), callback_data=cancel)
    builder.adjust(*([2] * (-(-len(categories) // 2))), 1)
    return builder.as_markup()


ELDERSHIPS_PER_PAGE = 8


def eldership_keyboard(
    config: Config,
    locale: str,
    page: int,
    pick: Callable[[str], CallbackData],
    turn: Callable[[int], CallbackData],
    extra: list[tuple[str, CallbackData]],
) -> InlineKeyboardMarkup:
    """The elderships in the reader's language and alphabet, 8 a page, then `extra` buttons."""
    entries = sorted_by_name(config.municipality.elderships, locale, name=lambda e: e.get(locale))
    pages = max(1, -(-len(entries) // ELDERSHIPS_PER_PAGE))
    page = min(max(page, 0), pages - 1)
    shown = entries[page * ELDERSHIPS_PER_PAGE : (page + 1) * ELDERSHIPS_PER_PAGE]
    builder = InlineKeyboardBuilder()
    for entry in shown:
        builder.button(text=entry.get(locale), callback_data=pick(entry.id))
    sizes = [2] * (-(-len(shown) // 2))
    navigation = [
        (label, target) for label, target in (("◀", page - 1), ("▶", page + 1)) if 0 <= target < pages
    ]
    for label, target in navigation:
        builder.button(text=f"{label} {target + 1}/{pages}", callback_data=turn(target))
    if navigation:
        sizes.append(len(navigation))
    for text, data in extra:
        builder.button(text=text, callback_data=data)
    builder.adjust(*sizes, *([1] * len(extra)))
    return builder.as_markup()
