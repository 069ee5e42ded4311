"""Area notices from a case's card (texts in ADMIN_LOCALE): "📣 Notify the area" → the notice in
Polish → in Lithuanian (either may be skipped, not both) → who gets it, with the counts → a
preview exactly as residents see it → send (an announcement linked to the case, its progress
shown here) or cancel. The steps wait for the clerk who pressed, in the case's topic (in a group
without topics, as replies to the bot's question), for PROMPT_MINUTES. The rules live in
bot.services.area_notices."""

from __future__ import annotations

import logging
from html import escape
from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters import Command, Filter, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _

from bot.config import Config
from bot.keyboards import InlineKeyboardBuilder
from bot.services.announcements import Announcements
from bot.services.area_notices import (
    NOTICE_LOCALES,
    AreaNotices,
    NoticeRefused,
    NotifyArea,
    Reach,
    can_notify,
    check_notice,
)
from bot.services.broadcaster import Broadcaster
from bot.services.case_commands import Clerk
from bot.services.case_queries import CaseQueries
from bot.services.numbers import RowId, UserId
from bot.services.prompts import prompt_expired, prompt_expiry
from bot.services.teams import TeamDirectory
from bot.services.texts import LANGUAGE_NAMES
from bot.store.models import Case
from flows.clerk import InTeamGroup, acting_clerk
from flows.common import UnderAccessibleMessage, drop_buttons, shown

log = logging.getLogger(__name__)

router = Router(name="area-notices")
router.callback_query.filter(UnderAccessibleMessage())
router.message.filter(InTeamGroup())
router.callback_query.filter(InTeamGroup())

# Presses of these buttons from anywhere else (a forwarded card, a forged query).
outside = Router(name="area-notices-outside")


class NoticeForm(StatesGroup):
    polish = State()
    lithuanian = State()
    reach = State()
    confirm = State()


STEP_OF_LOCALE = {"pl": NoticeForm.polish, "lt": NoticeForm.lithuanian}


class NoticeStep(CallbackData, prefix="aq"):
    case_id: RowId
    by: UserId  # the clerk whose form it is: another clerk's press leaves it alone
    do: str  # skip | reach | send | cancel
    value: str = ""


@outside.callback_query(NotifyArea.filter())
@outside.callback_query(NoticeStep.filter())
async def pressed_elsewhere(query: CallbackQuery) -> None:
    log.warning("area notice button pressed outside a team group", extra={"user_id": query.from_user.id})
    await query.answer(_("Not allowed here."), show_alert=True)


def _start_again() -> str:
    return _("Press “{button}” on the card to start again.").format(button=_("📣 Notify the area"))


def _keyboard(case_id: int, by: int, *buttons: tuple[str, str, str]) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for text, do, value in buttons:
        builder.button(text=text, callback_data=NoticeStep(case_id=case_id, by=by, do=do, value=value))
    builder.button(text=_("✖️ Cancel"), callback_data=NoticeStep(case_id=case_id, by=by, do="cancel"))
    builder.adjust(1)
    return builder.as_markup()


async def _ask(
    where: Message, state: FSMContext, text: str, keyboard: InlineKeyboardMarkup, minutes: int, **data: Any
) -> None:
    """The next question, in the topic of the message it follows; answers go to it (as replies,
    without topics). Each question waits `minutes` from when it is asked."""
    thread = where.message_thread_id if where.is_topic_message else None
    prompt = await where.bot.send_message(
        where.chat.id, text, message_thread_id=thread, reply_markup=keyboard
    )
    await state.update_data(
        prompt=prompt.message_id,
        in_topic=bool(prompt.is_topic_message),
        expires=prompt_expiry(minutes),
        **data,
    )


