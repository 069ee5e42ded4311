"""Schema migrations with Alembic, run programmatically (`petent migrate`, and on start)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.store.db import Database

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


async def upgrade(database: Database, revision: str = "head") -> None:
    """Bring the schema to `revision`; safe to run from several processes at once."""
    await _migrate(database, lambda config: command.upgrade(config, revision))


async def revisions(database: Database) -> tuple[str | None, str]:
    """The database's schema revision (None: no schema) and the code's head (`petent check`)."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the migrations have a head"
    async with database.engine.connect() as connection:
        current = await connection.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())
    return current, head


async def downgrade(database: Database, revision: str) -> None:
    """Take the schema back to `revision` (the migrations that claim a downgrade; data kept where they can)."""
    await _migrate(database, lambda config: command.downgrade(config, revision))


async def _migrate(database: Database, step: Callable[[AlembicConfig], None]) -> None:
    def _step(connection: Connection) -> None:
        if connection.dialect.name == "postgresql":
            # Replicas starting together take turns; the lock ends with the transaction.
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7424501)")
        step(alembic_config(connection))
        if connection.dialect.name == "sqlite" and (broken := connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()):
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
