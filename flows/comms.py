"""Announcements from the communications group (COMMS_CHAT_ID, texts in ADMIN_LOCALE):
/broadcast → language → content → optional second language → audience (with the number of
recipients) → preview exactly as residents see it → send; /broadcasts; /stop <id>.
Only the communications group can broadcast; anything else is refused and logged."""

from __future__ import annotations

import logging
from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject, Filter, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlalchemy import select

from bot.config import Config
from bot.services import texts
from bot.services.announcements import Announcements
from bot.services.broadcaster import Broadcaster, send_version
from bot.services.clerk_desk import StaffChats
from bot.services.news import ELDERSHIP_TOPIC, Audience, NewsService
from bot.store.models import Broadcast
from flows.common import LANGUAGE_NAMES, answer_query, collect_album, eldership_keyboard

log = logging.getLogger(__name__)
router = Router(name="comms")


class InCommsGroup(Filter):
    async def __call__(self, event: Message | CallbackQuery, chats: StaffChats) -> bool:
        message = event.message if isinstance(event, CallbackQuery) else event
        return message is not None and message.chat.id == chats.comms


class Compose(StatesGroup):
    language = State()
    content = State()
    second = State()
    audience = State()


class Cmp(CallbackData, prefix="cm"):
    action: str  # lang | more | aud_topic | aud_lang | aud_eld | aud_page | preview | send | cancel
    value: str = ""


def _cancel_button(builder: InlineKeyboardBuilder) -> None:
    builder.button(text=_("✖ Cancel"), callback_data=Cmp(action="cancel"))


async def _outside_comms(query: CallbackQuery, chats: StaffChats) -> bool:
    return query.message is None or query.message.chat.id != chats.comms


@router.callback_query(Cmp.filter(), _outside_comms)
async def refuse_elsewhere(query: CallbackQuery) -> None:
    """An announcement button pressed outside the communications group."""
    log.warning("broadcast button pressed outside the communications group", extra={"user_id": query.from_user.id})
    await answer_query(query, _("Not allowed here."), alert=True)


@router.message(InCommsGroup(), Command("broadcast"))
async def start_broadcast(message: Message, state: FSMContext) -> None:
    await state.clear()
    await state.set_state(Compose.language)
    builder = InlineKeyboardBuilder()
    for code, name in LANGUAGE_NAMES.items():
        builder.button(text=name, callback_data=Cmp(action="lang", value=code))
    _cancel_button(builder)
    builder.adjust(3, 1)
    await message.reply(_("<b>New announcement.</b> In which language will you write it?"), reply_markup=builder.as_markup())


@router.callback_query(InCommsGroup(), StateFilter(Compose.language, Compose.second), Cmp.filter(F.action == "lang"))
async def language_chosen(query: CallbackQuery, callback_data: Cmp, state: FSMContext) -> None:
    if callback_data.value not in LANGUAGE_NAMES:
        await answer_query(query, _("This cannot be done now."), alert=True)
        return
    await state.update_data(current=callback_data.value)
    await state.set_state(Compose.content)
    await answer_query(query)
    await query.message.edit_text(
        _("Send the announcement in {language}: a text, a photo or a document with a caption, or an album.").format(language=LANGUAGE_NAMES[callback_data.value])
    )


def _version_of(messages: list[Message]) -> dict[str, Any]:
    first = messages[0]
    if first.text:
        return {"text": first.html_text}
    files = [{"kind": "photo", "file_id": m.photo[-1].file_id} if m.photo else {"kind": "document", "file_id": m.document.file_id} for m in messages]
    caption = next((m.html_text for m in messages if m.caption), None)
    return {"files": files, "caption": caption}


@router.message(InCommsGroup(), StateFilter(Compose.content), F.text | F.photo | F.document, ~F.text.startswith("/"))
async def content_given(message: Message, state: FSMContext) -> None:
    if message.text and len(message.text) > 4000:
        await message.reply(_("This is too long for one message; please shorten it to 4000 characters."))
        return
    if message.caption and len(message.caption) > 1000:
        await message.reply(_("A caption can have at most 1000 characters; please shorten it."))
        return
    if message.media_group_id:
        collect_album(message, lambda album: _store_version(message, state, _version_of(album)))
        return
    await _store_version(message, state, _version_of([message]))


