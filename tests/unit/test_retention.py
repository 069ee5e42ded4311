"""Retention on a frozen clock, on SQLite and PostgreSQL: exactly the personal data of closed cases
past their kind's period goes; what the quality reports count stays, so the figures do not move."""

from datetime import date, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.sandbox.emulator import Emulator
from bot.services.case_commands import Clerk, GroupMessage, NotAllowed, allowed_actions
from bot.services.privacy import Purged
from bot.services.quality import Period
from bot.store.db import Database
from bot.store.models import (
    Attachment,
    Broadcast,
    Case,
    CaseEvent,
    CaseStatus,
    CaseTrace,
    Delivery,
    EventKind,
    OutboxMessage,
    Resident,
    TraceKind,
)
from tests.catalog import tr
from tests.conftest import ADMIN_CHAT_ID
from tests.factories import VILNIUS, services

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=VILNIUS)
ANNA, ERASED, BACK, CLERK = 501, 502, 503, 9


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(hour=10, tzinfo=VILNIUS)


# number: (kind, resident, received, closed): requests and complaints are kept 5 years after
# closing, reports of a problem 2 (the municipality file).
CASES = {
    1: ("request", ANNA, "2021-05-03", "2021-06-01"),  # closed 5½ years ago: goes
    2: ("request", ANNA, "2021-12-01", "2022-01-10"),  # 4 years 10 months: stays
    3: ("report", ANNA, "2024-09-02", "2024-10-01"),  # a report, 2 years 2 months: goes
    4: ("report", ANNA, "2020-03-02", None),  # open for years: stays whatever its age
    5: (
        "complaint",
        ERASED,
        "2020-01-06",
        "2020-02-03",
    ),  # of a profile erased since: goes, and the profile with it
}


async def _seed(database: Database) -> None:
    async with database.write() as session:
        session.add(Resident(id=ANNA, locale="pl", display_name="Anna Nowak", phone="+37060000000"))
        session.add(Resident(id=ERASED, locale=None, display_name="", erased_at=at("2025-01-01")))
        session.add(
            Resident(
                id=BACK,
                locale="lt",
                display_name="Jonas",
                erased_at=at("2025-01-01"),
                consent_at=at("2025-03-01"),
            )
        )  # erased, then came back
        session.add(Broadcast(id=1, content={"lt": {"text": "Skelbimas"}}))
        await session.flush()
        session.add_all(
            Delivery(broadcast_id=1, chat_id=chat, locale="pl", status="sent") for chat in (ANNA, ERASED)
        )
        for number, (kind, resident, received, closed) in CASES.items():
            session.add(
                Case(
                    id=number,
                    number=f"VRS-{received[:4]}-{number:06d}",
                    year=int(received[:4]),
                    seq=number,
                    resident_id=resident,
                    locale="pl",
                    kind=kind,
                    category_id="roads",
                    eldership_id="rudamina",
                    description=f"Mój opis {number}, tel. 600",
                    latitude=54.6,
                    longitude=25.1,
                    address="Szkolna 1",
                    received_at=at(received),
                    deadline=date.fromisoformat(received),
                    status=CaseStatus.ANSWERED if closed else CaseStatus.IN_PROGRESS,
                    closed_at=at(closed) if closed else None,
                    extension_reason="Czekamy na opinię" if number == 1 else None,
                )
            )
            await session.flush()
            session.add_all(
                [
                    CaseEvent(
                        case_id=number,
                        at=at(received),
                        kind=EventKind.CREATED,
                        actor_id=resident,
                        data={"team": "front"},
                    ),
                    CaseEvent(
                        case_id=number,
                        at=at(received),
                        kind=EventKind.MESSAGE_IN,
                        actor_id=resident,
                        text="Mieszkam pod numerem 5",
                    ),
                    CaseEvent(
                        case_id=number,
                        at=at(received),
                        kind=EventKind.MESSAGE_OUT,
                        actor_id=CLERK,
                        actor_name="Ona",
                        text="Dzień dobry, Pani Anno",
                    ),
                    Attachment(
                        case_id=number,
                        kind="photo",
                        file_id=f"file-{number}",
                        file_unique_id=f"u{number}",
                        caption="moje podwórko",
                    ),
                    OutboxMessage(
                        kind="message",
                        key=f"r:{resident}",
                        chat_id=resident,
                        case_id=number,
                        payload={"text": "Dzień dobry"},
                        status="sent",
                    ),
                ]
            )
            if closed:
                session.add(
                    CaseEvent(
                        case_id=number,
                        at=at(closed),
                        kind=EventKind.STATUS,
                        actor_id=CLERK,
                        actor_name="Ona",
                        text="Odpowiedź",
                        data={"to": "answered"},
                    )
                )


