"""Announcements from the communications group (COMMS_CHAT_ID, texts in ADMIN_LOCALE):
/broadcast → language → content → optional second language → audience (with the number of
recipients) → preview exactly as residents see it → send; /broadcasts; /stop <id>.
/poll → the questions (typed or a .txt file, see bot.services.polls) → audience → preview → send
through the same outbox; /polls; /results <id> (counts and a chart); /close <id>.
Only the communications group can broadcast, and there only its staff (bot.services.roles: the
municipality file's `[comms]` list and the group's admins; when nobody is listed, every member
who may post); anyone else is refused (flows.staff) and logged."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from html import escape
from typing import Any

from aiogram import BaseMiddleware, Bot, F, Router
from aiogram.filters import Command, CommandObject, Filter, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import BufferedInputFile, CallbackQuery, InlineKeyboardMarkup, Message, TelegramObject
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.config import Config
from bot.keyboards import InlineKeyboardBuilder
from bot.services import texts
from bot.services.announcements import Announcements
from bot.services.area_notices import AreaNotices
from bot.services.broadcaster import (
    Broadcaster,
    BroadcastFile,
    Button,
    FilesVersion,
    TextVersion,
    Version,
    send_version,
    versions_from_json,
    versions_to_json,
)
from bot.services.news import ELDERSHIP_TOPIC, Audience, NewsService
from bot.services.numbers import PAGE_MAX, whole_number
from bot.services.polls import (
    OPTIONS_MAX,
    OPTIONS_MIN,
    POLL_FILE_MAX_BYTES,
    QUESTIONS_MAX,
    PollFormatError,
    Question,
    parse_poll,
    question_view,
    questions_from_json,
    questions_of,
    questions_to_json,
)
from bot.services.report_output import png, poll_chart, results_message
from bot.services.surveys import PollResults, SurveyService
from bot.services.teams import TeamDirectory
from bot.services.texts import LANGUAGE_NAMES
from bot.store.models import PollStatus
from flows.common import UnderAccessibleMessage, collect_album, eldership_keyboard, shown
from flows.staff import acted, person_of, refused

log = logging.getLogger(__name__)


class InCommsGroup(Filter):
    async def __call__(self, event: Message | CallbackQuery, chats: TeamDirectory) -> bool:
        message = event.message if isinstance(event, CallbackQuery) else event
        return message is not None and message.chat.id == chats.comms


class CommsStaffOnly(BaseMiddleware):
    """Whatever a handler of the communications group would do is for its staff: anyone else is
    refused (flows.staff) before it; every action is logged with the person."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        assert isinstance(event, Message | CallbackQuery)
        chats: TeamDirectory = data["chats"]
        user = await person_of(event, chats.roles)
        if user is None:
            return None
        role = await chats.comms_role(user.id)
        if not role.acts:
            await refused(event, user, _("Only the communications staff can do this."), chats.roles)
            return None
        acted(event, user, role)
        return await handler(event, data)


router = Router(name="comms")
router.callback_query.filter(UnderAccessibleMessage())
router.message.filter(InCommsGroup())
router.callback_query.filter(InCommsGroup())
router.message.middleware(CommsStaffOnly())
router.callback_query.middleware(CommsStaffOnly())

# Presses of the announcement buttons from anywhere else (a forwarded preview, a forged query).
outside = Router(name="comms-outside")


class Compose(StatesGroup):
    language = State()
    content = State()
    second = State()
    audience = State()


class ComposePoll(StatesGroup):
    questions = State()


class Cmp(CallbackData, prefix="cm"):
    action: str  # lang | more | aud_topic | aud_lang | aud_eld | aud_page | preview | send | cancel
    value: str = ""


def _cancel_button(builder: InlineKeyboardBuilder) -> None:
    builder.button(text=_("✖️ Cancel"), callback_data=Cmp(action="cancel"))


@outside.callback_query(Cmp.filter())
async def refuse_elsewhere(query: CallbackQuery) -> None:
    """An announcement button pressed outside the communications group."""
    log.warning(
        "broadcast button pressed outside the communications group", extra={"user_id": query.from_user.id}
    )
    await query.answer(_("Not allowed here."), show_alert=True)


def _language_question() -> tuple[str, InlineKeyboardMarkup]:
    builder = InlineKeyboardBuilder()
    for code, name in LANGUAGE_NAMES.items():
        builder.button(text=name, callback_data=Cmp(action="lang", value=code))
    _cancel_button(builder)
    builder.adjust(3, 1)
    return _("<b>New announcement.</b> In which language will you write it?"), builder.as_markup()


