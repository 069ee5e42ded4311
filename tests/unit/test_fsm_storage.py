"""Conversations survive a restart: the SQL storage (both databases) and RedisStorage; a
conversation left waiting expires; the SQL storage's cache is bounded."""

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiogram.fsm.storage.base import BaseStorage, DefaultKeyBuilder, StorageKey
from sqlalchemy import event, select
from sqlmodel import col

from bot import clock
from bot.store.db import Database
from bot.store.fsm import SQLStorage
from bot.store.models import FsmRecord
from tests.conftest import ADMIN_CHAT_ID, COMMS_CHAT_ID, SECRET_KEY, TEST_REDIS_URL, TOKEN

KEY = StorageKey(bot_id=123456, chat_id=501, user_id=501)
OTHER = StorageKey(bot_id=123456, chat_id=502, user_id=502)


@pytest.fixture(params=["sql", "redis"])
async def open_storage(
    request: pytest.FixtureRequest, database: Database
) -> AsyncIterator[Callable[[], BaseStorage]]:
    """A factory: each call is a new storage object, as after a restart of the bot."""
    opened: list[BaseStorage] = []
    if request.param == "sql":

        def factory() -> BaseStorage:
            opened.append(SQLStorage(database))
            return opened[-1]
    else:
        if not TEST_REDIS_URL or not database.is_sqlite:
            pytest.skip(
                "RedisStorage runs once (with the SQLite parameter), and only when TEST_REDIS_URL is set"
            )
        from aiogram.fsm.storage.redis import RedisStorage

        prefix = f"petent-test-{secrets.token_hex(4)}"

        def factory() -> BaseStorage:
            opened.append(
                RedisStorage.from_url(
                    TEST_REDIS_URL, key_builder=DefaultKeyBuilder(prefix=prefix, with_destiny=True)
                )
            )
            return opened[-1]

    yield factory
    for storage in opened:
        if request.param == "redis":
            assert isinstance(storage, RedisStorage)
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
    assert await after.get_data(KEY) == {
        "kind": "complaint",
        "text": "Zażółć <gęślą> & jaźń 🚧",
        "eldership": "riese",
    }
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


# --- expiry (CONVERSATION_TTL_HOURS) and the bounded cache ----------------------------------

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture
def move_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[datetime], None]:
    """The project's frozen clock (PETENT_FROZEN_TIME), set to a moment by hand."""

    def move_to(moment: datetime) -> None:
        monkeypatch.setattr(clock, "_origin", (moment, time.monotonic()))

    move_to(T0)
    return move_to


async def _rows(database: Database) -> list[str]:
    async with database.read() as session:
        return list((await session.execute(select(col(FsmRecord.key)))).scalars())


async def test_a_conversation_left_waiting_expires(database: Database, move_clock) -> None:
    storage = SQLStorage(database, ttl=timedelta(hours=24))
    await storage.set_state(KEY, "Intake:contact")
    await storage.update_data(KEY, {"address": "ul. Leśna 5", "phone": "+37060000000"})

    move_clock(T0 + timedelta(hours=23, minutes=59))
    assert await SQLStorage(database, ttl=timedelta(hours=24)).get_data(KEY) == {
        "address": "ul. Leśna 5",
        "phone": "+37060000000",
    }

    move_clock(T0 + timedelta(hours=24, minutes=1))
    assert await storage.get_state(KEY) is None  # the cached copy expires too
    assert await storage.get_data(KEY) == {}
    assert await _rows(database) == []  # deleted, not only hidden
    assert await SQLStorage(database, ttl=timedelta(hours=24)).get_state(KEY) is None


async def test_each_change_restarts_the_time(database: Database, move_clock) -> None:
    storage = SQLStorage(database, ttl=timedelta(hours=24))
    await storage.set_state(KEY, "Feedback:comment")
    move_clock(T0 + timedelta(hours=20))
    await storage.update_data(KEY, {"score": 4})
    move_clock(T0 + timedelta(hours=43))
    assert await storage.get_state(KEY) == "Feedback:comment"
    move_clock(T0 + timedelta(hours=44, minutes=1))
    assert await storage.get_state(KEY) is None


async def test_expired_conversations_nobody_reads_are_swept(database: Database, move_clock) -> None:
    before = SQLStorage(database, ttl=timedelta(hours=24))
    await before.update_data(KEY, {"address": "ul. Leśna 5"})
    move_clock(T0 + timedelta(hours=12))
    await before.update_data(OTHER, {"address": "Gedimino g. 1"})

    move_clock(T0 + timedelta(hours=25))
    after = SQLStorage(database, ttl=timedelta(hours=24))  # as after a restart
    await after.get_state(StorageKey(bot_id=123456, chat_id=503, user_id=503))  # someone else writes
    assert await _rows(database) == [after.key_builder.build(OTHER)]

    # While running, the sweep comes again after an hour.
    move_clock(T0 + timedelta(hours=37))
    await after.get_state(StorageKey(bot_id=123456, chat_id=503, user_id=503))
    assert await _rows(database) == []


