"""The visit survey: a QR poster at each place where people are served opens a one-tap anonymous
survey in the bot (docs/visit-survey.md).

The poster's link is `https://t.me/<bot>?start=v_<place id>`. The survey asks for a score (1-5),
then, each skippable, the waiting time, whether the matter was settled, the clerk's courtesy and a
proposal; "Send" keeps what was given at any step. The answers so far travel in the buttons'
callback data (`VisitTap`: the place, the language and one character per step), so nothing about
an unfinished answer is stored; only while a proposal is being written do they wait in the
conversation state, cleared when the answer is stored. The answer is stored by
`SurveyService.answer_visit` (the place, the day, the answers; a keyed receipt of the person,
place and day in a table of its own), and a proposal is posted to the quality group at once.

Texts are in the current gettext locale; the survey's own language travels in the buttons, so a
visitor who never used the bot changes it with one tap and nothing is stored about them.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from html import escape
from typing import Annotated

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import lazy_gettext as __
from pydantic import Field

from bot.config import Config
from bot.keyboards import InlineKeyboardBuilder
from bot.municipality import PLACE_ID_MAX, Place, Team
from bot.services.posters import PosterText, draw_poster
from bot.services.quality import WAITING_LABELS
from bot.services.surveys import VisitAnswers
from bot.services.teams import TeamDirectory
from bot.services.texts import LANGUAGE_NAMES
from bot.settings import LOCALES
from bot.store.models import ResolvedAnswer, WaitingTime

log = logging.getLogger(__name__)

PAYLOAD_PREFIX = "v_"
PROPOSAL_MAX = 1000

SETTLED_LABELS = {
    ResolvedAnswer.YES: __("Yes"),
    ResolvedAnswer.PARTLY: __("Partly"),
    ResolvedAnswer.NO: __("No"),
}

# One character per step in the buttons: the score, the waiting time (its index), settled
# (y/p/n), the courtesy; "-" for a step skipped. Its length is the number of steps done.
_WAITING_CODES = dict(zip("1234", WaitingTime, strict=True))
_SETTLED_CODES = {"y": ResolvedAnswer.YES, "p": ResolvedAnswer.PARTLY, "n": ResolvedAnswer.NO}
_STEP_VALUES = ("12345", "1234", "ypn", "12345")
_SO_FAR = re.compile(r"[1-5]([1-4-]([ypn-]([1-5-])?)?)?")
STEPS = len(_STEP_VALUES)  # then the proposal


class VisitTap(CallbackData, prefix="vs"):
    """A button of the visit survey. At most 3 + 40 + 4 + 5 + 3 + 2 = 57 bytes of Telegram's 64."""

    place: Annotated[str, Field(max_length=PLACE_ID_MAX)]
    lc: str  # the survey's language
    so_far: str = ""  # one character per step answered (see _SO_FAR)
    act: str = "a"  # a: answer this step with `value` · k: skip it · s: send now · l: show in `lc` · n: nothing (the language shown)
    value: str = ""


def place_of_payload(payload: str | None, config: Config) -> Place | None:
    """The place a deep link's payload (`v_<id>`) names; None for anything else (unknown, removed, forged, too long)."""
    if (
        not payload
        or not payload.startswith(PAYLOAD_PREFIX)
        or len(payload) > len(PAYLOAD_PREFIX) + PLACE_ID_MAX
    ):
        return None
    return config.municipality.place_by_id.get(payload[len(PAYLOAD_PREFIX) :])


def is_visit_payload(payload: str | None) -> bool:
    return payload is not None and payload.startswith(PAYLOAD_PREFIX)


def survey_link(bot_username: str, place: Place) -> str:
    return f"https://t.me/{bot_username}?start={PAYLOAD_PREFIX}{place.id}"


def valid_so_far(so_far: str) -> bool:
    return so_far == "" or _SO_FAR.fullmatch(so_far) is not None


def step_value_valid(so_far: str, value: str) -> bool:
    """`value` is an answer the current step offers (the step after `so_far`)."""
    step = len(so_far)
    return step < STEPS and len(value) == 1 and value in _STEP_VALUES[step]


def answers_of(so_far: str, proposal: str | None = None) -> VisitAnswers:
    """What `so_far` holds (the score given: `so_far` is valid and not empty)."""
    steps = (so_far + "---")[:STEPS]
    return VisitAnswers(
        score=int(steps[0]),
        waited=_WAITING_CODES.get(steps[1]),
        settled=_SETTLED_CODES.get(steps[2]),
        courtesy=int(steps[3]) if steps[3] != "-" else None,
        proposal=proposal,
    )


# --- what the visitor sees (gettext in the survey's locale) ---


def _anonymity_line() -> str:
    return _(
        "🔒 Anonymous: we store the place, the day and your answers, never who you are. Privacy notice: /privacy"
    )


