"""A resident who floods the bot is asked once to slow down; the flood is not processed."""

from datetime import datetime

from aiogram.types import Chat, Message, User

from bot.middlewares.throttling import ThrottlingMiddleware


def _message(user_id: int = 501) -> Message:
    return Message(message_id=1, date=datetime.now(), chat=Chat(id=user_id, type="private"), from_user=User(id=user_id, is_bot=False, first_name="A"), text="x")


async def test_flood_is_stopped_with_one_polite_message(monkeypatch) -> None:
    warnings: list[str] = []

    async def answer(self, text, **kwargs):  # what the resident would receive
        warnings.append(text)

    monkeypatch.setattr(Message, "answer", answer)
    monkeypatch.setattr("bot.middlewares.throttling._", lambda text: text)
    handled: list[int] = []

    async def handler(event, data):
        handled.append(event.from_user.id)

    middleware = ThrottlingMiddleware(limit=5, window=10)
    for _ in range(8):
        await middleware(handler, _message(), {})
    await middleware(handler, _message(user_id=502), {})  # someone else is not affected
    assert handled == [501] * 5 + [502]
    assert len(warnings) == 1 and "very quickly" in warnings[0]


async def test_only_people_active_within_the_window_are_remembered(monkeypatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("bot.middlewares.throttling.time.monotonic", lambda: now[0])
    monkeypatch.setattr(Message, "answer", lambda self, text, **kwargs: _nothing())
    monkeypatch.setattr("bot.middlewares.throttling._", lambda text: text)
    handled: list[int] = []

    async def handler(event, data):
        handled.append(event.from_user.id)

    middleware = ThrottlingMiddleware(limit=3, window=10, max_people=500)
    for user_id in range(1, 2001):  # 2000 residents, 100 a second
        now[0] += 0.01
        await middleware(handler, _message(user_id), {})
    assert len(middleware._senders) == 500  # never more than max_people
    now[0] += 11
    await middleware(handler, _message(1), {})
    assert len(middleware._senders) == 1  # the quiet ones are forgotten
    for _ in range(4):
        await middleware(handler, _message(1), {})
    assert handled.count(1) == 1 + 3  # a flood is still stopped


async def _nothing() -> None:
    return None
