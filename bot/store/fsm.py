"""aiogram FSM storage in the SQL store, so conversations survive a restart of the bot.

Reads are served from a write-through cache: this storage is for one bot process per database
(the embedded default). Several replicas keep conversations in Redis (REDIS_URL) instead.

A conversation left waiting (an abandoned draft with a phone or an address, a satisfaction
comment never sent) expires `ttl` after its last change (CONVERSATION_TTL_HOURS): it reads as
empty and its record is deleted; and at most once an hour, as conversations are read, every
expired record is deleted, also those of people who never write again. RedisStorage gets the
same TTL (see bot.app), so Redis drops such keys by itself.

While an update is handled (`per_update`, an update middleware inside aiogram's FSM one, so
within the person's lock), its task's changes are kept in memory and written together, in one
transaction, before the task's next request to Telegram (`before_request`, a request
middleware), before its next other database write (`Database.before_write`), and when the
handler returns: a step of a form sets the data and then the state, and each write was a
transaction of its own. So a conversation's writes keep their order against everything else the
update does (messages, cases, outbox rows), and a person who saw the next question finds the
conversation there after a crash, as before; only changes with nothing between them are merged.
What is read is the same. A change from anywhere else (another task, a later update, the
scheduler) is written at once and replaces an unwritten one of the same conversation, which is
then not written. If a write fails, the cache forgets those conversations (they are read back
from the database) and the error is the update's.
"""

from __future__ import annotations

import asyncio
import copy
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, DefaultKeyBuilder, KeyBuilder, StateType, StorageKey
from aiogram.types import TelegramObject
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.settings import ConfigError
from bot.store.db import Database, insert_for, table_of
from bot.store.models import FsmRecord, utcnow

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.client.session.middlewares.base import NextRequestMiddlewareType
    from aiogram.methods import TelegramMethod
    from aiogram.methods.base import Response, TelegramType

# Conversations kept in memory, least recently used dropped first: a dropped one is read back
# from the database when its person writes again, so the bound changes nothing but a read.
CACHE_SIZE = 10_000
SWEEP_EVERY = timedelta(hours=1)

# state, data, last change (None: no record)
_Record = tuple[str | None, dict[str, Any], datetime | None]
_EMPTY: _Record = (None, {}, None)
_TABLE = table_of(FsmRecord)


class _Pending:
    """The conversations the update being handled changed and has not written yet."""

    __slots__ = ("keys", "open", "storage", "task")

    def __init__(self, storage: SQLStorage, task: asyncio.Task[Any] | None) -> None:
        self.storage = storage
        self.task = task  # the update's own task: a task it starts writes at once
        self.open = True
        self.keys: set[str] = set()


_pending: ContextVar[_Pending | None] = ContextVar("petent_fsm_pending", default=None)


