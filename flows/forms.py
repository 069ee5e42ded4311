"""One engine for step-by-step forms (the residents' intake, the clerks' /register): a table of
`Step`s says what each step asks, with which keyboard, how its answer is read and checked, and
which draft field it fills; `Form` runs the table. It asks the next step (or the summary), asks
again with a reason on an answer it does not take, answers a stale button, lets a step be changed
from the summary and cancels. The draft (a pydantic model) lives in the FSM storage, so a restart
continues where the person was.

Answers the table cannot say (files, a shared location or contact) stay handlers of their flow,
registered before `Form.attach` so that they come first; they move on with `Form.advance`."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from aiogram import F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardMarkup,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)
from aiogram.utils.i18n import gettext as _
from pydantic import BaseModel

from bot.config import Config
from bot.keyboards import InlineKeyboardBuilder
from bot.services import texts
from bot.services.numbers import PAGE_MAX, whole_number
from flows.common import shown, stale_button

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove


class FormDraft(BaseModel):
    """What a person has entered so far; a form's draft adds its fields."""

    editing: bool = False  # one step changed from the summary: back to the summary after it


D = TypeVar("D", bound=FormDraft)


class Refused(Exception):
    """An answer the step does not take; the message says why, in the person's language. A
    button's refusal needs none: the button is not one this step made (a stale one)."""


@dataclass(frozen=True)
class Turn(Generic[D]):
    """Where the form stands when a step asks or reads: the draft, the settings, the keyboard page
    and the form's own buttons (`button("cat", "roads")`)."""

    draft: D
    config: Config
    button: Callable[[str, str], CallbackData]
    page: int = 0

    @property
    def locale(self) -> str:
        return texts.current_locale()


def _no_keyboard(turn: Turn[Any]) -> Markup | None:
    return None


@dataclass(frozen=True)
class Step(Generic[D]):
    """One question of a form. `choice` names the action of its buttons (whose value `parse`
    reads) or, when None, the step takes a text (read by `parse`); without `parse` the flow's own
    handlers answer it. The value goes to `field`, or through `fill` when it touches more."""

    state: State
    question: Callable[[Turn[D]], str]
    keyboard: Callable[[Turn[D]], Markup | None] = _no_keyboard
    choice: str | None = None
    parse: Callable[[str, Turn[D]], Any] | None = None  # the value, or Refused
    field: str | None = None
    fill: Callable[[D, Any], None] | None = None
    chosen: Callable[[Turn[D]], str] | None = (
        None  # after a button: the question becomes the choice, without buttons
    )
    other: Callable[[], str] | None = (
        None  # anything else: this, with the step's keyboard; None: the question again
    )
    then: Callable[[D], State] | None = (
        None  # the next step (the summary's state for the summary); None: the next in the table
    )
    label: Callable[[], str] | None = (
        None  # its button under "Change something"; None: not changed from the summary
    )
    reset: Callable[[D], None] | None = None  # when changed from the summary, what starts again (the files)
    paged: bool = False  # its keyboard has pages ("page" buttons)

    @property
    def name(self) -> str:
        return (self.state.state or "").rpartition(":")[2]  # "Intake:kind" → "kind"


async def show_choice(query: CallbackQuery, text: str | None) -> None:
    """The question answered by a button shows the choice (or stays), without its buttons."""
    await query.answer()
    with contextlib.suppress(TelegramBadRequest):  # already edited: the same button pressed twice
        if text is None:
            await shown(query).edit_reply_markup(reply_markup=None)
        else:
            await shown(query).edit_text(text)


