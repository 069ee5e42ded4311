"""Conversations survive a restart: the SQL storage (both databases) and RedisStorage."""

import secrets
from collections.abc import AsyncIterator, Callable

import pytest
from aiogram.fsm.storage.base import BaseStorage, DefaultKeyBuilder, StorageKey

from bot.store.db import Database
from bot.store.fsm import SQLStorage
from tests.conftest import TEST_REDIS_URL

KEY = StorageKey(bot_id=123456, chat_id=501, user_id=501)
OTHER = StorageKey(bot_id=123456, chat_id=502, user_id=502)


@pytest.fixture(params=["sql", "redis"])
async def open_storage(request: pytest.FixtureRequest, database: Database) -> AsyncIterator[Callable[[], BaseStorage]]:
    """A factory: each call is a new storage object, as after a restart of the bot."""
    opened: list[BaseStorage] = []
    if request.param == "sql":
        def factory() -> BaseStorage:
            opened.append(SQLStorage(database))
            return opened[-1]
    else:
        if not TEST_REDIS_URL or not database.is_sqlite:
            pytest.skip("RedisStorage runs once (with the SQLite parameter), and only when TEST_REDIS_URL is set")
        from aiogram.fsm.storage.redis import RedisStorage

        prefix = f"petent-test-{secrets.token_hex(4)}"

        def factory() -> BaseStorage:
            opened.append(RedisStorage.from_url(TEST_REDIS_URL, key_builder=DefaultKeyBuilder(prefix=prefix, with_destiny=True)))
            return opened[-1]
    yield factory
    for storage in opened:
        if request.param == "redis":
            keys = await storage.redis.keys(f"{prefix}:*")
            if keys:
                await storage.redis.delete(*keys)
        await storage.close()


async def test_state_and_data_survive_a_new_storage(open_storage) -> None:
    before = open_storage()
    await before.set_state(KEY, "Request:description")
    await before.update_data(KEY, {"kind": "complaint", "text": "Zażółć <gęślą> & jaźń 🚧"})
    await before.update_data(KEY, {"eldership": "riese"})

    after = open_storage()
    assert await after.get_state(KEY) == "Request:description"
    assert await after.get_data(KEY) == {"kind": "complaint", "text": "Zażółć <gęślą> & jaźń 🚧", "eldership": "riese"}
    assert await after.get_state(OTHER) is None
    assert await after.get_data(OTHER) == {}


async def test_clearing_forgets_the_conversation(open_storage) -> None:
    storage = open_storage()
    await storage.set_state(KEY, "Onboarding:consent")
    await storage.set_data(KEY, {"a": 1})
    await storage.set_state(KEY, None)
    await storage.set_data(KEY, {})
    assert await open_storage().get_state(KEY) is None
    assert await open_storage().get_data(KEY) == {}


async def test_state_without_data_and_data_without_state(open_storage) -> None:
    storage = open_storage()
    await storage.set_data(KEY, {"draft": [1, 2, 3]})
    assert await storage.get_state(KEY) is None
    await storage.set_state(KEY, "X:y")
    assert await storage.get_data(KEY) == {"draft": [1, 2, 3]}
