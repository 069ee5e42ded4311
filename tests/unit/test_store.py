"""The case store on SQLite and PostgreSQL: migrations, numbering, idempotency, times."""

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from bot.municipality import load_municipality
from bot.services.case_commands import CaseCommands
from bot.services.cases import AttachmentDraft, CaseDraft
from bot.settings import DEFAULT_MUNICIPALITY_FILE
from bot.store.db import Database
from bot.store.migrate import upgrade
from bot.store.models import Attachment, Case, CaseEvent, EventKind, Resident
from tests.factories import services

MUNICIPALITY = load_municipality(DEFAULT_MUNICIPALITY_FILE)
RECEIVED = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture
async def service(database: Database) -> AsyncIterator[CaseCommands]:
    """Cases are opened by the case commands (with their card queued in the outbox)."""
    async with database.write() as session:
        session.add(Resident(id=501, locale="pl", display_name="Anna"))
    wired = services(database)
    yield wired.commands
    await wired.bot.session.close()


def draft(**changes: Any) -> CaseDraft:
    values: dict[str, Any] = {
        "resident_id": 501,
        "locale": "pl",
        "kind": "request",
        "category_id": "roads",
        "description": "Dziura w drodze <b>&</b>",
    }
    return CaseDraft(**(values | changes))


async def test_migrations_are_idempotent(database: Database) -> None:
    await upgrade(database)  # a second start finds the schema current
    async with database.read() as session:
        assert await session.scalar(select(func.count()).select_from(Case)) == 0


async def test_case_numbers_are_sequential_per_year(service: CaseCommands) -> None:
    first = (await service.open(draft(), RECEIVED)).case
    second = (await service.open(draft(), RECEIVED + timedelta(minutes=1))).case
    next_year = (await service.open(draft(), datetime(2027, 1, 4, 9, 0, tzinfo=UTC))).case
    assert [first.number, second.number, next_year.number] == [
        "VRS-2026-000001",
        "VRS-2026-000002",
        "VRS-2027-000001",
    ]


async def test_concurrent_creation_gives_unique_gap_free_numbers(service: CaseCommands) -> None:
    opened = await asyncio.gather(
        *(service.open(draft(description=f"case {i}"), RECEIVED) for i in range(40))
    )
    numbers = sorted(o.case.number for o in opened)
    assert numbers == [f"VRS-2026-{i:06d}" for i in range(1, 41)]


async def test_numbers_stay_gap_free_when_a_creation_fails(service: CaseCommands, database: Database) -> None:
    await service.open(draft(), RECEIVED)
    with pytest.raises(IntegrityError):
        await service.open(draft(resident_id=999_999), RECEIVED)  # no such resident: rolled back
    third = (await service.open(draft(), RECEIVED)).case
    assert third.number == "VRS-2026-000002"


async def test_the_same_update_opens_one_case(service: CaseCommands, database: Database) -> None:
    results = await asyncio.gather(*(service.open(draft(), RECEIVED, update_id=777) for _ in range(5)))
    assert len({r.case.number for r in results}) == 1
    assert sum(r.created for r in results) == 1
    async with database.read() as session:
        assert await session.scalar(select(func.count()).select_from(Case)) == 1


async def test_case_is_stored_with_deadline_event_and_attachments(
    service: CaseCommands, database: Database
) -> None:
    photo = AttachmentDraft(kind="photo", file_id="f1", file_unique_id="u1", media_group_id="g1")
    opened = await service.open(draft(kind="complaint", attachments=(photo,)), RECEIVED, update_id=1)
    async with database.read() as session:
        case = await session.get(Case, opened.case.id)
        assert case is not None
        events = (
            (await session.execute(select(CaseEvent).where(col(CaseEvent.case_id) == case.id)))
            .scalars()
            .all()
        )
        attachments = (await session.execute(select(Attachment))).scalars().all()
    assert case.deadline == date(2026, 12, 21)
    assert case.description == "Dziura w drodze <b>&</b>"  # stored as typed
    assert case.received_at == RECEIVED and case.received_at.tzinfo is not None
    assert [e.kind for e in events] == [EventKind.CREATED]
    assert [(a.file_id, a.event_id) for a in attachments] == [("f1", events[0].id)]


async def test_sqlite_file_uses_wal(database: Database) -> None:
    if not database.is_sqlite:
        pytest.skip("SQLite only")
    async with database.read() as session:
        assert (await session.execute(select(func.lower("x")))).scalar() == "x"
        mode = (await session.connection()).exec_driver_sql("PRAGMA journal_mode")
        assert (await mode).scalar() == "wal"


async def test_migrations_create_what_the_models_describe(database: Database) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    def differences(connection):
        return compare_metadata(
            MigrationContext.configure(connection, opts={"compare_type": False}), SQLModel.metadata
        )

    async with database.engine.connect() as connection:
        assert await connection.run_sync(differences) == []


async def test_a_cancelled_begin_leaves_no_transaction_open_in_the_pool(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aiosqlite runs a BEGIN in its thread even after its caller was cancelled: the connection
    goes back to the pool rolled back behind it, not holding SQLite's write lock for good."""
    if not database.is_sqlite:
        pytest.skip("SQLite's driver")
    import aiosqlite

    execute = aiosqlite.Connection.execute

    def cancelled_at_begin(self: aiosqlite.Connection, sql: str, *args: object) -> object:
        if sql.startswith("BEGIN"):
            monkeypatch.undo()
            task = asyncio.current_task()
            assert task is not None
            task.cancel()  # at its wait for the BEGIN
        return execute(self, sql, *args)

    other = sqlite3.connect(str(database.url.database), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # the BEGIN waits for SQLite's lock in aiosqlite's thread
    monkeypatch.setattr(aiosqlite.Connection, "execute", cancelled_at_begin)

    async def write() -> None:
        async with database.write() as session:
            await session.execute(select(func.count()).select_from(Resident))

    task = asyncio.create_task(write())
    await asyncio.sleep(0.3)
    other.rollback()
    other.close()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with asyncio.timeout(5), database.write() as session:
        session.add(Resident(id=777, locale="lt"))
    async with database.read() as session:
        assert await session.get(Resident, 777) is not None


async def test_a_single_read_sees_each_commit_and_leaves_no_transaction_behind(database: Database) -> None:
    """read_one runs its statement without BEGIN on SQLite: what it reads is always the latest
    commit, and its connection, back in the pool, takes the next write at once."""
    await upgrade(database)
    for locale in ("pl", "lt", "en"):
        async with asyncio.timeout(5):  # a transaction left open would hold the write for the busy timeout
            async with database.write() as session:
                resident = await session.get(Resident, 7) or Resident(id=7, locale=locale)
                resident.locale = locale
                session.add(resident)
        async with database.read_one() as session:
            assert (await session.get_one(Resident, 7)).locale == locale
