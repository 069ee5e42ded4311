"""aiogram FSM storage in the SQL store, so conversations survive a restart of the bot.

Reads are served from a write-through cache: this storage is for one bot process per database
(the embedded default). Several replicas keep conversations in Redis (REDIS_URL) instead.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, DefaultKeyBuilder, KeyBuilder, StateType, StorageKey
from sqlalchemy import delete

from bot.store.db import Database, insert_for
from bot.store.models import FsmRecord, utcnow


class SQLStorage(BaseStorage):
    def __init__(self, database: Database, key_builder: KeyBuilder | None = None) -> None:
        self.database = database
        self.key_builder = key_builder or DefaultKeyBuilder(with_destiny=True)
        self._cache: dict[str, tuple[str | None, dict[str, Any]]] = {}

    async def _load(self, key: StorageKey) -> tuple[str | None, dict[str, Any]]:
        record_key = self.key_builder.build(key)
        cached = self._cache.get(record_key)
        if cached is None:
            async with self.database.read() as session:
                record = await session.get(FsmRecord, record_key)
            cached = (record.state, dict(record.data)) if record else (None, {})
            self._cache[record_key] = cached
        return cached

    async def _save(self, key: StorageKey, state: str | None, data: dict[str, Any]) -> None:
        record_key = self.key_builder.build(key)
        async with self.database.write() as session:
            if state is None and not data:
                await session.execute(delete(FsmRecord).where(FsmRecord.key == record_key))
            else:
                values = {"state": state, "data": data, "updated_at": utcnow()}
                statement = insert_for(session, FsmRecord).values(key=record_key, **values)
                await session.execute(statement.on_conflict_do_update(index_elements=[FsmRecord.key], set_=values))
        if state is None and not data:
            self._cache.pop(record_key, None)
        else:
            self._cache[record_key] = (state, data)

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        _, data = await self._load(key)
        await self._save(key, state.state if isinstance(state, State) else state, data)

    async def get_state(self, key: StorageKey) -> str | None:
        return (await self._load(key))[0]

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        state, _ = await self._load(key)
        await self._save(key, state, copy.deepcopy(dict(data)))

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        return copy.deepcopy((await self._load(key))[1])

    async def close(self) -> None:  # the Database is closed by its owner
        self._cache.clear()
