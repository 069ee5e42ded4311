"""The visit survey (bot.services.visits): a scanned poster's `/start v_<place>`, the survey's
buttons and the proposal in private chats; `/qr <place>` in the team groups prints the poster."""

from __future__ import annotations

import logging
from html import escape

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.filters import Command, CommandObject, CommandStart, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import BufferedInputFile, CallbackQuery, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.config import Config
from bot.municipality import Place
from bot.services.cases import visible_text
from bot.services.surveys import AlreadyAnswered, SurveyService
from bot.services.visits import (
    PROPOSAL_MAX,
    STEPS,
    VisitDesk,
    VisitTap,
    already_answered,
    answers_of,
    is_visit_payload,
    place_of_payload,
    proposal_view,
    step_value_valid,
    step_view,
    survey_locale,
    thanks,
    unknown_place,
    valid_so_far,
)
from flows.clerk import InTeamGroup
from flows.common import UnderAccessibleMessage, main_menu, shown

log = logging.getLogger(__name__)

router = Router(name="visits")
router.message.filter(F.chat.type == ChatType.PRIVATE)
router.callback_query.filter(UnderAccessibleMessage(), F.message.chat.type == ChatType.PRIVATE)

staff = Router(name="visits-staff")
staff.message.filter(InTeamGroup())


class VisitSurvey(StatesGroup):
    proposal = State()  # the place, the language and the answers so far in the data


@router.message(CommandStart(deep_link=True, magic=F.args.func(is_visit_payload)))
async def scanned(
    message: Message,
    command: CommandObject,
    state: FSMContext,
    config: Config,
    i18n: I18n,
    surveys: SurveyService,
) -> None:
    await state.clear()
    place = place_of_payload(command.args, config)
    if place is None:
        await message.answer(unknown_place(), reply_markup=main_menu())
        return
    assert message.from_user is not None
    locale = i18n.current_locale
    if await surveys.visited_today(place.id, message.from_user.id):
        await message.answer(already_answered(place, locale))
        return
    text, keyboard = step_view(place, locale, "")
    await message.answer(text, reply_markup=keyboard)


@router.callback_query(VisitTap.filter())
async def tapped(
    query: CallbackQuery,
    callback_data: VisitTap,
    state: FSMContext,
    config: Config,
    i18n: I18n,
    surveys: SurveyService,
) -> None:
    place = config.municipality.place_by_id.get(callback_data.place)
    locale = survey_locale(callback_data.lc)
    so_far, act = callback_data.so_far, callback_data.act
    if place is None or locale is None or not valid_so_far(so_far):
        await query.answer(_("This cannot be done now."), show_alert=True)
        return
    with i18n.use_locale(locale):
        if await surveys.visited_today(place.id, query.from_user.id):
            if (
                shown(query).reply_markup is None
            ):  # said so already (Telegram refuses an edit that changes nothing)
                await query.answer(already_answered(place, locale), show_alert=True)
                return
            await query.answer()
            await shown(query).edit_text(already_answered(place, locale))
            return
        if act == "n":
            await query.answer()
        elif act == "l" and not so_far:
            await query.answer()
            await _show(query, *step_view(place, locale, ""))
        elif act in ("a", "k") and (
            step_value_valid(so_far, callback_data.value) if act == "a" else 0 < len(so_far) < STEPS
        ):
            await query.answer()
            so_far += callback_data.value if act == "a" else "-"
            if len(so_far) < STEPS:
                await _show(query, *step_view(place, locale, so_far))
            else:
                await state.set_state(VisitSurvey.proposal)
                await state.update_data(place=place.id, lc=locale, so_far=so_far)
                await _show(query, *proposal_view(place, locale, so_far))
        elif act == "s" and so_far:
            if await state.get_state() == VisitSurvey.proposal.state:
                await state.clear()
            await query.answer()
            _stored, text = await _store(place, locale, so_far, None, query.from_user.id, surveys)
            await shown(query).edit_text(text)
        else:
            await query.answer(_("This cannot be done now."), show_alert=True)