async def _store_version(message: Message, state: FSMContext, version: dict[str, Any]) -> None:
    data = await state.get_data()
    versions = {**data.get("versions", {}), data["current"]: version}
    await state.update_data(versions=versions)
    missing = [code for code in LANGUAGE_NAMES if code not in versions]
    await state.set_state(Compose.second)
    builder = InlineKeyboardBuilder()
    for code in missing:
        builder.button(text=_("➕ {language} version").format(language=LANGUAGE_NAMES[code]), callback_data=Cmp(action="lang", value=code))
    builder.button(text=_("➡ Choose the audience"), callback_data=Cmp(action="more"))
    _cancel_button(builder)
    builder.adjust(1)
    await message.reply(
        _("Saved. Residents get their language's version; the others get the first one. Add another language, or go on."),
        reply_markup=builder.as_markup(),
    )


async def _audience_view(state: FSMContext, news: NewsService, config: Config) -> tuple[str, InlineKeyboardMarkup]:
    data = await state.get_data()
    audience = Audience(**data.get("audience", {}))
    count = len(await news.recipients(audience))
    locale = config.settings.admin_locale
    municipality = config.municipality
    builder = InlineKeyboardBuilder()
    topics = [(None, _("Everyone")), *((t.id, t.get(locale)) for t in municipality.news_topics), (ELDERSHIP_TOPIC, _("Eldership news"))]
    for topic_id, name in topics:
        mark = "● " if audience.topic == topic_id else ""
        builder.button(text=mark + name, callback_data=Cmp(action="aud_topic", value=topic_id or ""))
    for code, name in [("", _("All languages")), *LANGUAGE_NAMES.items()]:
        mark = "● " if (audience.locale or "") == code else ""
        builder.button(text=mark + name, callback_data=Cmp(action="aud_lang", value=code))
    eldership = municipality.eldership_by_id.get(audience.eldership or "")
    builder.button(
        text=_("🏘 Eldership: {name}").format(name=eldership.get(locale) if eldership else _("all")), callback_data=Cmp(action="aud_page", value="0")
    )
    builder.button(text=_("👁 Preview"), callback_data=Cmp(action="preview"))
    _cancel_button(builder)
    builder.adjust(*([2] * (-(-len(topics) // 2))), 4, 1, 1, 1)
    text = _("<b>Who should get it?</b>\nRecipients now: <b>{count}</b> (residents who blocked the bot are not counted).").format(count=count)
    return text, builder.as_markup()


@router.callback_query(InCommsGroup(), StateFilter(Compose.second), Cmp.filter(F.action == "more"))
async def choose_audience(query: CallbackQuery, state: FSMContext, news: NewsService, config: Config) -> None:
    await state.set_state(Compose.audience)
    await answer_query(query)
    text, keyboard = await _audience_view(state, news, config)
    await query.message.edit_text(text, reply_markup=keyboard)


@router.callback_query(InCommsGroup(), StateFilter(Compose.audience), Cmp.filter(F.action.in_({"aud_topic", "aud_lang", "aud_eld"})))
async def audience_changed(query: CallbackQuery, callback_data: Cmp, state: FSMContext, news: NewsService, config: Config) -> None:
    data = await state.get_data()
    audience = dict(data.get("audience", {}))
    key = {"aud_topic": "topic", "aud_lang": "locale", "aud_eld": "eldership"}[callback_data.action]
    value = callback_data.value or None
    valid = {
        "topic": {t.id for t in config.municipality.news_topics} | {ELDERSHIP_TOPIC},
        "locale": set(LANGUAGE_NAMES),
        "eldership": set(config.municipality.eldership_by_id),
    }[key]
    if value is not None and value not in valid:
        await answer_query(query, _("This cannot be done now."), alert=True)
        return
    audience[key] = value
    await state.update_data(audience=audience)
    await answer_query(query)
    text, keyboard = await _audience_view(state, news, config)
    await query.message.edit_text(text, reply_markup=keyboard)


@router.callback_query(InCommsGroup(), StateFilter(Compose.audience), Cmp.filter(F.action == "aud_page"))
async def audience_elderships(query: CallbackQuery, callback_data: Cmp, config: Config) -> None:
    await answer_query(query)
    keyboard = eldership_keyboard(
        config, config.settings.admin_locale, int(callback_data.value or 0),
        pick=lambda eldership_id: Cmp(action="aud_eld", value=eldership_id),
        turn=lambda target: Cmp(action="aud_page", value=str(target)),
        extra=[(_("All elderships"), Cmp(action="aud_eld", value=""))],
    )  # fmt: skip
    await query.message.edit_reply_markup(reply_markup=keyboard)


@router.callback_query(InCommsGroup(), StateFilter(Compose.audience), Cmp.filter(F.action == "preview"))
async def preview(query: CallbackQuery, state: FSMContext, bot: Bot, news: NewsService) -> None:
    data = await state.get_data()
    count = len(await news.recipients(Audience(**data.get("audience", {}))))
    await answer_query(query)
    await query.message.edit_reply_markup(reply_markup=None)
    for code, version in data["versions"].items():
        await query.message.answer(_("Preview, {language}:").format(language=LANGUAGE_NAMES[code]))
        await send_version(bot, query.message.chat.id, version)
    builder = InlineKeyboardBuilder()
    builder.button(text=_("✅ Send to {count} residents").format(count=count), callback_data=Cmp(action="send"))
    _cancel_button(builder)
    builder.adjust(1)
    await query.message.answer(_("This is exactly what residents will see. Send it?"), reply_markup=builder.as_markup())


@router.callback_query(InCommsGroup(), StateFilter(Compose.audience), Cmp.filter(F.action == "send"))
async def send(query: CallbackQuery, state: FSMContext, news: NewsService, broadcaster: Broadcaster, announcements: Announcements, config: Config) -> None:
    data = await state.get_data()
    await state.clear()
    audience = Audience(**data.get("audience", {}))
    recipients = await news.recipients(audience)
    await answer_query(query)
    await query.message.edit_reply_markup(reply_markup=None)
    broadcast = await broadcaster.create(
        data["versions"], recipients, audience=audience.as_dict(), author=(query.from_user.id, query.from_user.full_name), paid=config.settings.paid_broadcast,
    )  # fmt: skip
    progress = await query.message.answer(announcements.render(broadcast.id, await broadcaster.counts(broadcast.id)))
    async with broadcaster.database.write() as session:
        stored = await session.get(Broadcast, broadcast.id)
        stored.progress_chat_id, stored.progress_message_id = progress.chat.id, progress.message_id
    broadcast.progress_chat_id, broadcast.progress_message_id = progress.chat.id, progress.message_id
    announcements.start(broadcast)


@router.callback_query(InCommsGroup(), Cmp.filter(F.action == "cancel"))
async def cancel(query: CallbackQuery, state: FSMContext) -> None:
    await state.clear()
    await answer_query(query, _("Cancelled."))
    await query.message.edit_reply_markup(reply_markup=None)


@router.message(InCommsGroup(), Command("broadcasts"))
async def recent(message: Message, broadcaster: Broadcaster) -> None:
    async with broadcaster.database.read() as session:
        rows = (await session.execute(select(Broadcast).order_by(Broadcast.id.desc()).limit(10))).scalars().all()
    if not rows:
        await message.reply(_("No announcements yet."))
        return
    lines = [_("<b>Recent announcements</b>")]
    for broadcast in rows:
        counts = await broadcaster.counts(broadcast.id)
        lines.append(
            f"#{broadcast.id} · {texts.day(broadcast.created_at.date())} · {broadcast.status} · "
            + _("sent {sent} of {total}, blocked {blocked}, failed {failed}").format(
                sent=counts["sent"], total=counts.total, blocked=counts["blocked"], failed=counts["failed"]
            )
        )
    await message.reply("\n".join(lines))


@router.message(InCommsGroup(), Command("stop"))
async def stop(message: Message, command: CommandObject, broadcaster: Broadcaster) -> None:
    if not command.args or not command.args.strip().lstrip("#").isdigit():
        await message.reply(_("Usage: /stop 12 (the number from /broadcasts)"))
        return
    broadcast_id = int(command.args.strip().lstrip("#"))
    stopped = await broadcaster.stop(broadcast_id)
    counts = await broadcaster.counts(broadcast_id)
    if not stopped:
        await message.reply(_("Announcement #{id} is not being sent (finished, stopped, or unknown).").format(id=broadcast_id))
        return
    await message.reply(_("Announcement #{id} stopped: {sent} sent, {cancelled} not sent.").format(id=broadcast_id, sent=counts["sent"], cancelled=counts["cancelled"]))
