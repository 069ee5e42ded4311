"""aiogram FSM storage in the SQL store, so conversations survive a restart of the bot.

Reads are served from a write-through cache: this storage is for one bot process per database
(the embedded default). Several replicas keep conversations in Redis (REDIS_URL) instead.

A conversation left waiting (an abandoned draft with a phone or an address, a satisfaction
comment never sent) expires `ttl` after its last change (CONVERSATION_TTL_HOURS): it reads as
empty and its record is deleted; and at most once an hour, as conversations are read, every
expired record is deleted, also those of people who never write again. RedisStorage gets the
same TTL (see bot.app), so Redis drops such keys by itself.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, DefaultKeyBuilder, KeyBuilder, StateType, StorageKey
from sqlalchemy import delete
from sqlmodel import col

from bot.config import ConfigError
from bot.store.db import Database, insert_for
from bot.store.models import FsmRecord, utcnow

# Conversations kept in memory, least recently used dropped first: a dropped one is read back
# from the database when its person writes again, so the bound changes nothing but a read.
CACHE_SIZE = 10_000
SWEEP_EVERY = timedelta(hours=1)

# state, data, last change (None: no record)
_Record = tuple[str | None, dict[str, Any], datetime | None]
_EMPTY: _Record = (None, {}, None)


class SQLStorage(BaseStorage):
    def __init__(self, database: Database, key_builder: KeyBuilder | None = None, *, ttl: timedelta | None = None, cache_size: int = CACHE_SIZE) -> None:
        self.database = database
        self.key_builder = key_builder or DefaultKeyBuilder(with_destiny=True)
        self.ttl = ttl
        self.cache_size = cache_size
        self._cache: OrderedDict[str, _Record] = OrderedDict()
        self._swept_at: datetime | None = None

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
        cached = self._cache.get(record_key)
        if cached is None:
            async with self.database.read() as session:
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
        now = utcnow()
        async with self.database.write() as session:
            if state is None and not data:
                await session.execute(delete(FsmRecord).where(col(FsmRecord.key) == record_key))
            else:
                values = {"state": state, "data": data, "updated_at": now}
                statement = insert_for(session, FsmRecord).values(key=record_key, **values)
                await session.execute(statement.on_conflict_do_update(index_elements=[FsmRecord.key], set_=values))
        self._remember(record_key, _EMPTY if state is None and not data else (state, data, now))

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        _, data = await self._load(key)
        await self._write(self.key_builder.build(key), state.state if isinstance(state, State) else state, data)

    async def get_state(self, key: StorageKey) -> str | None:
        return (await self._load(key))[0]

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        state, _ = await self._load(key)
        await self._write(self.key_builder.build(key), state, copy.deepcopy(dict(data)))

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        return copy.deepcopy((await self._load(key))[1])

    async def close(self) -> None:  # the Database is closed by its owner
        self._cache.clear()


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
