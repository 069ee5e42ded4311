"""Redis lost while running: each person is asked, in their language, to try again; the outage
is logged once, and its end once. Redis here is a closed port: no server is needed."""

import logging
from datetime import datetime
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from aiogram.fsm.storage.redis import RedisEventIsolation, RedisStorage
from aiogram.methods import AnswerCallbackQuery, SendMessage
from aiogram.types import CallbackQuery, Chat, Message, Update, User
from redis.exceptions import ConnectionError as RedisConnectionError

from bot.app import load_i18n
from bot.middlewares.i18n import ResidentI18nMiddleware
from bot.middlewares.redis_outage import RedisOutageMiddleware
from bot.store.db import Database
from bot.store.models import Resident, utcnow
from tests.conftest import ADMIN_CHAT_ID, COMMS_CHAT_ID, TOKEN

POLISH = "Przepraszamy, z powodu problemu technicznego nie mogliśmy teraz obsłużyć Pana/Pani prośby. Proszę spróbować ponownie za chwilę."
LITHUANIAN = "Atsiprašome, dėl techninio sutrikimo dabar negalėjome įvykdyti Jūsų užklausos. Pabandykite dar kartą po akimirkos."


class RecordingBot(Bot):
    """Records what would be sent to Telegram instead of sending it."""

    def __init__(self) -> None:
        super().__init__(TOKEN)
        self.sent: list[Any] = []  # the methods sent, of any kind

    async def __call__(self, method, request_timeout=None):
        self.sent.append(method)
        return True


def _user(user_id: int, language: str) -> User:
    return User(id=user_id, is_bot=False, first_name="A", language_code=language)


def _message_update(update_id: int, user_id: int = 501, language: str = "pl") -> Update:
    user = _user(user_id, language)
    message = Message(
        message_id=update_id,
        date=datetime.now(),
        chat=Chat(id=user_id, type="private"),
        from_user=user,
        text="Dzień dobry",
    )
    return Update(update_id=update_id, message=message)


def _outage_logs(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "bot.middlewares.redis_outage"]


@pytest.fixture
def locales() -> ResidentI18nMiddleware:
    return ResidentI18nMiddleware(load_i18n("pl"), {ADMIN_CHAT_ID, COMMS_CHAT_ID}.__contains__, "lt")


async def test_every_update_is_answered_and_the_outage_logged_once(
    database: Database, locales, caplog
) -> None:
    storage = RedisStorage.from_url("redis://127.0.0.1:1/0")  # nothing listens on port 1
    dispatcher = Dispatcher(storage=storage, events_isolation=RedisEventIsolation(storage.redis))
    handled: list[int] = []

    @dispatcher.message()
    async def anything(message: Message) -> None:
        handled.append(message.message_id)

    locales.setup(dispatcher)
    outage = RedisOutageMiddleware(database, locales)
    outage.install(dispatcher)
    assert (
        dispatcher.update.outer_middleware[0] is outage
    )  # outside aiogram's FSM middleware, which takes the lock
    assert dispatcher.update.outer_middleware[-1] == outage._handled  # and inside it

    bot = RecordingBot()
    caplog.set_level(logging.INFO)
    for update_id in (1, 2, 3):
        await dispatcher.feed_update(bot, _message_update(update_id))
    await storage.close()

    assert handled == []
    assert [(type(m), m.chat_id, m.text) for m in bot.sent] == [(SendMessage, 501, POLISH)] * 3
    assert len(_outage_logs(caplog)) == 1
    assert "Cause exception" not in caplog.text  # aiogram did not log each update either


async def test_language_of_the_resident_a_button_press_and_the_end_of_the_outage(
    database: Database, locales, caplog
) -> None:
    async with database.write() as session:
        session.add(Resident(id=502, locale="lt", display_name="Jonas", consent_at=utcnow()))
    outage = RedisOutageMiddleware(database, locales)
    bot = RecordingBot()
    caplog.set_level(logging.INFO)

    async def redis_gone(event, data):
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    async def redis_back(event, data):
        data["state"] = object()  # the FSM middleware took the lock and read the state
        return "handled"

    user = _user(502, "pl")  # Telegram says Polish; the resident chose Lithuanian
    press = CallbackQuery(id="q1", from_user=user, chat_instance="c", data="x", message=None)
    context = {"bot": bot, "event_from_user": user, "event_chat": Chat(id=502, type="private")}
    await outage(redis_gone, Update(update_id=1, callback_query=press), dict(context))
    assert [(type(m), m.text, m.show_alert) for m in bot.sent] == [(AnswerCallbackQuery, LITHUANIAN, True)]

    assert await outage(redis_back, _message_update(2, user_id=502), dict(context)) == "handled"
    await outage(redis_gone, _message_update(3, user_id=502), dict(context))
    assert [m.text for m in bot.sent] == [LITHUANIAN, LITHUANIAN]

    async def answered_then_redis_gone(event, data):  # the lock's release fails after the answer
        data["petent_handled"] = True
        raise RedisConnectionError("Connection closed by server.")

    await outage(answered_then_redis_gone, _message_update(4, user_id=502), dict(context))
    assert len(bot.sent) == 2  # no apology for what was answered
    assert _outage_logs(caplog) == [
        "redis is unreachable: updates are answered with a request to try again",
        "redis is reachable again",
        "redis is unreachable: updates are answered with a request to try again",
    ]
