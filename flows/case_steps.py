"""The steps a case's forms share (the residents' intake, the clerks' /register): kind, category
and eldership, each with its keyboard, the check of its button and the choice it shows."""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

from aiogram.fsm.state import State
from aiogram.utils.i18n import gettext as _

from bot.config import Config
from bot.services import texts
from bot.store.models import CaseKind
from flows.common import category_keyboard, eldership_keyboard, kind_keyboard
from flows.forms import FormDraft, Refused, Step, Turn

WHOLE_DISTRICT = "-"  # the eldership button for none in particular


def kind_step(state: State, question: Callable[[], str], label: Callable[[], str] | None = None) -> Step[Any]:
    def parse(value: str, turn: Turn[Any]) -> CaseKind:
        if value not in CaseKind.__members__.values():
            raise Refused
        return CaseKind(value)

    return Step(
        state,
        lambda turn: question(),
        keyboard=lambda turn: kind_keyboard(
            lambda kind: turn.button("kind", kind), turn.button("cancel", "")
        ),
        choice="kind",
        parse=parse,
        field="kind",
        label=label,
        chosen=lambda turn: _("Kind: {kind}").format(kind=texts.kind_label(turn.draft.kind)),
    )


def category_step(state: State, label: Callable[[], str] | None = None) -> Step[Any]:
    def parse(value: str, turn: Turn[Any]) -> str:
        if value not in turn.config.municipality.category_by_id:
            raise Refused
        return value

    return Step(
        state,
        lambda turn: _("What is it about?"),
        keyboard=lambda turn: category_keyboard(
            turn.config,
            turn.locale,
            lambda category_id: turn.button("cat", category_id),
            turn.button("cancel", ""),
        ),
        choice="cat",
        parse=parse,
        field="category",
        label=label,
        chosen=lambda turn: _("Category: {name}").format(
            name=escape(turn.config.municipality.category_by_id[turn.draft.category].get(turn.locale))
        ),
    )


def eldership_name(config: Config, locale: str, eldership_id: str | None, unnamed: str) -> str:
    """The eldership's name (escaped) in `locale`, or `unnamed` for the whole district."""
    entry = config.municipality.eldership_by_id.get(eldership_id or "")
    return escape(entry.get(locale)) if entry else unnamed


def eldership_step(
    state: State,
    whole_district: Callable[[], str],
    unnamed: Callable[[], str],
    label: Callable[[], str] | None = None,
) -> Step[Any]:
    """`whole_district` labels the button for none in particular, `unnamed` names that choice."""

    def parse(value: str, turn: Turn[Any]) -> str | None:
        if value != WHOLE_DISTRICT and value not in turn.config.municipality.eldership_by_id:
            raise Refused
        return None if value == WHOLE_DISTRICT else value

    def keyboard(turn: Turn[FormDraft]) -> Any:
        return eldership_keyboard(
            turn.config,
            turn.locale,
            turn.page,
            pick=lambda eldership_id: turn.button("eld", eldership_id),
            turn=lambda target: turn.button("page", str(target)),
            extra=[
                (whole_district(), turn.button("eld", WHOLE_DISTRICT)),
                (_("✖️ Cancel"), turn.button("cancel", "")),
            ],
        )

    return Step(
        state,
        lambda turn: _("Which eldership does it concern?"),
        keyboard=keyboard,
        choice="eld",
        parse=parse,
        field="eldership",
        label=label,
        paged=True,
        chosen=lambda turn: _("Eldership: {name}").format(
            name=eldership_name(turn.config, turn.locale, turn.draft.eldership, unnamed())
        ),
    )