def _language_question(case: Case, locale: str, minutes: int) -> str:
    if locale == "pl":
        question = _(
            "{number}: write the notice to the residents in Polish (a water outage, a closed road, a storm). “⏭ Skip” if it goes only in Lithuanian."
        )
    else:
        question = _(
            "{number}: now the notice in Lithuanian. “⏭ Skip” if it goes only in Polish: then everyone gets the Polish one."
        )
    waiting = _("⏳ Waiting for your answer to {number} ({minutes} min).").format(
        number=case.number, minutes=minutes
    )
    return question.format(number=case.number) + "\n\n" + waiting


async def _ask_language(where: Message, state: FSMContext, case: Case, locale: str, config: Config) -> None:
    await state.set_state(STEP_OF_LOCALE[locale])
    minutes = config.settings.prompt_minutes
    by = (await state.get_data())["by"]
    text = _language_question(case, locale, minutes)
    await _ask(where, state, text, _keyboard(case.id, by, (_("⏭ Skip"), "skip", "")), minutes)


@router.callback_query(NotifyArea.filter())
async def notify_area(
    query: CallbackQuery,
    callback_data: NotifyArea,
    state: FSMContext,
    queries: CaseQueries,
    teams: TeamDirectory,
    config: Config,
) -> None:
    case = await queries.get(callback_data.case_id)
    if await acting_clerk(query, case, teams) is None:
        return
    if case is None or not can_notify(case):
        await query.answer(_("This cannot be done with the case now."), show_alert=True)
        return
    await query.answer()
    await state.set_state(None)
    await state.set_data({"case_id": case.id, "by": query.from_user.id, "notice": {}})
    await _ask_language(shown(query), state, case, NOTICE_LOCALES[0], config)


async def _waiting(state: FSMContext, case_id: int) -> dict[str, Any] | None:
    """The form's data if it is this clerk's form for this case and has not run out; else None."""
    data = await state.get_data()
    if (
        await state.get_state() not in {s.state for s in NoticeForm.__states__}
        or data.get("case_id") != case_id
    ):
        return None
    if prompt_expired(data["expires"]):
        await state.clear()
        return None
    return data


async def _next_after_language(
    where: Message, state: FSMContext, case: Case, locale: str, area_notices: AreaNotices, config: Config
) -> None:
    """After the Polish text (or its skip), the Lithuanian; after that, who gets it, unless there is nothing to send."""
    later = NOTICE_LOCALES[NOTICE_LOCALES.index(locale) + 1 :]
    if later:
        await _ask_language(where, state, case, later[0], config)
        return
    data = await state.get_data()
    if not any(data["notice"].values()):
        await state.clear()
        await where.answer(
            _("Nothing to send: the notice has no text in either language.") + " " + _start_again()
        )
        return
    await state.set_state(NoticeForm.reach)
    text, keyboard = await _reach_question(case, data["by"], area_notices, config)
    await _ask(where, state, text, keyboard, config.settings.prompt_minutes)


async def _reach_question(
    case: Case, by: int, area_notices: AreaNotices, config: Config
) -> tuple[str, InlineKeyboardMarkup]:
    counts = await area_notices.counts(case)
    lines = [_("<b>{number}: who should get the notice?</b>").format(number=case.number)]
    lines.append(_("👥 Residents the case affects: {count}").format(count=counts.affected))
    buttons = [(_("👥 Affected residents"), "reach", Reach.AFFECTED.value)]
    if counts.subscribers is None:
        lines.append(_("The case has no eldership, so there are no eldership news subscribers to notify."))
    else:
        entry = config.municipality.eldership_by_id.get(case.eldership_id or "")
        eldership = entry.get(config.settings.admin_locale) if entry else case.eldership_id or ""
        lines.append(
            _("🏘 Subscribers of the news of {eldership}: {count}").format(
                eldership=escape(eldership), count=counts.subscribers
            )
        )
        lines.append(_("👥🏘 Both, each resident once: {count}").format(count=counts.both))
        buttons += [
            (_("🏘 Eldership subscribers"), "reach", Reach.SUBSCRIBERS.value),
            (_("👥🏘 Both"), "reach", Reach.BOTH.value),
        ]
    lines.append(_("Residents who stopped the bot or erased their profile are not counted."))
    return "\n".join(lines), _keyboard(case.id, by, *buttons)