async def test_the_cache_is_bounded_and_dropping_from_it_loses_nothing(database: Database) -> None:
    storage = SQLStorage(database, cache_size=3)
    keys = [StorageKey(bot_id=123456, chat_id=600 + i, user_id=600 + i) for i in range(10)]
    for i, key in enumerate(keys):
        await storage.set_state(key, f"Step:{i}")
        await storage.get_state(
            StorageKey(bot_id=123456, chat_id=700 + i, user_id=700 + i)
        )  # someone without a conversation
    assert len(storage._cache) == 3
    assert [await storage.get_state(key) for key in keys] == [f"Step:{i}" for i in range(10)]
    assert len(storage._cache) == 3


# --- one write per update -------------------------------------------------------------------


async def test_an_update_s_changes_are_written_once_when_it_is_handled(database: Database) -> None:
    storage = SQLStorage(database)
    commits: list[int] = []
    event.listen(database.engine.sync_engine, "commit", lambda _connection: commits.append(1))
    seen: dict[str, object] = {}

    # A step of a form: data, then the next state.
    async def handler(_event: object, _data: dict[str, Any]) -> str:
        await storage.update_data(KEY, {"kind": "complaint"})
        await storage.set_state(KEY, "Intake:description")
        seen.update(
            state=await storage.get_state(KEY), data=await storage.get_data(KEY), stored=await _rows(database)
        )
        return "answered"

    assert await storage.per_update(handler, object(), {}) == "answered"  # type: ignore[arg-type]  # a stand-in event, unread
    assert seen == {
        "state": "Intake:description",
        "data": {"kind": "complaint"},
        "stored": [],
    }  # read back before it is written
    assert len(commits) == 1
    after = SQLStorage(database)  # as after a restart
    assert await after.get_state(KEY) == "Intake:description"
    assert await after.get_data(KEY) == {"kind": "complaint"}

    async def clear(_event: object, _data: dict[str, Any]) -> None:
        await storage.set_state(KEY, None)
        await storage.set_data(KEY, {})

    await storage.per_update(clear, object(), {})  # type: ignore[arg-type]  # a stand-in event, unread
    assert await _rows(database) == [] and len(commits) == 2
    assert await SQLStorage(database).get_state(KEY) is None


async def test_the_changes_are_stored_before_the_bot_answers(database: Database) -> None:
    """Someone who saw the next question finds the conversation there after a crash (kill -9)."""
    storage = SQLStorage(database)
    stored_when_sent: list[list[str]] = []

    async def send(_bot: object, _method: object) -> str:  # the request to Telegram
        stored_when_sent.append(await _rows(database))
        return "sent"

    async def handler(_event: object, _data: dict[str, Any]) -> None:
        await storage.update_data(KEY, {"kind": "request"})
        await storage.set_state(KEY, "Intake:eldership")
        assert await storage.before_request(send, None, None) == "sent"  # type: ignore[arg-type]
        assert await storage.before_request(send, None, None) == "sent"  # type: ignore[arg-type]  # nothing new: no write
        await storage.set_state(KEY, "Intake:category")

    await storage.per_update(handler, object(), {})  # type: ignore[arg-type]  # a stand-in event, unread
    assert stored_when_sent == [[storage.key_builder.build(KEY)]] * 2
    assert await SQLStorage(database).get_state(KEY) == "Intake:category"


