"""The case store on SQLite and PostgreSQL: migrations, numbering, idempotency, times."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from bot.config import DEFAULT_MUNICIPALITY_FILE, load_municipality
from bot.services.cases import AttachmentDraft, CaseDraft
from bot.services.workflow import CaseWorkflow
from bot.store.db import Database
from bot.store.migrate import upgrade
from bot.store.models import Attachment, Case, CaseEvent, EventKind, Resident
from tests.factories import services

MUNICIPALITY = load_municipality(DEFAULT_MUNICIPALITY_FILE)
RECEIVED = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture
async def service(database: Database) -> AsyncIterator[CaseWorkflow]:
    """Cases are opened by the workflow (with their card queued in the outbox)."""
    async with database.write() as session:
        session.add(Resident(id=501, locale="pl", display_name="Anna"))
    wired = services(database)
    yield wired.workflow
    await wired.bot.session.close()


def draft(**changes) -> CaseDraft:
    values = {"resident_id": 501, "locale": "pl", "kind": "request", "category_id": "roads", "description": "Dziura w drodze <b>&</b>"}
    return CaseDraft(**(values | changes))


async def test_migrations_are_idempotent(database: Database) -> None:
    await upgrade(database)  # a second start finds the schema current
    async with database.read() as session:
        assert await session.scalar(select(func.count()).select_from(Case)) == 0


async def test_case_numbers_are_sequential_per_year(service: CaseWorkflow) -> None:
    first = (await service.open(draft(), RECEIVED)).case
    second = (await service.open(draft(), RECEIVED + timedelta(minutes=1))).case
    next_year = (await service.open(draft(), datetime(2027, 1, 4, 9, 0, tzinfo=UTC))).case
    assert [first.number, second.number, next_year.number] == ["VRS-2026-000001", "VRS-2026-000002", "VRS-2027-000001"]


async def test_concurrent_creation_gives_unique_gap_free_numbers(service: CaseWorkflow) -> None:
    opened = await asyncio.gather(*(service.open(draft(description=f"case {i}"), RECEIVED) for i in range(40)))
    numbers = sorted(o.case.number for o in opened)
    assert numbers == [f"VRS-2026-{i:06d}" for i in range(1, 41)]


async def test_numbers_stay_gap_free_when_a_creation_fails(service: CaseWorkflow, database: Database) -> None:
    await service.open(draft(), RECEIVED)
    with pytest.raises(IntegrityError):
        await service.open(draft(resident_id=999_999), RECEIVED)  # no such resident: rolled back
    third = (await service.open(draft(), RECEIVED)).case
    assert third.number == "VRS-2026-000002"


async def test_the_same_update_opens_one_case(service: CaseWorkflow, database: Database) -> None:
    results = await asyncio.gather(*(service.open(draft(), RECEIVED, update_id=777) for _ in range(5)))
    assert len({r.case.number for r in results}) == 1
    assert sum(r.created for r in results) == 1
    async with database.read() as session:
        assert await session.scalar(select(func.count()).select_from(Case)) == 1


async def test_case_is_stored_with_deadline_event_and_attachments(service: CaseWorkflow, database: Database) -> None:
    photo = AttachmentDraft(kind="photo", file_id="f1", file_unique_id="u1", media_group_id="g1")
    opened = await service.open(draft(kind="complaint", attachments=(photo,)), RECEIVED, update_id=1)
    async with database.read() as session:
        case = await session.get(Case, opened.case.id)
        events = (await session.execute(select(CaseEvent).where(CaseEvent.case_id == case.id))).scalars().all()
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

    def differences(connection):  # type: ignore[no-untyped-def]
        return compare_metadata(MigrationContext.configure(connection, opts={"compare_type": False}), SQLModel.metadata)

    async with database.engine.connect() as connection:
        assert await connection.run_sync(differences) == []