@router.message(StateFilter(VisitSurvey.proposal), F.text, ~F.text.startswith("/"))
async def proposal_written(
    message: Message, state: FSMContext, config: Config, i18n: I18n, surveys: SurveyService, visits: VisitDesk
) -> None:
    data = await state.get_data()
    place = config.municipality.place_by_id.get(data.get("place", ""))
    locale = survey_locale(data.get("lc", "")) or i18n.current_locale
    so_far = data.get("so_far", "")
    with i18n.use_locale(locale):
        if place is None or not so_far or not valid_so_far(so_far):  # the place was removed meanwhile
            await state.clear()
            await message.answer(_("This cannot be done now."))
            return
        proposal = message.text.strip()
        if not visible_text(proposal):
            await _ask_for_text(message, place, locale, so_far)
            return
        if len(proposal) > PROPOSAL_MAX:
            await message.answer(
                _(
                    "That is {length} character; please shorten it to {max}.",
                    "That is {length} characters; please shorten it to {max}.",
                    len(proposal),
                ).format(length=len(proposal), max=PROPOSAL_MAX)
            )
            return
        await state.clear()
        assert message.from_user is not None
        stored, text = await _store(place, locale, so_far, proposal, message.from_user.id, surveys)
        await message.answer(text)
    if stored:
        await visits.post_proposal(place, proposal)


@router.message(StateFilter(VisitSurvey.proposal), ~F.text.startswith("/"))
async def proposal_not_text(message: Message, state: FSMContext, config: Config, i18n: I18n) -> None:
    data = await state.get_data()
    place = config.municipality.place_by_id.get(data.get("place", ""))
    locale = survey_locale(data.get("lc", "")) or i18n.current_locale
    if place is None:
        await state.clear()
        return
    with i18n.use_locale(locale):
        await _ask_for_text(message, place, locale, data.get("so_far", ""))


async def _ask_for_text(message: Message, place: Place, locale: str, so_far: str) -> None:
    """With the button it names: the question above may have scrolled away."""
    _text, keyboard = proposal_view(place, locale, so_far)
    await message.answer(
        _("Please write your proposal as text, or tap “Send, no proposal”."), reply_markup=keyboard
    )


async def _store(
    place: Place, locale: str, so_far: str, proposal: str | None, user_id: int, surveys: SurveyService
) -> tuple[bool, str]:
    """Whether the answer was stored (not: answered today already), and what to tell the visitor (current locale)."""
    try:
        await surveys.answer_visit(place.id, user_id, answers_of(so_far, proposal))
    except AlreadyAnswered:
        return False, already_answered(place, locale)
    return True, thanks()


async def _show(query: CallbackQuery, text: str, keyboard: object) -> None:
    await shown(query).edit_text(text, reply_markup=keyboard)  # type: ignore[arg-type]


# --- staff: the poster ---


@staff.message(Command("qr"))
async def poster(message: Message, command: CommandObject, config: Config, visits: VisitDesk) -> None:
    if message.sender_chat is not None or message.from_user is None:
        await message.reply(
            _(
                "Please post as yourself, not anonymously or as a channel: the case's history must name a person."
            )
        )
        return
    place = config.municipality.place_by_id.get((command.args or "").strip())
    if place is None:
        await message.reply(_usage(visits.places_printable_in(message.chat.id), config))
        return
    if not await visits.may_print(place, message.chat.id, message.from_user.id):
        log.warning(
            "poster refused",
            extra={"user_id": message.from_user.id, "chat_id": message.chat.id, "place": place.id},
        )
        await message.reply(
            _(
                "Only the members of {team} (in its group) or of the quality group can print the poster of {place}."
            ).format(
                team=escape(visits.team_of(place).name.get(config.settings.admin_locale)),
                place=escape(place.name.get(config.settings.admin_locale)),
            )
        )
        return
    link, pdf, png = await visits.poster(place)
    caption = _("Visit survey poster for {place} (A4, Polish and Lithuanian). The code opens {link}").format(
        place=escape(place.name.get(config.settings.admin_locale)), link=escape(link)
    )
    await message.answer_document(BufferedInputFile(pdf, f"poster-{place.id}.pdf"), caption=caption)
    await message.answer_document(BufferedInputFile(png, f"poster-{place.id}.png"))


def _usage(places: list[Place], config: Config) -> str:
    locale = config.settings.admin_locale
    usage = _("Usage: /qr PLACE, e.g. /qr {example}.").format(
        example=places[0].id if places else "front-desk-1"
    )
    if not places:
        return (
            usage
            + "\n"
            + _("This group prints no posters: no place of the municipality file belongs to its team.")
        )
    listed = "\n".join(f"• <code>{place.id}</code>: {escape(place.name.get(locale))}" for place in places)
    return usage + "\n" + _("Places whose posters this group prints:") + "\n" + listed