async def test_a_failed_handler_keeps_its_changes_and_a_failed_write_forgets_them(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = SQLStorage(database)
    await storage.set_state(KEY, "Intake:kind")

    async def failing(_event: object, _data: dict[str, Any]) -> None:
        await storage.set_state(KEY, "Intake:category")
        raise RuntimeError("the handler broke")

    with pytest.raises(RuntimeError, match="handler broke"):
        await storage.per_update(failing, object(), {})  # type: ignore[arg-type]  # a stand-in event, unread
    assert (
        await SQLStorage(database).get_state(KEY) == "Intake:category"
    )  # as when each change was written at once

    async def unwritable(_records: object) -> None:
        raise OSError("disk full")

    async def step(_event: object, _data: dict[str, Any]) -> None:
        await storage.set_state(KEY, "Intake:description")

    monkeypatch.setattr(storage, "_store", unwritable)
    with pytest.raises(OSError, match="disk full"):
        await storage.per_update(step, object(), {})  # type: ignore[arg-type]  # a stand-in event, unread
    monkeypatch.undo()
    assert await storage.get_state(KEY) == "Intake:category"  # what the database holds, not the lost change


async def test_a_change_after_the_update_is_written_at_once(database: Database) -> None:
    storage = SQLStorage(database)
    later: list[asyncio.Task[None]] = []

    async def handler(_event: object, _data: dict[str, Any]) -> None:
        async def afterwards() -> None:
            await asyncio.sleep(0.01)
            await storage.set_state(KEY, "Feedback:comment")

        later.append(asyncio.create_task(afterwards()))  # shares the update's context

    await storage.per_update(handler, object(), {})  # type: ignore[arg-type]  # a stand-in event, unread
    await later[0]
    assert await SQLStorage(database).get_state(KEY) == "Feedback:comment"


async def test_an_update_s_changes_keep_their_order_against_its_other_writes(database: Database) -> None:
    """Written before the update's next other write (a case, an outbox row), as when each was written at once."""
    storage = SQLStorage(database)
    stored_before: list[list[str]] = []

    async def handler(_event: object, _data: dict[str, Any]) -> None:
        await storage.update_data(KEY, {"kind": "complaint"})
        await storage.set_state(KEY, "Intake:submit")
        async with database.write():  # the case
            stored_before.append(await _rows(database))
        await storage.set_state(KEY, None)
        await storage.set_data(KEY, {})

    await storage.per_update(handler, object(), {})  # type: ignore[arg-type]  # a stand-in event, unread
    assert stored_before == [[storage.key_builder.build(KEY)]]
    assert await _rows(database) == []


async def test_a_change_from_another_task_is_written_at_once_and_not_overwritten(database: Database) -> None:
    """An album's late acknowledgement, the scheduler: their change replaces the update's unwritten one."""
    storage = SQLStorage(database)
    seen: list[object] = []

    async def handler(_event: object, _data: dict[str, Any]) -> None:
        await storage.set_state(KEY, "Intake:files")  # waits for the update's end

        async def elsewhere() -> None:
            await storage.set_state(KEY, "Intake:location")

        await asyncio.create_task(elsewhere())  # shares the update's context, not its task
        seen.extend([await _rows(database), await storage.get_state(KEY)])

    await storage.per_update(handler, object(), {})  # type: ignore[arg-type]  # a stand-in event, unread
    assert seen == [[storage.key_builder.build(KEY)], "Intake:location"]
    assert (
        await SQLStorage(database).get_state(KEY) == "Intake:location"
    )  # the update's older change was not written over it


async def test_an_unwritten_change_survives_the_cache_bound(database: Database) -> None:
    storage = SQLStorage(database, cache_size=1)

    async def handler(_event: object, _data: dict[str, Any]) -> None:
        await storage.set_state(KEY, "Intake:kind")
        await storage.get_state(OTHER)  # drops KEY from the cache
        assert await storage.get_state(KEY) == "Intake:kind"

    await storage.per_update(handler, object(), {})  # type: ignore[arg-type]  # a stand-in event, unread
    assert await SQLStorage(database).get_state(KEY) == "Intake:kind"


async def test_redis_keys_get_the_same_ttl(database: Database) -> None:
    if not TEST_REDIS_URL or not database.is_sqlite:
        pytest.skip("needs TEST_REDIS_URL; runs once")
    from aiogram.fsm.storage.redis import RedisStorage

    from bot.app import _fsm
    from bot.config import Config
    from bot.municipality import load_municipality
    from bot.settings import DEFAULT_MUNICIPALITY_FILE, Settings

    settings = Settings(
        bot_token=TOKEN,
        admin_chat_id=ADMIN_CHAT_ID,
        comms_chat_id=COMMS_CHAT_ID,
        secret_key=SECRET_KEY,
        redis_url=TEST_REDIS_URL,
        conversation_ttl_hours=2,
    )
    storage, _ = _fsm(
        Config(settings=settings, municipality=load_municipality(DEFAULT_MUNICIPALITY_FILE)), database
    )
    assert isinstance(storage, RedisStorage)
    key = StorageKey(bot_id=123456, chat_id=900_000 + secrets.randbelow(100_000), user_id=1)
    try:
        await storage.set_state(key, "Intake:contact")
        await storage.set_data(key, {"phone": "+37060000000"})
        for part in ("state", "data"):
            assert 7190 < await storage.redis.ttl(storage.key_builder.build(key, part)) <= 7200
    finally:
        await storage.redis.delete(
            storage.key_builder.build(key, "state"), storage.key_builder.build(key, "data")
        )
        await storage.close()