@router.message(StateFilter(NoticeForm), Command("cancel"))
async def cancel_command(message: Message, state: FSMContext) -> None:
    await state.clear()
    await message.reply(_("Cancelled."))


class AnswersNotice(Filter):
    """The clerk's message answers the form's question: in its topic (FSM keys are per clerk and
    topic), or, in a group without topics, as a reply to the question."""

    async def __call__(self, message: Message, state: FSMContext) -> bool:
        data = await state.get_data()
        if data.get("in_topic"):
            return True
        return message.reply_to_message is not None and message.reply_to_message.message_id == data.get(
            "prompt"
        )


@router.message(
    StateFilter(NoticeForm.polish, NoticeForm.lithuanian),
    AnswersNotice(),
    F.text,
    ~F.text.startswith("/"),
    ~F.text.startswith("!"),
)
async def notice_text(
    message: Message, state: FSMContext, queries: CaseQueries, area_notices: AreaNotices, config: Config
) -> None:
    step, data = await state.get_state(), await state.get_data()
    case = await queries.get(data["case_id"])
    if await _waiting(state, data["case_id"]) is None or case is None:
        await message.reply(
            _(
                "The prompt for {number} has expired, so this message was not sent. Press the button on the card again."
            ).format(number=case.number if case else "?")
        )
        return
    try:
        text = check_notice(message.text or "")
    except NoticeRefused as refused:  # asked again; nothing kept
        await message.reply(escape(str(refused)))
        return
    locale = "pl" if step == NoticeForm.polish.state else "lt"
    await state.update_data(notice={**data["notice"], locale: text})
    await _next_after_language(message, state, case, locale, area_notices, config)


@router.message(
    StateFilter(NoticeForm.polish, NoticeForm.lithuanian),
    AnswersNotice(),
    ~F.text.startswith("/"),
    ~F.text.startswith("!"),
)
async def notice_not_text(message: Message) -> None:
    """A photo, a file, a sticker while the notice is asked for: not relayed to the resident, not taken."""
    await message.reply(_("The notice is text only: please write it, or press “⏭ Skip”."))


@router.message(
    StateFilter(NoticeForm.reach, NoticeForm.confirm),
    AnswersNotice(),
    ~F.text.startswith("/"),
    ~F.text.startswith("!"),
)
async def use_the_buttons(message: Message) -> None:
    await message.reply(_("Please answer with the buttons of the question above, or “✖️ Cancel”."))


async def _someone_elses_form(query: CallbackQuery, callback_data: NoticeStep) -> bool:
    return callback_data.by != query.from_user.id


@router.callback_query(NoticeStep.filter(), _someone_elses_form)
async def someone_elses(query: CallbackQuery) -> None:
    """Another clerk's form: its buttons stay for the clerk who is writing the notice."""
    await query.answer(_("This question waits for another clerk's answer."), show_alert=True)


@router.callback_query(NoticeStep.filter(F.do == "cancel"))
async def cancel(query: CallbackQuery, callback_data: NoticeStep, state: FSMContext) -> None:
    if (
        await _waiting(state, callback_data.case_id) is not None
        and (await state.get_data()).get("prompt") == shown(query).message_id
    ):
        await state.clear()
        await query.answer(_("Cancelled."))
    else:
        await query.answer(
            _("Nothing to cancel: this question no longer waits for your answer."), show_alert=True
        )
    await drop_buttons(query)