def step_view(place: Place, locale: str, so_far: str) -> tuple[str, InlineKeyboardMarkup]:
    """The question after `so_far`, with its buttons (the first also offers the languages)."""
    step = len(so_far)
    builder = InlineKeyboardBuilder()

    def tap(act: str, value: str = "") -> VisitTap:
        return VisitTap(place=place.id, lc=locale, so_far=so_far, act=act, value=value)

    title = f"<b>{escape(place.name.get(locale))}</b>"
    if step == 0:
        text = "\n\n".join(
            [
                title,
                _(
                    "How satisfied are you with the service today? Tap a score from 1 (very poor) to 5 (very good)."
                ),
                _anonymity_line(),
            ]
        )
        for score in "12345":
            builder.button(text=score, callback_data=tap("a", score))
        for code, name in LANGUAGE_NAMES.items():
            builder.button(
                text=f"✓ {name}" if code == locale else name,
                callback_data=VisitTap(place=place.id, lc=code, act="n" if code == locale else "l"),
            )
        builder.adjust(5, 3)
        return text, builder.as_markup()
    if step == 1:
        question = _("How long did you wait to be served?")
        for code, waited in _WAITING_CODES.items():
            builder.button(text=str(WAITING_LABELS[waited]), callback_data=tap("a", code))
        rows = [2, 2]
    elif step == 2:
        question = _("Was your matter settled?")
        for code, settled in _SETTLED_CODES.items():
            builder.button(text=str(SETTLED_LABELS[settled]), callback_data=tap("a", code))
        rows = [3]
    else:
        question = _("How courteous was the clerk? From 1 (not at all) to 5 (very).")
        for score in "12345":
            builder.button(text=score, callback_data=tap("a", score))
        rows = [5]
    builder.button(text=_("⏭ Skip"), callback_data=tap("k"))
    builder.button(text=_("📨 Send"), callback_data=tap("s"))
    builder.adjust(*rows, 2)
    progress = _("Question {number} of {total}, optional.").format(number=step + 1, total=STEPS + 1)
    return "\n\n".join([title, f"<i>{progress}</i>", question]), builder.as_markup()


def proposal_view(place: Place, locale: str, so_far: str) -> tuple[str, InlineKeyboardMarkup]:
    builder = InlineKeyboardBuilder()
    builder.button(
        text=_("📨 Send, no proposal"),
        callback_data=VisitTap(place=place.id, lc=locale, so_far=so_far, act="s"),
    )
    text = "\n\n".join(
        [
            f"<b>{escape(place.name.get(locale))}</b>",
            _(
                "What could we do better? Write your proposal in one message (up to {max} character), or send your answers as they are.",
                "What could we do better? Write your proposal in one message (up to {max} characters), or send your answers as they are.",
                PROPOSAL_MAX,
            ).format(max=PROPOSAL_MAX),
        ]
    )
    return text, builder.as_markup()


def thanks() -> str:
    return _("Thank you! Your answers have been recorded anonymously. They help us serve you better.")


def already_answered(place: Place, locale: str) -> str:
    return _(
        "You have already answered about {place} today. Thank you! You can answer again after your next visit."
    ).format(place=escape(place.name.get(locale)))


def unknown_place() -> str:
    return _(
        "This survey link does not lead to any of our offices (the place may have been removed). Thank you for wanting to tell us what you think!"
    )


# --- staff: the quality group, posters, proposals ---


@dataclass
class VisitDesk:
    """Where visit surveys meet staff: who prints a place's poster, where proposals go."""

    bot: Bot
    i18n: I18n
    config: Config
    teams: TeamDirectory

    def team_of(self, place: Place) -> Team:
        return self.teams.get(place.team)

    async def may_print(self, place: Place, chat_id: int, user_id: int) -> bool:
        """In the quality group, or the place's team's group, by someone who acts for that team there."""
        candidates = [
            team
            for team in (self.teams.quality_team, self.team_of(place))
            if self.teams.chat_of(team) == chat_id
        ]
        for team in candidates:
            if (await self.teams.role(user_id, team)).acts:
                return True
        return False

    def places_printable_in(self, chat_id: int) -> list[Place]:
        """The places whose posters this group prints (all of them in the quality group)."""
        if chat_id == self.teams.chat_of(self.teams.quality_team):
            return list(self.config.municipality.places)
        return [
            place
            for place in self.config.municipality.places
            if self.teams.chat_of(self.team_of(place)) == chat_id
        ]

    async def post_proposal(self, place: Place, proposal: str) -> None:
        """The proposal to the quality group, in the staff's language, as written (escaped).

        Sent at once, not through the outbox: an outbox row written beside the answer would
        carry the receipt's transaction id and time (see docs/visit-survey.md). The stored
        answer keeps the proposal for the reports if Telegram refuses this post."""
        locale = self.config.settings.admin_locale
        with self.i18n.use_locale(locale):
            heading = _("💡 A visitor's proposal about {place} (visit survey, anonymous):").format(
                place=escape(place.name.get(locale))
            )
        try:
            await self.bot.send_message(
                self.teams.chat_of(self.teams.quality_team), f"{heading}\n\n{escape(proposal)}"
            )
        except TelegramAPIError as exc:
            log.warning(
                "a visit survey's proposal did not reach the quality group",
                extra={"place": place.id, "error": type(exc).__name__},
            )

    async def poster(self, place: Place) -> tuple[str, bytes, bytes]:
        """The place's A4 poster: its link, the PDF and the PNG. The bot's username is getMe's,
        asked once at start-up and remembered by the Bot (`bot.me()`)."""
        me = await self.bot.me()
        assert me.username, "a bot always has a username"
        link = survey_link(me.username, place)
        texts = []
        for locale in ("pl", "lt"):
            with self.i18n.use_locale(locale):
                texts.append(
                    PosterText(
                        municipality=self.config.municipality.name.get(locale),
                        heading=_("How were you served? Tell us in a minute."),
                        explanation=_(
                            "Scan the code with your phone's camera: a short survey opens in Telegram. It is anonymous: we never learn who answered."
                        ),
                        place=_("Place: {place}").format(place=place.name.get(locale)),
                    )
                )
        # Drawing takes a moment of CPU: off the event loop.
        pdf, png = await asyncio.to_thread(draw_poster, link, texts[0], texts[1])
        return link, pdf, png


def survey_locale(code: str) -> str | None:
    return code if code in LOCALES else None