class Form(Generic[D]):
    """A table of steps and what they share. `button` is the form's CallbackData (fields `action`
    and `value`); its actions "cancel", "page", "edit", "back", "goto" and "submit" are the
    form's, the steps' `choice` actions theirs. Submitting is the flow's own handler."""

    def __init__(
        self,
        *,
        states: type[StatesGroup],
        draft: type[D],
        steps: Sequence[Step[D]],
        button: type[CallbackData],
        summary_state: State,
        summary: Callable[[Turn[D]], str],
        submit_label: Callable[[], str],
        use_the_buttons: Callable[[], str],
        cancelled: Callable[[], str],
        menu: Callable[[], ReplyKeyboardMarkup] | None = None,
        before_summary: Callable[[], tuple[str, Markup]] | None = None,
        in_group: bool = False,
    ) -> None:
        self.states, self.draft, self.steps, self.button = (
            states,
            draft,
            {step.state: step for step in steps},
            button,
        )
        self.order = [step.state for step in steps]
        self.summary_state, self.summary, self.submit_label = summary_state, summary, submit_label
        self.use_the_buttons, self.cancelled, self.menu, self.before_summary = (
            use_the_buttons,
            cancelled,
            menu,
            before_summary,
        )
        # In a group: refusals quote the message they answer, and commands pass on to other flows.
        self.in_group = in_group

    # --- the draft ---------------------------------------------------------------------------

    async def load(self, state: FSMContext) -> D:
        data = await state.get_data()
        # Until the intake's draft had a type, its fields lay at the top level of the FSM data under
        # the same names: a resident in the middle of a case when that version started continues it.
        return self.draft.model_validate(data.get("draft", data))

    async def save(self, state: FSMContext, draft: D) -> None:
        await state.update_data(draft=draft.model_dump(mode="json"))

    def _button(self, action: str, value: str = "") -> CallbackData:
        return self.button(action=action, value=value)

    def turn(self, draft: D, config: Config, page: int = 0) -> Turn[D]:
        return Turn(draft, config, self._button, page)

    # --- moving between steps ----------------------------------------------------------------

    async def start(self, message: Message, state: FSMContext, config: Config) -> None:
        """A fresh draft, and the first question."""
        await state.clear()
        await self.save(state, self.draft())
        await self.ask(self.order[0], message, state, config)

    async def ask(self, step: State, message: Message, state: FSMContext, config: Config) -> None:
        """Show the question of `step` (the summary for the summary's state) and wait for its answer."""
        await state.set_state(step)
        turn = self.turn(await self.load(state), config)
        if step == self.summary_state:
            await message.answer(self.summary(turn), reply_markup=self._summary_keyboard())
        else:
            await message.answer(
                self.steps[step].question(turn), reply_markup=self.steps[step].keyboard(turn)
            )

    async def advance(self, after: State, message: Message, state: FSMContext, config: Config) -> None:
        """On to the step after `after`, or back to the summary when a step was changed from it
        (unless the changed step branches with `then` to a step its answer needs, e.g. a phone
        number after "by phone": that one is asked, then the summary)."""
        draft = await self.load(state)
        following = self._following(after, draft)
        branches = self.steps[after].then is not None
        if following == self.summary_state or (draft.editing and not branches):
            await self.show_summary(message, state, config)
        else:
            await self.ask(following, message, state, config)

    def _following(self, after: State, draft: D) -> State:
        then = self.steps[after].then
        if then is not None:
            return then(draft)
        index = self.order.index(after) + 1
        return self.order[index] if index < len(self.order) else self.summary_state

    async def show_summary(self, message: Message, state: FSMContext, config: Config) -> None:
        await state.set_state(self.summary_state)  # with the draft, before any message is sent
        draft = await self.load(state)
        draft.editing = False
        await self.save(state, draft)
        if self.before_summary is not None:
            text, markup = self.before_summary()
            await message.answer(text, reply_markup=markup)
        await self.ask(self.summary_state, message, state, config)

    async def _say(self, message: Message, text: str, markup: Markup | None = None) -> None:
        if self.in_group:
            await message.reply(text, reply_markup=markup)
        else:
            await message.answer(text, reply_markup=markup)

    # --- keyboards -------------------------------------------------------------------------

    def cancel_button(self) -> CallbackData:
        return self._button("cancel")

    def _changeable(self) -> list[Step[D]]:
        return [step for step in self.steps.values() if step.label is not None]

    def _summary_keyboard(self) -> InlineKeyboardMarkup:
        builder = InlineKeyboardBuilder()
        builder.button(text=self.submit_label(), callback_data=self._button("submit"))
        if self._changeable():
            builder.button(text=_("✏️ Change something"), callback_data=self._button("edit"))
        builder.button(text=_("✖️ Cancel"), callback_data=self.cancel_button())
        builder.adjust(1)
        return builder.as_markup()

    def _change_keyboard(self) -> InlineKeyboardMarkup:
        steps = self._changeable()
        builder = InlineKeyboardBuilder()
        for step in steps:
            assert step.label is not None
            builder.button(text=step.label(), callback_data=self._button("goto", step.name))
        builder.button(text=_("⬅️ Back to the summary"), callback_data=self._button("back"))
        builder.adjust(*([2] * (-(-len(steps) // 2))), 1)
        return builder.as_markup()

    # --- the handlers ------------------------------------------------------------------------

    def attach(self, router: Router) -> None:
        """The form's handlers, after the flow's own: buttons, texts, the summary, cancel, and the
        answer to anything else at each step."""
        in_form = StateFilter(self.states)
        router.callback_query(in_form, self.button.filter(F.action == "cancel"))(self._cancel_button)
        router.message(in_form, Command("cancel"))(self._cancel_command)
        for step in self.steps.values():
            here = StateFilter(step.state)
            if step.choice is not None and step.parse is not None:
                router.callback_query(here, self.button.filter(F.action == step.choice))(
                    self._chosen_handler(step)
                )
            elif step.parse is not None:
                text = F.text & ~F.text.startswith("/") if self.in_group else F.text
                router.message(here, text)(self._text_handler(step))
            if step.paged:
                router.callback_query(here, self.button.filter(F.action == "page"))(self._page_handler(step))
        summary = StateFilter(self.summary_state)
        router.callback_query(summary, self.button.filter(F.action == "edit"))(self._change_something)
        router.callback_query(summary, self.button.filter(F.action == "back"))(self._back_to_summary)
        router.callback_query(summary, self.button.filter(F.action == "goto"))(self._change_step)
        anything = [~F.text.startswith("/")] if self.in_group else []
        for step in self.steps.values():
            router.message(StateFilter(step.state), *anything)(self._other_handler(step))
        router.message(summary, *anything)(self._question_again)

    def _chosen_handler(self, step: Step[D]) -> Callable[..., Any]:
        assert step.parse is not None
        parse = step.parse

        async def chosen(query: CallbackQuery, callback_data: Any, state: FSMContext, config: Config) -> None:
            draft = await self.load(state)
            try:
                value = parse(callback_data.value, self.turn(draft, config))
            except Refused:
                await stale_button(query)
                return
            self._fill(step, draft, value)
            await self.save(state, draft)
            await show_choice(query, step.chosen(self.turn(draft, config)) if step.chosen else None)
            await self.advance(step.state, shown(query), state, config)

        return chosen

    def _text_handler(self, step: Step[D]) -> Callable[..., Any]:
        assert step.parse is not None
        parse = step.parse

        async def given(message: Message, state: FSMContext, config: Config) -> None:
            draft = await self.load(state)
            turn = self.turn(draft, config)
            try:
                value = parse(message.text or "", turn)
            except Refused as refused:
                await self._say(message, str(refused), step.keyboard(turn))
                return
            self._fill(step, draft, value)
            await self.save(state, draft)
            await self.advance(step.state, message, state, config)

        return given

    def _page_handler(self, step: Step[D]) -> Callable[..., Any]:
        async def turned(query: CallbackQuery, callback_data: Any, state: FSMContext, config: Config) -> None:
            page = whole_number(callback_data.value, PAGE_MAX)
            if page is None:  # not a button this bot made
                await stale_button(query)
                return
            await query.answer()
            keyboard = step.keyboard(self.turn(await self.load(state), config, page))
            assert isinstance(keyboard, InlineKeyboardMarkup), "a paged step's keyboard is inline"
            await shown(query).edit_reply_markup(reply_markup=keyboard)

        return turned

    def _other_handler(self, step: Step[D]) -> Callable[..., Any]:
        other = step.other

        async def anything_else(message: Message, state: FSMContext, config: Config) -> None:
            if other is None:
                await self._question_again(message, state, config)
                return
            await self._say(message, other(), step.keyboard(self.turn(await self.load(state), config)))

        return anything_else

    async def _question_again(self, message: Message, state: FSMContext, config: Config) -> None:
        """The question again, with its buttons: the one above may be gone (scrolled far away in a
        busy chat, deleted, or never delivered while Telegram failed), and nobody is left stuck."""
        await self._say(message, self.use_the_buttons())
        raw = await state.get_state()
        current = next((step for step in (*self.order, self.summary_state) if step.state == raw), None)
        if current is not None:
            await self.ask(current, message, state, config)

    def _fill(self, step: Step[D], draft: D, value: Any) -> None:
        if step.fill is not None:
            step.fill(draft, value)
        elif step.field is not None:
            setattr(draft, step.field, value)

    async def _cancel_button(self, query: CallbackQuery, state: FSMContext) -> None:
        await state.clear()
        if self.menu is None:  # in a group the question itself says so
            await show_choice(query, self.cancelled())
            return
        await show_choice(query, None)  # in a private chat the main menu comes back with it
        await shown(query).answer(self.cancelled(), reply_markup=self.menu())

    async def _cancel_command(self, message: Message, state: FSMContext) -> None:
        await state.clear()
        await self._say(message, self.cancelled(), self.menu() if self.menu else None)

    async def _change_something(self, query: CallbackQuery) -> None:
        await query.answer()
        await shown(query).edit_reply_markup(reply_markup=self._change_keyboard())

    async def _back_to_summary(self, query: CallbackQuery) -> None:
        """Nothing to change after all: the summary's own buttons again."""
        await query.answer()
        await shown(query).edit_reply_markup(reply_markup=self._summary_keyboard())

    async def _change_step(
        self, query: CallbackQuery, callback_data: Any, state: FSMContext, config: Config
    ) -> None:
        step = next((step for step in self._changeable() if step.name == callback_data.value), None)
        if step is None:
            await stale_button(query)
            return
        await show_choice(query, None)
        draft = await self.load(state)
        draft.editing = True
        if step.reset is not None:
            step.reset(draft)
        await self.save(state, draft)
        await self.ask(step.state, shown(query), state, config)
