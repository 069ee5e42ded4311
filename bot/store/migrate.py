"""Schema migrations with Alembic, run programmatically (`petent migrate`, and on start)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import ColumnElement, Table, func, select, true
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.store.db import Database

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
REWRITE_BATCH = 10_000  # rows per UPDATE of a migration's data rewrite (update_in_batches)


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def update_in_batches(
    connection: Connection,
    table: Table,
    values: dict[str, Any],
    where: ColumnElement[bool] | None = None,
    batch: int = REWRITE_BATCH,
) -> int:
    """A migration's rewrite of a large table (in `upgrade()`: `update_in_batches(op.get_bind(), cases, {...}, cases.c.x.is_(None))`):
    one UPDATE per `batch` ids, so that no statement scans or holds the whole table at once and
    memory stays flat; `table` needs an integer `id`. Returns the rows changed."""
    low, high = connection.execute(select(func.min(table.c.id), func.max(table.c.id))).one()
    changed = 0
    if low is None:
        return 0
    for start in range(low, high + 1, batch):
        in_range = (table.c.id >= start) & (table.c.id < start + batch)
        changed += connection.execute(
            table.update().where(in_range, where if where is not None else true()).values(**values)
        ).rowcount
    return changed


async def upgrade(database: Database, revision: str = "head") -> None:
    """Bring the schema to `revision`; safe to run from several processes at once."""
    await _migrate(database, lambda config: command.upgrade(config, revision))


async def revisions(database: Database) -> tuple[str | None, str, bool]:
    """The database's schema revision (None: no schema), the code's head, and whether the code
    knows the database's revision (False: a newer version of Petent migrated it) (`petent check`)."""
    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head()
    assert head is not None, "the migrations have a head"
    async with database.engine.connect() as connection:
        current = await connection.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )
    known = current is None or current in {revision.revision for revision in script.walk_revisions()}
    return current, head, known


async def downgrade(database: Database, revision: str) -> None:
    """Take the schema back to `revision` (the migrations that claim a downgrade; data kept where they can)."""
    await _migrate(database, lambda config: command.downgrade(config, revision))


async def _migrate(database: Database, step: Callable[[AlembicConfig], None]) -> None:
    def _step(connection: Connection) -> None:
        if connection.dialect.name == "postgresql":
            # Replicas starting together take turns; the lock ends with the transaction.
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7424501)")
        step(alembic_config(connection))
        if connection.dialect.name == "sqlite" and (
            broken := connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        ):
            raise RuntimeError(f"the migration left rows whose references point nowhere: {broken[:5]}")

    async with database.engine.connect() as connection:
        sqlite = database.is_sqlite
        if sqlite:
            # SQLite alters a table by copying it and dropping the old one; with foreign keys
            # enforced, the drop fails once rows refer to it. Alembic's advice: off around the
            # migration (it can be switched only outside a transaction), checked before commit.
            await _foreign_keys(connection, on=False)
        try:
            async with connection.begin():
                await connection.run_sync(_step)
        finally:
            if sqlite:
                await _foreign_keys(connection, on=True)


async def _foreign_keys(connection: AsyncConnection, *, on: bool) -> None:
    raw = await connection.get_raw_connection()
    await raw.driver_connection.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")  # type: ignore[union-attr]