class SQLStorage(BaseStorage):
    def __init__(
        self,
        database: Database,
        key_builder: KeyBuilder | None = None,
        *,
        ttl: timedelta | None = None,
        cache_size: int = CACHE_SIZE,
    ) -> None:
        self.database = database
        self.key_builder = key_builder or DefaultKeyBuilder(with_destiny=True)
        self.ttl = ttl
        self.cache_size = cache_size
        self._cache: OrderedDict[str, _Record] = OrderedDict()
        # Changed by an update, not yet in the database (also when dropped from the cache).
        self._unwritten: dict[str, _Record] = {}
        database.before_write.append(self._write_current)
        self._swept_at: datetime | None = None
        self._upsert_statement: Any = None

    def _remember(self, record_key: str, record: _Record) -> None:
        self._cache[record_key] = record
        self._cache.move_to_end(record_key)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def _expired(self, record: _Record, now: datetime) -> bool:
        return self.ttl is not None and record[2] is not None and record[2] < now - self.ttl

    async def _load(self, key: StorageKey) -> tuple[str | None, dict[str, Any]]:
        record_key = self.key_builder.build(key)
        now = utcnow()
        if self.ttl is not None and (self._swept_at is None or now - self._swept_at >= SWEEP_EVERY):
            await self._sweep(now)
        cached = self._unwritten.get(record_key)
        if cached is None:
            cached = self._cache.get(record_key)
        if cached is None:
            async with self.database.read_one() as session:
                record = await session.get(FsmRecord, record_key)
            cached = (record.state, dict(record.data), record.updated_at) if record else _EMPTY
        self._remember(record_key, cached)
        if self._expired(cached, now):
            await self._write(record_key, None, {})
            return None, {}
        return cached[0], cached[1]

    async def _sweep(self, now: datetime) -> None:
        """Delete every conversation older than the TTL, also those nobody reads again."""
        assert self.ttl is not None
        self._swept_at = now
        async with self.database.write() as session:
            await session.execute(delete(FsmRecord).where(col(FsmRecord.updated_at) < now - self.ttl))

    async def _write(self, record_key: str, state: str | None, data: dict[str, Any]) -> None:
        if state is None and not data and self._cache.get(record_key) is _EMPTY:
            return  # known not to be stored (state.clear() of someone without a conversation): no write
        record = _EMPTY if state is None and not data else (state, data, utcnow())
        if (pending := self._current()) is not None:
            self._unwritten[record_key] = record
            pending.keys.add(record_key)
        else:
            self._unwritten.pop(
                record_key, None
            )  # replaced: an update's older change is not written after this
            try:
                await self._store({record_key: record})
            except BaseException:
                self._cache.pop(record_key, None)
                raise
        self._remember(record_key, record)

    async def _store(self, records: dict[str, _Record]) -> None:
        kept = [
            {"key": key, "state": state, "data": data, "updated_at": at}
            for key, (state, data, at) in records.items()
            if at is not None
        ]
        gone = [key for key, (_, _, at) in records.items() if at is None]
        async with self.database.write() as session:
            if kept:
                await session.execute(self._upsert(session), kept)
            if gone:
                await session.execute(delete(_TABLE).where(_TABLE.c.key.in_(gone)))

    def _upsert(self, session: AsyncSession) -> Any:
        """The upsert of a conversation, built once on the Core table, its
        values bound at each write: building it again for every step cost more than running it."""
        if self._upsert_statement is None:  # one database, so one kind of statement
            insert = insert_for(session, _TABLE)
            self._upsert_statement = insert.on_conflict_do_update(
                index_elements=[_TABLE.c.key],
                set_={name: insert.excluded[name] for name in ("state", "data", "updated_at")},
            )
        return self._upsert_statement

    def _current(self) -> _Pending | None:
        """The update being handled by this task, if its changes wait (see the module's doc)."""
        pending = _pending.get()
        if (
            pending is not None
            and pending.open
            and pending.storage is self
            and pending.task is asyncio.current_task()
        ):
            return pending
        return None

    async def per_update(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        """Update middleware: the handler's changes are written together (see the module's doc)."""
        pending = _Pending(self, asyncio.current_task())
        token = _pending.set(pending)
        try:
            return await handler(event, data)
        finally:
            pending.open = False
            _pending.reset(token)
            await self._write_pending(pending)

    async def before_request(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        """Request middleware: what the update changed is stored before the bot answers."""
        await self._write_current()
        return await make_request(bot, method)

    async def _write_current(self) -> None:
        if (pending := self._current()) is not None and pending.keys:
            await self._write_pending(pending)

    async def _write_pending(self, pending: _Pending) -> None:
        keys, pending.keys = pending.keys, set()
        records = {
            record_key: self._unwritten.pop(record_key)
            for record_key in keys
            if record_key in self._unwritten
        }
        if not records:
            return
        try:
            await self._store(records)
        except BaseException:
            for record_key in records:
                self._cache.pop(record_key, None)
            raise

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        _, data = await self._load(key)
        await self._write(
            self.key_builder.build(key), state.state if isinstance(state, State) else state, data
        )

    async def get_state(self, key: StorageKey) -> str | None:
        return (await self._load(key))[0]

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        state, _ = await self._load(key)
        await self._write(self.key_builder.build(key), state, copy.deepcopy(dict(data)))

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        return copy.deepcopy((await self._load(key))[1])

    async def forget_chat(self, prefix: str) -> None:
        """Every conversation whose key starts with `prefix` (one chat's, see `forget_conversations`)
        goes: from the database, the cache, and what an update has not written yet."""
        for records in (self._cache, self._unwritten):
            for record_key in [k for k in records if k.startswith(prefix)]:
                del records[record_key]
        async with self.database.write() as session:
            await session.execute(
                delete(FsmRecord).where(col(FsmRecord.key).startswith(prefix, autoescape=True))
            )

    async def close(self) -> None:  # the Database is closed by its owner
        self._cache.clear()
        if self._write_current in self.database.before_write:
            self.database.before_write.remove(self._write_current)


async def forget_conversations(storage: BaseStorage, bot_id: int, chat_id: int) -> None:
    """Every conversation in this chat (a resident's private chat: any step in progress, with
    what it gathered), in the SQL store or in Redis (REDIS_URL): /forget leaves none behind."""
    builder = getattr(storage, "key_builder", None)
    if not isinstance(builder, DefaultKeyBuilder) or builder.with_business_connection_id:
        raise TypeError("conversations are found by DefaultKeyBuilder's keys")
    sep = builder.separator
    prefix = sep.join([builder.prefix, *([str(bot_id)] if builder.with_bot_id else []), str(chat_id), ""])
    if isinstance(storage, SQLStorage):
        await storage.forget_chat(prefix)
        return
    redis = getattr(storage, "redis", None)
    if redis is None:
        raise TypeError(f"cannot forget conversations in {type(storage).__name__}")
    keys = [key async for key in redis.scan_iter(match=_glob_escaped(prefix) + "*", count=500)]
    if keys:
        await redis.delete(*keys)


def _glob_escaped(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if not parts.password:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)))


async def check_redis(url: str) -> None:
    """At start: a REDIS_URL nobody answers on is a configuration error, named in one line."""
    from redis.asyncio import Redis
    from redis.exceptions import RedisError

    client = Redis.from_url(url)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ConfigError(f"REDIS_URL: cannot connect to {_without_password(url)} ({reason})") from None
    finally:
        await client.aclose()
