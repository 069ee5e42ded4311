"""The form engine (flows/forms.py) on a table of its own with two steps, a button step and a text
step: what the person is sent after each answer, and what the FSM storage holds. Telegram is a
session that records each request and answers as Telegram would."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from aiogram import Bot, Dispatcher, Router
from aiogram.client.session.base import BaseSession
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.base import StorageKey
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.methods import AnswerCallbackQuery, SendMessage, TelegramMethod
from aiogram.types import CallbackQuery, Chat, InlineKeyboardMarkup, Message, Update, User
from aiogram.utils.i18n import ConstI18nMiddleware, I18n

from bot.keyboards import InlineKeyboardBuilder
from bot.settings import LOCALES_DIR
from flows.forms import Form, FormDraft, Refused, Step, Turn
from tests.catalog import tr

CHAT = Chat(id=501, type="private")
ANNA = User(id=501, is_bot=False, first_name="Anna")
EPOCH = datetime(2026, 11, 23, tzinfo=UTC)


class Pet(StatesGroup):
    colour = State()
    name = State()
    confirm = State()


class PetButton(CallbackData, prefix="pet"):
    action: str
    value: str = ""


class PetDraft(FormDraft):
    colour: str | None = None
    name: str = ""


def _colours(turn: Turn[PetDraft]) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for colour in ("black", "white"):
        builder.button(text=colour, callback_data=turn.button("colour", colour))
    return builder.as_markup()


def _colour(value: str, turn: Turn[PetDraft]) -> str:
    if value not in ("black", "white"):
        raise Refused
    return value


def _name(text: str, turn: Turn[PetDraft]) -> str:
    if len(text.strip()) < 2:
        raise Refused("A name of two letters at least, please.")
    return text.strip()


FORM: Form[PetDraft] = Form(
    states=Pet,
    draft=PetDraft,
    button=PetButton,
    steps=[
        Step(
            Pet.colour,
            lambda turn: "Which colour?",
            keyboard=_colours,
            choice="colour",
            parse=_colour,
            field="colour",
            label=lambda: "Colour",
        ),
        Step(Pet.name, lambda turn: "Its name?", parse=_name, field="name", label=lambda: "Name"),
    ],
    summary_state=Pet.confirm,
    summary=lambda turn: f"A {turn.draft.colour} pet called {turn.draft.name}",
    submit_label=lambda: "Register",
    use_the_buttons=lambda: "Please use the buttons.",
    cancelled=lambda: "Cancelled.",
)


class Recorder(BaseSession):
    """Telegram as the bot sees it: each request kept, each answered with what Telegram returns."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[TelegramMethod[Any]] = []

    async def make_request(self, bot: Bot, method: TelegramMethod[Any], timeout: int | None = None) -> Any:
        self.requests.append(method)
        if isinstance(method, SendMessage):
            return Message(message_id=len(self.requests), date=EPOCH, chat=CHAT, text=method.text)
        return True  # answerCallbackQuery, and an edit of a message

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        raise NotImplementedError("no downloads in these forms")
        yield b""

    async def close(self) -> None:
        pass

    def sent(self) -> list[str]:
        """The texts sent since the last look."""
        texts = [method.text for method in self.requests if isinstance(method, SendMessage)]
        self.requests.clear()
        return texts


@dataclass
class Conversation:
    dispatcher: Dispatcher
    bot: Bot
    telegram: Recorder
    updates: int = 0

    async def send(self, text: str) -> None:
        self.updates += 1
        message = Message(message_id=1000 + self.updates, date=EPOCH, chat=CHAT, from_user=ANNA, text=text)
        await self.dispatcher.feed_update(self.bot, Update(update_id=self.updates, message=message))

    async def press(self, data: str) -> None:
        self.updates += 1
        shown = Message(message_id=1, date=EPOCH, chat=CHAT, from_user=ANNA, text="(the question)")
        query = CallbackQuery(
            id=str(self.updates), from_user=ANNA, chat_instance="x", data=data, message=shown
        )
        await self.dispatcher.feed_update(self.bot, Update(update_id=self.updates, callback_query=query))

    async def state(self) -> tuple[str | None, dict[str, Any]]:
        key = StorageKey(bot_id=self.bot.id, chat_id=CHAT.id, user_id=ANNA.id)
        storage = self.dispatcher.fsm.storage
        return await storage.get_state(key), await storage.get_data(key)

    def alerts(self) -> list[str | None]:
        return [
            method.text
            for method in self.telegram.requests
            if isinstance(method, AnswerCallbackQuery) and method.show_alert
        ]


def converse(form: Form[Any], command: str) -> Conversation:
    """A dispatcher with only `form` (started by `command`) and a recording Telegram."""
    router = Router()

    @router.message(lambda message: message.text == command)
    async def start(message: Message, state: FSMContext) -> None:
        await form.start(message, state, None)  # type: ignore[arg-type]  # these tables read no settings

    form.attach(router)
    dispatcher = Dispatcher(storage=MemoryStorage())
    dispatcher.include_router(router)
    ConstI18nMiddleware(locale="pl", i18n=I18n(path=LOCALES_DIR, default_locale="en", domain="bot")).setup(
        dispatcher
    )
    dispatcher["config"] = None
    telegram = Recorder()
    return Conversation(dispatcher, Bot("123456:TEST", session=telegram), telegram)