async def test_retention_removes_exactly_the_expired_personal_data(database: Database) -> None:
    await _seed(database)
    built = services(database)
    period = Period(date(2020, 1, 1), date(2025, 12, 31))
    with built.i18n.context(), built.i18n.use_locale("en"):
        before = await built.quality.report(period, "en")

    assert await built.rights.purge_expired(NOW) == Purged(cases=3, texts=9, files=3, residents=1)
    assert await built.rights.purge_expired(NOW) == Purged(
        cases=0, texts=0, files=0, residents=0
    )  # nothing twice

    async with database.read() as session:
        cases = {c.id: c for c in (await session.execute(select(Case))).scalars()}
        events = list((await session.execute(select(CaseEvent).order_by(col(CaseEvent.id)))).scalars())
        files = {a.case_id for a in (await session.execute(select(Attachment))).scalars()}
        outbox = {o.case_id for o in (await session.execute(select(OutboxMessage))).scalars()}
        residents = {r.id: r for r in (await session.execute(select(Resident))).scalars()}
        deliveries = set((await session.execute(select(col(Delivery.chat_id)))).scalars())
    purged = {number for number, case in cases.items() if case.purged_at is not None}
    assert purged == {1, 3, 5}
    for number in purged:
        case = cases[number]
        assert (
            case.resident_id,
            case.description,
            case.address,
            case.latitude,
            case.longitude,
            case.extension_reason,
        ) == (None, "", None, None, None, None)
        assert (case.kind, case.category_id, case.eldership_id, case.status) == (
            CASES[number][0],
            "roads",
            "rudamina",
            "answered",
        )
        trail = [e for e in events if e.case_id == number]
        assert [e.kind for e in trail] == [
            "created",
            "message_in",
            "message_out",
            "status",
        ]  # the trail's kinds and dates stay
        assert all(e.text is None for e in trail) and [e.actor_id for e in trail] == [
            None,
            None,
            CLERK,
            CLERK,
        ]
        assert trail[0].data == {"team": "front"}
    for number in (2, 4):
        assert (
            cases[number].description == f"Mój opis {number}, tel. 600" and cases[number].resident_id == ANNA
        )
        assert [e.text for e in events if e.case_id == number][1:3] == [
            "Mieszkam pod numerem 5",
            "Dzień dobry, Pani Anno",
        ]
    assert files == outbox == {2, 4}
    assert (
        set(residents) == {ANNA, BACK} and residents[ANNA].display_name == "Anna Nowak"
    )  # active profiles are their own
    assert deliveries == {ANNA}  # who got which announcement goes with the profile

    # A purged case is a statistic: no action on its card, nothing can be sent or noted.
    assert allowed_actions(cases[1]) == [] and allowed_actions(cases[2]) != []
    for attempt in (
        built.commands.relay(1, Clerk(CLERK, "Ona"), [GroupMessage(-100, 1)], "Dzień dobry"),
        built.commands.note(1, Clerk(CLERK, "Ona"), "notatka", GroupMessage(-100, 2)),
    ):
        with pytest.raises(NotAllowed):
            await attempt

    with built.i18n.context(), built.i18n.use_locale("en"):
        after = await built.quality.report(period, "en")
    assert after == before
    assert (after.received, after.closed) == (5, 4)


