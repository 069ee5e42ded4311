"""A resident who floods the bot is asked once to slow down; the flood is not processed."""

from datetime import datetime

import pytest
from aiogram.types import Chat, Message, User

from bot.middlewares.throttling import ThrottlingMiddleware


def _message(message_id: int = 1, user_id: int = 501) -> Message:
    return Message(
        message_id=message_id,
        date=datetime.now(),
        chat=Chat(id=user_id, type="private"),
        from_user=User(id=user_id, is_bot=False, first_name="A"),
        text="x",
    )


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The throttle's clock, moved by the test (now[0]); replies to the resident go nowhere."""
    now = [1000.0]
    monkeypatch.setattr("bot.middlewares.throttling.time.monotonic", lambda: now[0])
    monkeypatch.setattr(Message, "answer", lambda self, text, **kwargs: _nothing())
    monkeypatch.setattr("bot.middlewares.throttling._", lambda text: text)
    return now


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


async def test_a_flood_is_refused_whole_while_earlier_messages_leave_the_window(clock: list[float]) -> None:
    """Five quick messages, then a flood of 100, one every 0.3 s (a slow sender, or a slow bot),
    from 2 s later. The five leave the window while the flood goes on; none of its later messages
    is read all the same (before, 32 to 34 were: a hole after 29). Once quiet, the sender is read."""
    now = clock
    handled: list[int] = []

    async def handler(event, data):
        handled.append(event.message_id)

    middleware = ThrottlingMiddleware(limit=30, window=10)
    for number in range(5):
        await middleware(handler, _message(number), {})
        now[0] += 0.05
    now[0] = 1002.0
    for number in range(5, 105):
        await middleware(handler, _message(number), {})
        now[0] += 0.3
    assert handled == list(range(30))  # read up to the limit, nothing after
    now[0] += 11
    await middleware(handler, _message(105), {})
    assert handled[-1] == 105


async def test_only_people_active_within_the_window_are_remembered(clock: list[float]) -> None:
    now = clock
    handled: list[int] = []

    async def handler(event, data):
        handled.append(event.from_user.id)

    middleware = ThrottlingMiddleware(limit=3, window=10, max_people=500)
    for user_id in range(1, 2001):  # 2000 residents, 100 a second
        now[0] += 0.01
        await middleware(handler, _message(user_id=user_id), {})
    assert len(middleware._senders) == 500  # never more than max_people
    now[0] += 11
    await middleware(handler, _message(user_id=1), {})
    assert len(middleware._senders) == 1  # the quiet ones are forgotten
    for _ in range(4):
        await middleware(handler, _message(user_id=1), {})
    assert handled.count(1) == 1 + 3  # a flood is still stopped


async def _nothing() -> None:
    return None