@pytest.fixture
async def chat() -> AsyncIterator[Conversation]:
    chat = converse(FORM, "/pet")
    await chat.send("/pet")
    assert chat.telegram.sent() == ["Which colour?"]
    yield chat


async def test_a_bad_answer_is_refused_and_the_question_stays(chat: Conversation) -> None:
    await chat.send("hello")  # typed where a button is expected: the question again, with its buttons
    assert chat.telegram.sent() == ["Please use the buttons.", "Which colour?"]
    await chat.press("pet:colour:green")  # a button this table never made
    assert chat.alerts() == [tr("pl", "This button is no longer active.")]
    assert (await chat.state())[0] == Pet.colour.state

    await chat.press("pet:colour:black")
    assert chat.telegram.sent() == ["Its name?"]
    await chat.send("X")
    assert chat.telegram.sent() == ["A name of two letters at least, please."]
    state, data = await chat.state()
    assert state == Pet.name.state and data["draft"]["name"] == ""  # nothing stored from the bad answer

    await chat.send("Mruczek")
    assert chat.telegram.sent() == ["A black pet called Mruczek"]
    assert (await chat.state())[0] == Pet.confirm.state


async def test_a_step_changed_from_the_summary_returns_to_the_summary(chat: Conversation) -> None:
    await chat.press("pet:colour:white")
    await chat.send("Mruczek")
    chat.telegram.sent()
    await chat.press("pet:edit:")
    edits = [method for method in chat.telegram.requests if type(method).__name__ == "EditMessageReplyMarkup"]
    labels = [button.text for row in edits[-1].reply_markup.inline_keyboard for button in row]  # type: ignore[attr-defined]
    assert labels == ["Colour", "Name", tr("pl", "⬅️ Back to the summary")]

    await chat.press("pet:goto:colour")
    assert chat.telegram.sent() == ["Which colour?"]
    await chat.press("pet:colour:black")  # straight back to the summary, not on to the name
    assert chat.telegram.sent() == ["A black pet called Mruczek"]
    state, data = await chat.state()
    assert state == Pet.confirm.state and data["draft"]["editing"] is False


async def test_cancel_clears_the_form(chat: Conversation) -> None:
    await chat.press("pet:colour:white")
    await chat.press("pet:cancel:")
    assert (await chat.state()) == (None, {})
    edits = [method for method in chat.telegram.requests if type(method).__name__ == "EditMessageText"]
    assert edits[-1].text == "Cancelled."  # type: ignore[attr-defined]  # in place of the question
    assert chat.telegram.sent() == ["Its name?"]  # the question before it, and nothing after
    await chat.send("Mruczek")  # no longer in the form: nothing answers it
    assert chat.telegram.sent() == []


class Trip(StatesGroup):
    way = State()
    phone = State()
    confirm = State()


class TripButton(CallbackData, prefix="trip"):
    action: str
    value: str = ""


class TripDraft(FormDraft):
    way: str | None = None
    phone: str = ""


def _ways(turn: Turn[TripDraft]) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for way in ("post", "phone"):
        builder.button(text=way, callback_data=turn.button("way", way))
    return builder.as_markup()


# "By phone" needs the number: a branch (then) to a step of its own; "by post" goes to the summary.
TRIP: Form[TripDraft] = Form(
    states=Trip,
    draft=TripDraft,
    button=TripButton,
    steps=[
        Step(
            Trip.way,
            lambda turn: "How shall we answer?",
            keyboard=_ways,
            choice="way",
            parse=lambda value, turn: value,
            field="way",
            then=lambda draft: Trip.phone if draft.way == "phone" else Trip.confirm,
            label=lambda: "Way",
        ),
        Step(Trip.phone, lambda turn: "Your phone?", parse=lambda text, turn: text.strip(), field="phone"),
    ],
    summary_state=Trip.confirm,
    summary=lambda turn: f"By {turn.draft.way} {turn.draft.phone}".strip(),
    submit_label=lambda: "Send",
    use_the_buttons=lambda: "Please use the buttons.",
    cancelled=lambda: "Cancelled.",
)


async def test_a_changed_step_that_branches_asks_the_step_its_answer_needs_then_the_summary() -> None:
    chat = converse(TRIP, "/trip")
    telegram = chat.telegram
    await chat.send("/trip")
    await chat.press("trip:way:post")
    assert telegram.sent() == ["How shall we answer?", "By post"]

    await chat.press("trip:edit:")
    await chat.press("trip:goto:way")
    await chat.press("trip:way:phone")  # the branch: its number is asked before the summary
    assert telegram.sent() == ["How shall we answer?", "Your phone?"]
    await chat.send("+370 600 00000")
    assert telegram.sent() == ["By phone +370 600 00000"]
    assert (await chat.state())[0] == Trip.confirm.state