@router.callback_query(NoticeStep.filter())
async def step_button(
    query: CallbackQuery,
    callback_data: NoticeStep,
    state: FSMContext,
    queries: CaseQueries,
    teams: TeamDirectory,
    area_notices: AreaNotices,
    broadcaster: Broadcaster,
    announcements: Announcements,
    config: Config,
    bot: Bot,
) -> None:
    data = await _waiting(state, callback_data.case_id)
    step = await state.get_state()
    if (
        data is None or data.get("prompt") != shown(query).message_id
    ):  # another question's, a finished or an expired form's
        await query.answer(
            _("This question no longer waits for your answer.") + " " + _start_again(), show_alert=True
        )
        await drop_buttons(query)
        return
    case = await queries.get(callback_data.case_id)
    clerk = await acting_clerk(query, case, teams)
    if clerk is None:
        return
    if case is None or not can_notify(case):
        await state.clear()
        await query.answer(_("This cannot be done with the case now."), show_alert=True)
        await drop_buttons(query)
        return
    if callback_data.do == "skip" and step in (NoticeForm.polish.state, NoticeForm.lithuanian.state):
        await query.answer()
        await drop_buttons(query)
        await _next_after_language(
            shown(query), state, case, "pl" if step == NoticeForm.polish.state else "lt", area_notices, config
        )
    elif callback_data.do == "reach" and step == NoticeForm.reach.state and callback_data.value in set(Reach):
        await _preview(
            query,
            state,
            case,
            Reach(callback_data.value),
            data,
            area_notices,
            bot,
            config.settings.prompt_minutes,
        )
    elif callback_data.do == "send" and step == NoticeForm.confirm.state:
        await _send(query, state, case, clerk, data, area_notices, broadcaster, announcements)
    else:
        await query.answer(_("This cannot be done with the case now."), show_alert=True)


async def _preview(
    query: CallbackQuery,
    state: FSMContext,
    case: Case,
    reach: Reach,
    data: dict[str, Any],
    area_notices: AreaNotices,
    bot: Bot,
    minutes: int,
) -> None:
    counts = await area_notices.counts(case)
    count = {
        Reach.AFFECTED: counts.affected,
        Reach.SUBSCRIBERS: counts.subscribers or 0,
        Reach.BOTH: counts.both,
    }[reach]
    if count == 0 or (reach is not Reach.AFFECTED and counts.subscribers is None):
        await query.answer(_("Nobody would get this notice: choose another audience."), show_alert=True)
        return
    await query.answer()
    await drop_buttons(query)
    where = shown(query)
    thread = where.message_thread_id if where.is_topic_message else None
    for locale, text in area_notices.messages(case, data["notice"]).items():
        await bot.send_message(
            where.chat.id,
            _("Preview, {language}:").format(language=LANGUAGE_NAMES[locale]),
            message_thread_id=thread,
        )
        await bot.send_message(where.chat.id, text, message_thread_id=thread)
    await state.set_state(NoticeForm.confirm)
    label = _("✅ Send to {count} resident", "✅ Send to {count} residents", count).format(count=count)
    await _ask(
        where,
        state,
        _("This is exactly what residents will see. Send it?"),
        _keyboard(case.id, data["by"], (label, "send", "")),
        minutes,
        reach=reach.value,
    )


async def _send(
    query: CallbackQuery,
    state: FSMContext,
    case: Case,
    clerk: Clerk,
    data: dict[str, Any],
    area_notices: AreaNotices,
    broadcaster: Broadcaster,
    announcements: Announcements,
) -> None:
    """Stored with its deliveries and linked to the case (the card counts it); the progress is shown here as the communications group sees it."""
    await state.clear()
    await drop_buttons(query)
    try:
        broadcast, _count = await area_notices.send(case.id, clerk, data["notice"], Reach(data["reach"]))
    except NoticeRefused as refused:
        await query.answer(str(refused), show_alert=True)
        return
    await query.answer()
    where = shown(query)
    progress = await where.answer(announcements.render(broadcast.id, await broadcaster.counts(broadcast.id)))
    await broadcaster.show_progress_in(broadcast, progress.chat.id, progress.message_id)
    announcements.start(broadcast)
