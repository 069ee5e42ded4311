"""News for residents: the latest announcements, subscriptions with one tap, their eldership;
and noticing when a resident blocks (or unblocks) the bot."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.filters import KICKED, MEMBER, ChatMemberUpdatedFilter, Command
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, ChatMemberUpdated, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.config import Config
from bot.keyboards import InlineKeyboardBuilder
from bot.services import texts
from bot.services.broadcaster import TextVersion, version_for, versions_of
from bot.services.html_text import truncate_html
from bot.services.news import ELDERSHIP_TOPIC, NewsService
from bot.services.numbers import PAGE_MAX, whole_number
from bot.services.profiles import ResidentProfiles
from bot.store.models import Resident
from flows.common import MENU_NEWS, Onboarded, UnderAccessibleMessage, eldership_keyboard, shown, stale_button

router = Router(name="news")
router.callback_query.filter(UnderAccessibleMessage())
router.message.filter(F.chat.type == ChatType.PRIVATE)
router.callback_query.filter(F.message.chat.type == ChatType.PRIVATE)


class NewsChoice(CallbackData, prefix="nw"):
    action: str  # topic | eld_menu | eld | page | latest
    value: str = ""


def subscriptions_keyboard(resident: Resident, config: Config, locale: str) -> InlineKeyboardMarkup:
    topics = resident.news_topics or []
    builder = InlineKeyboardBuilder()
    for topic in config.municipality.news_topics:
        mark = "✅" if topic.id in topics else "➕"
        builder.button(
            text=f"{mark} {topic.get(locale)}", callback_data=NewsChoice(action="topic", value=topic.id)
        )
    eldership = config.municipality.eldership_by_id.get(resident.eldership_id or "")
    if eldership:
        mark = "✅" if ELDERSHIP_TOPIC in topics else "➕"
        builder.button(
            text=f"{mark} " + _("News of {eldership}").format(eldership=eldership.get(locale)),
            callback_data=NewsChoice(action="topic", value=ELDERSHIP_TOPIC),
        )
    builder.button(
        text=_("🏘 Change my eldership") if eldership else _("🏘 Choose my eldership"),
        callback_data=NewsChoice(action="eld_menu"),
    )
    builder.button(text=_("🗞 Latest announcements"), callback_data=NewsChoice(action="latest"))
    builder.adjust(1)
    return builder.as_markup()


def subscriptions_text() -> str:
    return _(
        "<b>News</b>\nTap a topic to subscribe or unsubscribe. Announcements come here, in your language."
    )


async def _latest_text(resident: Resident, news: NewsService, locale: str) -> str:
    latest = await news.latest(resident)
    if not latest:
        return _("There are no announcements for your subscriptions yet.")
    parts = [_("<b>Latest announcements</b>")]
    for broadcast in latest:
        version = version_for(versions_of(broadcast), locale)
        body = (version.text if isinstance(version, TextVersion) else version.caption) or _(
            "(photo or document)"
        )
        parts.append(f"🗓 {texts.day(broadcast.created_at.date())}\n{body}")
    # Newest first: what does not fit in one message is cut, at a point where the HTML still parses.
    return truncate_html("\n\n".join(parts))


@router.message(Command("news"), Onboarded())
@router.message(F.text == MENU_NEWS, Onboarded())
async def news_menu(
    message: Message, resident: Resident, news: NewsService, config: Config, i18n: I18n
) -> None:
    await message.answer(await _latest_text(resident, news, i18n.current_locale))
    await message.answer(
        subscriptions_text(), reply_markup=subscriptions_keyboard(resident, config, i18n.current_locale)
    )


@router.callback_query(NewsChoice.filter(), Onboarded())
async def news_choice(
    query: CallbackQuery,
    callback_data: NewsChoice,
    resident: Resident,
    news: NewsService,
    profiles: ResidentProfiles,
    config: Config,
    i18n: I18n,
) -> None:
    locale = i18n.current_locale
    action, value = callback_data.action, callback_data.value
    if action == "latest":
        await query.answer()
        await shown(query).answer(await _latest_text(resident, news, locale))
        return
    if action in ("eld_menu", "page"):
        page = whole_number(value or "0", PAGE_MAX)
        if page is None:  # not a button this bot made
            await stale_button(query)
            return
        await query.answer()
        keyboard = eldership_keyboard(
            config,
            locale,
            page,
            pick=lambda eldership_id: NewsChoice(action="eld", value=eldership_id),
            turn=lambda target: NewsChoice(action="page", value=str(target)),
            extra=[(_("✖️ Cancel"), NewsChoice(action="eld", value="-"))],
        )
        await shown(query).edit_text(_("Which eldership do you live in?"), reply_markup=keyboard)
        return
    if action == "eld":
        if value != "-" and value not in config.municipality.eldership_by_id:
            await stale_button(query)
            return
        if value != "-":
            await news.set_eldership(resident.id, value)
        await query.answer()
    elif action == "topic":
        known = {t.id for t in config.municipality.news_topics} | {ELDERSHIP_TOPIC}
        if value not in known:
            await stale_button(query)
            return
        topics = await news.toggle_topic(resident.id, value)
        await query.answer(_("Subscribed.") if value in topics else _("Unsubscribed."))
    fresh = await profiles.get(resident.id)
    assert fresh is not None, "a resident who pressed a button has a profile"
    await shown(query).edit_text(
        subscriptions_text(), reply_markup=subscriptions_keyboard(fresh, config, locale)
    )


@router.my_chat_member(F.chat.type == ChatType.PRIVATE, ChatMemberUpdatedFilter(member_status_changed=KICKED))
async def blocked(event: ChatMemberUpdated, profiles: ResidentProfiles) -> None:
    await profiles.set_blocked(event.from_user.id, True)


@router.my_chat_member(F.chat.type == ChatType.PRIVATE, ChatMemberUpdatedFilter(member_status_changed=MEMBER))
async def unblocked(event: ChatMemberUpdated, profiles: ResidentProfiles) -> None:
    await profiles.set_blocked(event.from_user.id, False)
