"""Rows written as an older release wrote them: into a table as the schema has it at the current
revision (only its columns then), with today's column types, so that values are stored as that
release stored them. For tests of migrations with data in the store."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import inspect
from sqlmodel import SQLModel

from bot.store.db import Database


async def insert_as_of_now(database: Database, name: str, rows: list[dict[str, Any]]) -> None:
    async with database.engine.begin() as connection:
        present = await connection.run_sync(lambda sync: {c["name"] for c in inspect(sync).get_columns(name)})
        current = SQLModel.metadata.tables[name]
        table = sa.Table(
            name,
            sa.MetaData(),
            *(
                sa.Column(c.name, c.type, primary_key=c.primary_key)
                for c in current.columns
                if c.name in present
            ),
        )
        for row in rows:  # one by one: rows may name different columns
            await connection.execute(table.insert().values(**row))