@router.message(Command("broadcast"))
async def start_broadcast(message: Message, state: FSMContext) -> None:
    await state.clear()
    await state.set_state(Compose.language)
    text, keyboard = _language_question()
    await message.reply(text, reply_markup=keyboard)


@router.callback_query(StateFilter(Compose.language, Compose.second), Cmp.filter(F.action == "lang"))
async def language_chosen(query: CallbackQuery, callback_data: Cmp, state: FSMContext) -> None:
    if callback_data.value not in LANGUAGE_NAMES:
        await query.answer(_("This cannot be done now."), show_alert=True)
        return
    await state.update_data(current=callback_data.value)
    await state.set_state(Compose.content)
    await query.answer()
    await shown(query).edit_text(
        _(
            "Send the announcement in {language}: a text, a photo or a document with a caption, or an album."
        ).format(language=LANGUAGE_NAMES[callback_data.value])
    )


def _version_of(messages: list[Message]) -> Version:
    first = messages[0]
    if first.text:
        return TextVersion(text=first.html_text)
    files = [
        BroadcastFile(kind="photo", file_id=m.photo[-1].file_id)
        if m.photo
        else BroadcastFile(kind="document", file_id=m.document.file_id)
        for m in messages
    ]
    caption = next((m.html_text for m in messages if m.caption), None)
    return FilesVersion(files=files, caption=caption)


@router.message(StateFilter(Compose.content), F.text | F.photo | F.document, ~F.text.startswith("/"))
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


async def _store_version(message: Message, state: FSMContext, version: Version) -> None:
    data = await state.get_data()
    if "current" not in data:  # an album that ended after the composition was cancelled: nothing to keep
        return
    versions = {**versions_from_json(data.get("versions", {})), data["current"]: version}
    await state.update_data(versions=versions_to_json(versions))
    await state.set_state(Compose.second)
    text, keyboard = await _versions_question(state)
    await message.reply(text, reply_markup=keyboard)


async def _versions_question(state: FSMContext) -> tuple[str, InlineKeyboardMarkup]:
    versions = versions_from_json((await state.get_data()).get("versions", {}))
    builder = InlineKeyboardBuilder()
    for code in (code for code in LANGUAGE_NAMES if code not in versions):
        builder.button(
            text=_("➕ {language} version").format(language=LANGUAGE_NAMES[code]),
            callback_data=Cmp(action="lang", value=code),
        )
    builder.button(text=_("➡️ Choose the audience"), callback_data=Cmp(action="more"))
    _cancel_button(builder)
    builder.adjust(1)
    return _(
        "Saved. Residents get their language's version; the others get the first one. Add another language, or go on."
    ), builder.as_markup()


@router.message(StateFilter(Compose.language, Compose.second, Compose.audience), ~F.text.startswith("/"))
async def use_the_buttons(message: Message, state: FSMContext, news: NewsService, config: Config) -> None:
    """The question again, with its buttons: the one above may be far up, or was never delivered
    (or its buttons were taken away by a preview that failed on the way)."""
    await message.reply(_("Please answer with the buttons of the question below, or “✖️ Cancel”."))
    step = await state.get_state()
    if step == Compose.language.state:
        text, keyboard = _language_question()
    elif step == Compose.second.state:
        text, keyboard = await _versions_question(state)
    else:
        text, keyboard = await _audience_view(state, news, config)
    await message.answer(text, reply_markup=keyboard)


@router.message(StateFilter(Compose, ComposePoll), Command("cancel"))
async def cancel_command(message: Message, state: FSMContext) -> None:
    await state.clear()
    await message.reply(_("Cancelled."))