async def test_retention_goes_in_batches_and_an_interrupted_run_is_taken_up_by_the_next(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _seed(database)
    built = services(database)
    monkeypatch.setattr("bot.services.privacy.PURGE_BATCH", 2)  # the three expired cases: two transactions
    retire = built.notices.retire_from_groups
    retired: list[int] = []

    async def retire_then_fail_at_the_second_batch(session: AsyncSession, cases: list[Case]) -> None:
        if retired:
            raise ConnectionError("the database went away")
        retired.extend(case.id for case in cases)
        await retire(session, cases)

    monkeypatch.setattr(built.notices, "retire_from_groups", retire_then_fail_at_the_second_batch)
    with pytest.raises(ConnectionError):
        await built.rights.purge_expired(NOW)
    async with database.read() as session:
        purged = set(
            (await session.execute(select(col(Case.id)).where(col(Case.purged_at).is_not(None)))).scalars()
        )
    assert retired == [1, 3] and purged == {1, 3}  # the first batch committed whole, the second not at all

    monkeypatch.setattr(built.notices, "retire_from_groups", retire)
    assert await built.rights.purge_expired(NOW) == Purged(
        cases=1, texts=3, files=1, residents=1
    )  # the rest: case 5, and its erased profile
    async with database.read() as session:
        purged = set(
            (await session.execute(select(col(Case.id)).where(col(Case.purged_at).is_not(None)))).scalars()
        )
        texts = list(
            (
                await session.execute(
                    select(col(CaseEvent.text)).where(col(CaseEvent.case_id).in_([1, 3, 5]))
                )
            ).scalars()
        )
    assert purged == {1, 3, 5} and texts == [None] * len(texts)


async def test_retention_deletes_the_case_topic_with_every_copy_in_it(
    database: Database, emulator: Emulator
) -> None:
    emulator.add_group("Clerks", forum=True, chat_id=ADMIN_CHAT_ID)
    built = services(database, emulator.url)
    try:
        topic = await built.bot.create_forum_topic(ADMIN_CHAT_ID, "VRS-2021-000001")
        card = await built.bot.send_message(
            ADMIN_CHAT_ID, "🚧 VRS-2021-000001 · Anna Nowak", message_thread_id=topic.message_thread_id
        )
        async with database.write() as session:
            session.add(Resident(id=ANNA, locale="pl", display_name="Anna Nowak"))
            await session.flush()
            session.add(
                Case(
                    id=1,
                    number="VRS-2021-000001",
                    year=2021,
                    seq=1,
                    resident_id=ANNA,
                    locale="pl",
                    kind="request",
                    category_id="roads",
                    description="Mój opis",
                    received_at=at("2021-05-03"),
                    deadline=date(2021, 6, 1),
                    status=CaseStatus.ANSWERED,
                    closed_at=at("2021-06-01"),
                    group_chat_id=ADMIN_CHAT_ID,
                    topic_id=topic.message_thread_id,
                    card_message_id=card.message_id,
                )
            )
        assert (await built.rights.purge_expired(NOW)).cases == 1
        await built.outbox.send_due_now()
    finally:
        await built.bot.session.close()
    assert topic.message_thread_id not in emulator.chats[ADMIN_CHAT_ID].topics
    assert [
        int(r["params"]["message_thread_id"]) for r in emulator.requests if r["method"] == "deleteForumTopic"
    ] == [topic.message_thread_id]
    async with database.read() as session:
        case = await session.get(Case, 1)
    assert case is not None
    assert (case.topic_id, case.card_message_id, case.purged_at) == (None, None, NOW)


async def test_retention_in_a_group_without_topics_deletes_every_message_of_the_case(
    database: Database, emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.add_group("Clerks", forum=False, chat_id=ADMIN_CHAT_ID)
    built = services(database, emulator.url)
    try:
        card = await built.bot.send_message(ADMIN_CHAT_ID, "🚧 VRS-2021-000001 · Anna Nowak, Szkolna 1")
        photo = await built.bot.send_message(ADMIN_CHAT_ID, "(the resident's photo, relayed)")
        answer = await built.bot.send_message(
            ADMIN_CHAT_ID, "Dzień dobry, Pani Anno"
        )  # a clerk's message, relayed to her
        async with database.write() as session:
            session.add(Resident(id=ANNA, locale="pl", display_name="Anna Nowak"))
            await session.flush()
            session.add(
                Case(
                    id=1,
                    number="VRS-2021-000001",
                    year=2021,
                    seq=1,
                    resident_id=ANNA,
                    locale="pl",
                    kind="request",
                    category_id="roads",
                    description="Mój opis",
                    received_at=at("2021-05-03"),
                    deadline=date(2021, 6, 1),
                    status=CaseStatus.ANSWERED,
                    closed_at=at("2021-06-01"),
                    group_chat_id=ADMIN_CHAT_ID,
                    card_message_id=card.message_id,
                )
            )
            await session.flush()
            session.add_all(
                [
                    CaseTrace(
                        case_id=1, kind=TraceKind.CARD, chat_id=ADMIN_CHAT_ID, message_id=card.message_id
                    ),
                    CaseTrace(
                        case_id=1, kind=TraceKind.POST, chat_id=ADMIN_CHAT_ID, message_id=photo.message_id
                    ),
                    CaseEvent(
                        case_id=1,
                        kind=EventKind.MESSAGE_OUT,
                        actor_id=CLERK,
                        text="Dzień dobry",
                        group_chat_id=ADMIN_CHAT_ID,
                        group_message_id=answer.message_id,
                    ),
                ]
            )
        # Telegram refuses to delete the card (older than 48 hours, no right to delete): it is blanked instead.
        emulator.faults.append({"kind": "error", "code": 400, "count": 1, "method": "deleteMessage"})
        assert (await built.rights.purge_expired(NOW)).cases == 1
        await built.outbox.send_due_now()
    finally:
        await built.bot.session.close()
    deletes = [
        (int(r["params"]["message_id"]), r["status"])
        for r in emulator.requests
        if r["method"] == "deleteMessage"
    ]
    assert deletes == [(card.message_id, 400), (photo.message_id, 200), (answer.message_id, 200)]
    assert [r.getMessage() for r in caplog.records if r.name == "bot.services.groups"] == [
        "a message could not be deleted"
    ]  # the refusal, logged
    left = emulator.chats[ADMIN_CHAT_ID].messages
    assert photo.message_id not in left and answer.message_id not in left
    blank = tr("lt", "🧹 {number}: removed at the end of the retention period.", number="VRS-2021-000001")
    assert (
        left[card.message_id]["text"] == blank and "reply_markup" not in left[card.message_id]
    )  # no name, no place, no buttons
    async with database.read() as session:
        assert (
            await session.execute(select(CaseTrace))
        ).scalars().all() == []  # what they pointed to is gone
        row = (
            await session.execute(select(OutboxMessage).where(col(OutboxMessage.kind) == "delete_messages"))
        ).scalar_one()
    assert row.status == "sent"  # a refusal counts as done: nothing more the bot can do
