"""aiogram FSM storage in the SQL store, so conversations survive a restart of the bot."""

from __future__ import annotations

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

    async def _load(self, key: StorageKey) -> FsmRecord | None:
        async with self.database.read() as session:
            return await session.get(FsmRecord, self.key_builder.build(key))

    async def _save(self, key: StorageKey, **values: Any) -> None:
        record_key = self.key_builder.build(key)
        async with self.database.write() as session:
            current = await session.get(FsmRecord, record_key)
            state = values.get("state", current.state if current else None)
            data = values.get("data", current.data if current else {})
            if state is None and not data:
                await session.execute(delete(FsmRecord).where(FsmRecord.key == record_key))
                return
            statement = insert_for(session, FsmRecord).values(key=record_key, state=state, data=data, updated_at=utcnow())
            await session.execute(
                statement.on_conflict_do_update(
                    index_elements=[FsmRecord.key],
                    set_={"state": state, "data": data, "updated_at": utcnow()},
                )
            )

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        await self._save(key, state=state.state if isinstance(state, State) else state)

    async def get_state(self, key: StorageKey) -> str | None:
        record = await self._load(key)
        return record.state if record else None

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        await self._save(key, data=dict(data))

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        record = await self._load(key)
        return dict(record.data) if record else {}

    async def close(self) -> None:  # the Database is closed by its owner
        return None