async def _audience_view(
    state: FSMContext, news: NewsService, config: Config
) -> tuple[str, InlineKeyboardMarkup]:
    data = await state.get_data()
    audience = Audience(**data.get("audience", {}))
    count = await news.count(audience)
    locale = config.settings.admin_locale
    municipality = config.municipality
    builder = InlineKeyboardBuilder()
    topics = [
        (None, _("Everyone")),
        *((t.id, t.get(locale)) for t in municipality.news_topics),
        (ELDERSHIP_TOPIC, _("Eldership news")),
    ]
    for topic_id, name in topics:
        mark = "● " if audience.topic == topic_id else ""
        builder.button(text=mark + name, callback_data=Cmp(action="aud_topic", value=topic_id or ""))
    for code, name in [("", _("All languages")), *LANGUAGE_NAMES.items()]:
        mark = "● " if (audience.locale or "") == code else ""
        builder.button(text=mark + name, callback_data=Cmp(action="aud_lang", value=code))
    eldership = municipality.eldership_by_id.get(audience.eldership or "")
    label = (
        f"🏘 {eldership.get(locale)}" if eldership else _("🏘 All elderships")
    )  # the name alone: a long one fits a row
    builder.button(text=label, callback_data=Cmp(action="aud_page", value="0"))
    builder.button(text=_("👁 Preview"), callback_data=Cmp(action="preview"))
    _cancel_button(builder)
    # Two topics to a row while each label fits half a row (24 characters), else one.
    per_row = 2 if all(len(name) <= TOPIC_HALF_ROW for _topic, name in topics) else 1
    builder.adjust(*([per_row] * (-(-len(topics) // per_row))), 4, 1, 1, 1)
    text = _(
        "<b>Who should get it?</b>\nRecipients now: <b>{count}</b> (residents who blocked the bot are not counted)."
    ).format(count=count)
    return text, builder.as_markup()


@router.callback_query(StateFilter(Compose.second), Cmp.filter(F.action == "more"))
async def choose_audience(query: CallbackQuery, state: FSMContext, news: NewsService, config: Config) -> None:
    await state.set_state(Compose.audience)
    await query.answer()
    text, keyboard = await _audience_view(state, news, config)
    await shown(query).edit_text(text, reply_markup=keyboard)


@router.callback_query(
    StateFilter(Compose.audience), Cmp.filter(F.action.in_({"aud_topic", "aud_lang", "aud_eld"}))
)
async def audience_changed(
    query: CallbackQuery, callback_data: Cmp, state: FSMContext, news: NewsService, config: Config
) -> None:
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
        await query.answer(_("This cannot be done now."), show_alert=True)
        return
    audience[key] = value
    await state.update_data(audience=audience)
    await query.answer()
    text, keyboard = await _audience_view(state, news, config)
    await shown(query).edit_text(text, reply_markup=keyboard)


@router.callback_query(StateFilter(Compose.audience), Cmp.filter(F.action == "aud_page"))
async def audience_elderships(query: CallbackQuery, callback_data: Cmp, config: Config) -> None:
    page = whole_number(callback_data.value, PAGE_MAX)
    if page is None:  # not a button this bot made
        await query.answer(_("This cannot be done now."), show_alert=True)
        return
    await query.answer()
    keyboard = eldership_keyboard(
        config,
        config.settings.admin_locale,
        page,
        pick=lambda eldership_id: Cmp(action="aud_eld", value=eldership_id),
        turn=lambda target: Cmp(action="aud_page", value=str(target)),
        extra=[(_("All elderships"), Cmp(action="aud_eld", value=""))],
    )
    await shown(query).edit_reply_markup(reply_markup=keyboard)


@router.callback_query(StateFilter(Compose.audience), Cmp.filter(F.action == "preview"))
async def preview(query: CallbackQuery, state: FSMContext, bot: Bot, news: NewsService) -> None:
    data = await state.get_data()
    count = await news.count(Audience(**data.get("audience", {})))
    await query.answer()
    await shown(query).edit_reply_markup(reply_markup=None)
    for code, version in versions_from_json(data["versions"]).items():
        await shown(query).answer(_("Preview, {language}:").format(language=LANGUAGE_NAMES[code]))
        await send_version(bot, shown(query).chat.id, version)
    builder = InlineKeyboardBuilder()
    builder.button(
        text=_("✅ Send to {count} resident", "✅ Send to {count} residents", count).format(count=count),
        callback_data=Cmp(action="send"),
    )
    _cancel_button(builder)
    builder.adjust(1)
    await shown(query).answer(
        _("This is exactly what residents will see. Send it?"), reply_markup=builder.as_markup()
    )


@router.callback_query(StateFilter(Compose.audience), Cmp.filter(F.action == "send"))
async def send(
    query: CallbackQuery,
    state: FSMContext,
    news: NewsService,
    broadcaster: Broadcaster,
    announcements: Announcements,
    config: Config,
    surveys: SurveyService,
    i18n: I18n,
) -> None:
    data = await state.get_data()
    await state.clear()
    audience = Audience(**data.get("audience", {}))
    recipients = await news.recipients(audience)
    await query.answer()
    await shown(query).edit_reply_markup(reply_markup=None)
    author = (query.from_user.id, query.from_user.full_name)
    poll, versions = None, versions_from_json(data["versions"])
    if "poll" in data:
        questions = questions_from_json(data["poll"])
        poll = await surveys.create_poll(questions, audience.as_dict(), author)
        versions = _poll_versions(poll.id, questions, i18n)
    broadcast = await broadcaster.create(
        versions, recipients, audience=audience.as_dict(), author=author, paid=config.settings.paid_broadcast
    )
    if poll is not None:
        await surveys.attach_broadcast(poll.id, broadcast.id)
        await shown(query).answer(
            _(
                "Poll #{poll} is being sent as announcement #{id}. /results {poll} shows the answers so far; /close {poll} ends the poll."
            ).format(poll=poll.id, id=broadcast.id)
        )
    progress = await shown(query).answer(
        announcements.render(broadcast.id, await broadcaster.counts(broadcast.id))
    )
    await broadcaster.show_progress_in(broadcast, progress.chat.id, progress.message_id)
    announcements.start(broadcast)


@router.callback_query(Cmp.filter(F.action == "cancel"))
async def cancel(query: CallbackQuery, state: FSMContext) -> None:
    await state.clear()
    await query.answer(_("Cancelled."))
    await shown(query).edit_reply_markup(reply_markup=None)


@router.message(Command("broadcasts"))
async def recent(message: Message, broadcaster: Broadcaster, area_notices: AreaNotices) -> None:
    rows = await broadcaster.recent()
    if not rows:
        await message.reply(_("No announcements yet."))
        return
    cases = await area_notices.case_numbers(rows)  # area notices sent from a case's card
    lines = [_("<b>Recent announcements</b>")]
    for broadcast in rows:
        counts = await broadcaster.counts(broadcast.id)
        of_case = (
            _("📣 area notice of {number}").format(number=cases[broadcast.id]) + " · "
            if broadcast.id in cases
            else ""
        )
        lines.append(
            f"#{broadcast.id} · {texts.day(broadcast.created_at.date())} · {broadcast.status} · "
            + of_case
            + _("sent {sent} of {total}, blocked {blocked}, failed {failed}").format(
                sent=counts["sent"], total=counts.total, blocked=counts["blocked"], failed=counts["failed"]
            )
        )
    await message.reply("\n".join(lines))


def _number_given(command: CommandObject) -> int | None:
    """The announcement's or poll's number after a command ("12" or "#12"); None if there is none,
    or it is no number an announcement or poll can have ("abc", "-1", "²", 99999999999999999999)."""
    return whole_number((command.args or "").strip().removeprefix("#"))


@router.message(Command("stop"))
async def stop(message: Message, command: CommandObject, broadcaster: Broadcaster) -> None:
    broadcast_id = _number_given(command)
    if broadcast_id is None:
        await message.reply(_("Usage: /stop 12 (the number from /broadcasts)"))
        return
    stopped = await broadcaster.stop(broadcast_id)
    counts = await broadcaster.counts(broadcast_id)
    if not stopped:
        await message.reply(
            _("Announcement #{id} is not being sent (finished, stopped, or unknown).").format(id=broadcast_id)
        )
        return
    await message.reply(
        _("Announcement #{id} stopped: {sent} sent, {cancelled} not sent.").format(
            id=broadcast_id, sent=counts["sent"], cancelled=counts["cancelled"]
        )
    )


# --- polls -----------------------------------------------------------------------------------

# A topic on half a row: 24 characters with the "● " that marks the chosen one.
TOPIC_HALF_ROW = 22

POLL_EXAMPLE = """# …
Q: Jak ocenia Pan/Pani godziny pracy urzędu? | Kaip vertinate savivaldybės darbo laiką?
- Dobrze | Gerai
- Źle | Blogai
Q+: Co chciał(a)by Pan/Pani załatwiać przez internet? | Ką norėtumėte tvarkyti internetu?
- Zaświadczenia | Pažymas
- Zgłoszenia | Pranešimus"""


def _poll_versions(poll_id: int, questions: list[Question], i18n: I18n) -> dict[str, Version]:
    """The first question as each language's residents get it (buttons in their language)."""
    versions: dict[str, Version] = {}
    for code in LANGUAGE_NAMES:
        with i18n.use_locale(code):
            text, keyboard = question_view(poll_id, questions, code)
        versions[code] = TextVersion(text=text, keyboard=Button.rows_of(keyboard))
    return versions


@router.message(Command("poll"))
async def start_poll(message: Message, state: FSMContext) -> None:
    await state.clear()
    await state.set_state(ComposePoll.questions)
    builder = InlineKeyboardBuilder()
    _cancel_button(builder)
    await message.reply(
        _(
            "<b>New poll.</b> Send the questions in this format, as a message or as a .txt file "
            "(Q: one answer, Q+: several answers allowed; Polish | Lithuanian; questions: at most {questions}; options of a question: {min} to {max}):"
        ).format(questions=QUESTIONS_MAX, min=OPTIONS_MIN, max=OPTIONS_MAX)
        + f"\n\n<pre>{escape(POLL_EXAMPLE)}</pre>",
        reply_markup=builder.as_markup(),
    )


@router.message(StateFilter(ComposePoll.questions), F.text | F.document, ~F.text.startswith("/"))
async def poll_questions(
    message: Message, state: FSMContext, bot: Bot, news: NewsService, config: Config, i18n: I18n
) -> None:
    if message.document:
        if (message.document.file_size or 0) > POLL_FILE_MAX_BYTES:
            await message.reply(
                _("The file is too large: a poll file has at most {size} KB.").format(
                    size=POLL_FILE_MAX_BYTES // 1024
                )
            )
            return
        try:
            source = (await bot.download(message.document)).read().decode("utf-8-sig")
        except UnicodeDecodeError:
            await message.reply(_("The file must be plain text in UTF-8 (.txt)."))
            return
    else:
        source = message.text
    try:
        questions = parse_poll(source)
    except PollFormatError as exc:
        await message.reply(escape(str(exc)))
        return
    await state.update_data(
        poll=questions_to_json(questions), versions=versions_to_json(_poll_versions(0, questions, i18n))
    )
    await state.set_state(Compose.audience)
    text, keyboard = await _audience_view(state, news, config)
    await message.reply(
        _("The poll has {count} question.", "The poll has {count} questions.", len(questions)).format(
            count=len(questions)
        )
        + " "
        + _("The preview shows the first one as residents get it.")
        + "\n\n"
        + text,
        reply_markup=keyboard,
    )


@router.message(StateFilter(ComposePoll.questions), ~F.text.startswith("/"))
async def poll_questions_wrong(message: Message) -> None:
    await message.reply(_("Please send the questions as text or as a .txt file."))


async def _post_results(message: Message, results: PollResults, config: Config) -> None:
    locale = config.settings.admin_locale
    await message.reply(results_message(results, locale))
    if results.respondents:
        chart = await asyncio.to_thread(lambda: png(poll_chart(results, locale)))
        await message.answer_photo(BufferedInputFile(chart, f"poll-{results.poll.id}.png"))


@router.message(Command("results"))
async def poll_results(
    message: Message, command: CommandObject, surveys: SurveyService, config: Config
) -> None:
    poll_id = _number_given(command)
    results = await surveys.results(poll_id) if poll_id is not None else None
    if results is None:
        await message.reply(_("Usage: /results 3 (the number from /polls)"))
        return
    await _post_results(message, results, config)


@router.message(Command("close"))
async def close_poll(
    message: Message, command: CommandObject, surveys: SurveyService, broadcaster: Broadcaster, config: Config
) -> None:
    poll_id = _number_given(command)
    poll = await surveys.close_poll(poll_id) if poll_id is not None else None
    if poll is None:
        await message.reply(_("Usage: /close 3 (the number from /polls)"))
        return
    if poll.broadcast_id is not None:
        await broadcaster.stop(poll.broadcast_id)  # residents not reached yet are not asked any more
    await message.reply(_("Poll #{id} is closed: no more answers are taken.").format(id=poll.id))
    results = await surveys.results(poll.id)
    if results is not None:
        await _post_results(message, results, config)


@router.message(Command("polls"))
async def recent_polls(message: Message, surveys: SurveyService, config: Config) -> None:
    polls = await surveys.recent_polls()
    if not polls:
        await message.reply(_("No polls yet. /poll creates one."))
        return
    locale = config.settings.admin_locale
    answers = await surveys.answer_counts([poll.id for poll in polls])
    lines = [_("<b>Recent polls</b>")]
    for poll in polls:
        count = answers.get(poll.id, 0)
        state = _("open") if poll.status == PollStatus.OPEN else _("closed")
        first = escape(questions_of(poll)[0].text.get(locale))
        lines.append(
            f"#{poll.id} · {texts.day(poll.created_at.date())} · {state} · "
            + _("{count} answer", "{count} answers", count).format(count=count)
            + f"\n{first}"
        )
    await message.reply("\n".join(lines))


@router.message(Command("help"))
async def comms_help(message: Message) -> None:
    await message.reply(
        _(
            "<b>Announcements and polls</b>\n"
            "/broadcast: a new announcement (language, text or files, audience, preview, send)\n"
            "/broadcasts: recent announcements with their figures\n"
            "/stop ID: stop sending an announcement\n"
            "/poll: a new poll (questions typed or as a .txt file, audience, preview, send)\n"
            "/polls: recent polls\n"
            "/results ID: a poll's answers so far, with a chart\n"
            "/close ID: end a poll\n"
            "/cancel: stop writing an announcement or a poll"
        )
    )
