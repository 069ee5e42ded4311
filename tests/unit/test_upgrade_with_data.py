"""Upgrades keep every case: a database made by the first release (schema 0001) and filled as
each release left it (cases in every status with their trail and files at 0001, a broadcast at
0003, polls, satisfaction answers and receipts at 0005, an internal audit and a nonconformity at
0019) is upgraded to today's schema, and every
row reads back right through today's services; then down to 0001 and up again, as the
migrations claim they can."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from bot.services.broadcaster import Broadcaster, TextVersion, versions_of
from bot.store.db import Database
from bot.store.migrate import downgrade, upgrade
from bot.store.models import (
    CLOSED_STATUSES,
    Attachment,
    Audit,
    Broadcast,
    CaseStatus,
    Nonconformity,
    PollAnswer,
    SatisfactionAnswer,
    SurveyReceipt,
)
from bot.telegram import create_bot
from tests import factories
from tests.conftest import TOKEN
from tests.support.old_schema import insert_as_of_now

pytestmark = pytest.mark.unmigrated

ANNA, JONAS = 111, 222
RECEIVED = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _case(number: int, status: CaseStatus, resident: int) -> dict[str, Any]:
    received = RECEIVED + timedelta(days=number)
    return {
        "id": number,
        "number": f"VRS-2026-{number:06d}",
        "year": 2026,
        "seq": number,
        "resident_id": resident,
        "locale": "pl",
        "kind": "report",
        "category_id": "roads",
        "eldership_id": None,
        "description": f"Dziura w jezdni nr {number}",
        "status": status,
        "received_at": received,
        "deadline": date(2026, 2, 2) + timedelta(days=number),
        "extension_days": 0,
        "closed_at": received + timedelta(days=3) if status in CLOSED_STATUSES else None,
        "source_update_id": 1000 + number,
    }


async def _fill_release_0001(database: Database) -> None:
    await insert_as_of_now(
        database,
        "residents",
        [
            {
                "id": resident,
                "locale": locale,
                "display_name": name,
                "consent_at": RECEIVED,
                "created_at": RECEIVED,
                "updated_at": RECEIVED,
            }
            for resident, locale, name in ((ANNA, "pl", "Anna"), (JONAS, "lt", "Jonas"))
        ],
    )
    await insert_as_of_now(
        database,
        "cases",
        [_case(n, status, ANNA if n % 2 else JONAS) for n, status in enumerate(CaseStatus, start=1)],
    )
    await insert_as_of_now(database, "case_counters", [{"year": 2026, "last": len(CaseStatus)}])
    await insert_as_of_now(
        database,
        "case_events",
        [
            {
                "id": n,
                "case_id": n,
                "at": RECEIVED + timedelta(days=n),
                "kind": "created",
                "data": {"kind": "report"},
            }
            for n in range(1, len(CaseStatus) + 1)
        ]
        + [
            {
                "id": 100,
                "case_id": 1,
                "at": RECEIVED + timedelta(days=2),
                "kind": "message_out",
                "text": "Naprawimy w piątek.",
                "resident_message_id": 7,
                "group_message_id": 9,
            }
        ],
    )
    await insert_as_of_now(
        database,
        "attachments",
        [
            {
                "id": 1,
                "case_id": 1,
                "event_id": 1,
                "kind": "photo",
                "file_id": "AgAD-photo",
                "file_unique_id": "u-photo",
                "caption": "Dziura",
                "created_at": RECEIVED,
            }
        ],
    )


async def _fill_release_0003(database: Database) -> None:
    await insert_as_of_now(
        database,
        "broadcasts",
        [
            {
                "id": 1,
                "created_at": RECEIVED,
                "content": {"pl": {"text": "Remont drogi"}, "lt": {"text": "Kelio remontas"}},
                "audience": {},
                "status": "done",
                "paid": False,
            }
        ],
    )
    await insert_as_of_now(
        database,
        "deliveries",
        [
            {
                "id": n,
                "broadcast_id": 1,
                "chat_id": chat,
                "locale": locale,
                "status": "sent",
                "attempts": 1,
                "sent_message_id": 50 + n,
            }
            for n, (chat, locale) in enumerate(((ANNA, "pl"), (JONAS, "lt")), start=1)
        ],
    )


async def _fill_release_0005(database: Database) -> None:
    await insert_as_of_now(
        database,
        "satisfaction_answers",
        [
            {
                "id": "a" * 32,
                "answered_on": date(2026, 1, 20),
                "locale": "pl",
                "kind": "report",
                "category_id": "roads",
                "score": 4,
                "resolved": "yes",
                "comment": "Dziękuję",
            }
        ],
    )
    await insert_as_of_now(
        database,
        "polls",
        [
            {
                "id": 1,
                "created_at": RECEIVED,
                "questions": [],
                "audience": {},
                "broadcast_id": 1,
                "status": "closed",
            }
        ],
    )
    await insert_as_of_now(
        database,
        "poll_answers",
        [{"id": "b" * 32, "poll_id": 1, "answered_on": date(2026, 1, 21), "locale": "lt", "choices": [1]}],
    )
    await insert_as_of_now(database, "survey_receipts", [{"digest": "c" * 64}])


async def _fill_release_0019(database: Database) -> None:
    await insert_as_of_now(
        database,
        "audits",
        [
            {
                "id": 1,
                "created_at": RECEIVED,
                "team_id": "desk",
                "period": "2026-01",
                "start": date(2026, 1, 1),
                "end": date(2026, 1, 31),
                "auditor_id": 9,
                "auditor_name": "Vida",
                "seed": 42,
                "sample_size": 5,
                "population": 2,
                "case_ids": [1, 2],
            }
        ],
    )
    await insert_as_of_now(
        database,
        "nonconformities",
        [
            {
                "id": 1,
                "opened_at": RECEIVED,
                "source": "audit",
                "description": "Odpowiedź po terminie",
                "team_id": "desk",
                "case_ids": [1],
                "status": "open",
            }
        ],
    )


async def _cases_read_back(database: Database) -> None:
    wired = factories.services(database)
    cases = wired.queries
    page, total = await cases.page_for_resident(ANNA, 0, 50)
    assert total == 4 and {case.number for case in page} == {
        "VRS-2026-000001",
        "VRS-2026-000003",
        "VRS-2026-000005",
        "VRS-2026-000007",
    }
    first = await cases.own_case(ANNA, number="VRS-2026-000001")
    assert (
        first is not None and first.status == CaseStatus.NEW and first.description == "Dziura w jezdni nr 1"
    )
    assert first.received_at == RECEIVED + timedelta(days=1) and first.deadline == date(2026, 2, 3)
    assert [(e.kind, e.text) for e in await cases.history(first.id or 0)] == [
        ("created", None),
        ("message_out", "Naprawimy w piątek."),
    ]
    assert await cases.own_case(ANNA, number="VRS-2026-000002") is None  # Jonas's, not hers
    async with database.read() as session:
        [photo] = (await session.execute(select(Attachment))).scalars()
        assert (photo.file_id, photo.caption, photo.storage_key) == ("AgAD-photo", "Dziura", None)
    await wired.bot.session.close()


async def _later_releases_read_back(database: Database) -> None:
    async with database.read() as session:
        broadcast = await session.get_one(Broadcast, 1)
        assert {
            locale: version.text if isinstance(version, TextVersion) else version
            for locale, version in versions_of(broadcast).items()
        } == {
            "pl": "Remont drogi",
            "lt": "Kelio remontas",
        }
        assert broadcast.case_id is None  # an announcement of its time, not an area notice of a case (0021)
        [answer] = (await session.execute(select(SatisfactionAnswer))).scalars()
        assert (answer.score, answer.resolved, answer.comment) == (4, "yes", "Dziękuję")
        assert len((await session.execute(select(PollAnswer))).scalars().all()) == 1
        assert len((await session.execute(select(SurveyReceipt))).scalars().all()) == 1
        audit = await session.get_one(Audit, 1)
        assert (audit.case_ids, audit.seed, audit.checklist) == ([1, 2], 42, {})  # no answers yet
        nc = await session.get_one(Nonconformity, 1)
        assert (nc.description, nc.case_ids, nc.low_ratings) == ("Odpowiedź po terminie", [1], 0)
    bot = create_bot(TOKEN, "http://127.0.0.1:9")
    try:
        counts = await Broadcaster(database, bot).counts(1)
    finally:
        await bot.session.close()
    assert (counts.total, counts["sent"]) == (2, 2)


async def test_a_first_release_database_upgrades_with_every_row_and_back(database_url: str) -> None:
    database = Database(database_url)
    try:
        await upgrade(database, "0001")
        await _fill_release_0001(database)
        await upgrade(database, "0003")
        await _fill_release_0003(database)
        await upgrade(database, "0005")
        await _fill_release_0005(database)
        await upgrade(database, "0019")
        await _fill_release_0019(database)
        await upgrade(database)
        await _cases_read_back(database)
        await _later_releases_read_back(database)

        await downgrade(database, "0001")  # the tables later releases added go; the cases stay
        async with database.read() as session:
            assert (await session.execute(sa.text("SELECT count(*) FROM cases"))).scalar_one() == len(
                CaseStatus
            )
        await upgrade(database)
        await _cases_read_back(database)
    finally:
        await database.dispose()
