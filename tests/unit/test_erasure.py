"""Nothing about a person left in rows still waiting to be sent after /forget, and satisfaction
comments gone with their cases' retention (on SQLite and PostgreSQL). The group side (cards and
topics of a case passed between teams) is in tests/inprocess/test_erasure.py."""

from __future__ import annotations

import functools
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import cast

import pytest
from aiogram.fsm.storage.base import DefaultKeyBuilder, StorageKey
from sqlalchemy import select
from sqlmodel import col

from bot.app import Services
from bot.services.cases import CaseDraft
from bot.services.outbox import Kind
from bot.store.db import Database
from bot.store.fsm import SQLStorage, forget_conversations
from bot.store.migrate import upgrade
from bot.store.models import CaseTrace, FsmRecord, OutboxMessage, OutboxStatus, Resident, SatisfactionAnswer
from tests.conftest import TEST_REDIS_URL
from tests.factories import services
from tests.support.old_schema import insert_as_of_now

ANNA, OTHER, BOT_ID = 4242, 4343, 12345
HOOKS = "dms=https://dms.example.lt/petent|a-long-secret-for-the-dms"  # nobody answers there: the rows stay pending
RECEIVED = datetime(2026, 11, 23, 7, tzinfo=UTC)


@pytest.fixture
async def wired(database: Database) -> AsyncIterator[Services]:
    wired = services(database, case_webhooks=HOOKS)
    async with database.write() as session:
        session.add(
            Resident(
                id=ANNA, locale="pl", display_name="Anna Nowak", phone="+37060000001", consent_at=RECEIVED
            )
        )
        session.add(
            Resident(
                id=OTHER,
                locale="lt",
                display_name="Jonas Jonaitis",
                phone="+37060000002",
                consent_at=RECEIVED,
            )
        )
    yield wired
    await wired.webhooks.close()
    await wired.bot.session.close()


async def _hooks(database: Database) -> dict[int | None, list[OutboxMessage]]:
    async with database.read() as session:
        rows = (
            await session.execute(
                select(OutboxMessage)
                .where(col(OutboxMessage.kind) == Kind.WEBHOOK)
                .order_by(col(OutboxMessage.id))
            )
        ).scalars()
    by_case: dict[int | None, list[OutboxMessage]] = {}
    for row in rows:
        by_case.setdefault(row.case_id, []).append(row)
    return by_case


async def test_forget_scrubs_the_pending_webhook_rows_about_the_resident(
    wired: Services, database: Database
) -> None:
    hers = (
        await wired.commands.open(CaseDraft(ANNA, "pl", "report", "roads", "Dziura w jezdni"), RECEIVED)
    ).case
    his = (await wired.commands.open(CaseDraft(OTHER, "lt", "report", "roads", "Duobė"), RECEIVED)).case
    [pending] = (await _hooks(database))[hers.id]
    assert (
        pending.payload["body"]["case"]["resident"]["name"] == "Anna Nowak"
    )  # as the receiver, down, has not had it yet

    await wired.rights.forget(ANNA, RECEIVED)

    rows = await _hooks(database)
    [scrubbed] = rows[hers.id]
    assert scrubbed.status == OutboxStatus.PENDING  # still to be delivered: the case stays on record
    assert scrubbed.payload["body"]["case"]["resident"] == {
        "name": None,
        "phone": None,
        "email": None,
        "postal_address": None,
        "answer_by": "telegram",
        "erased": True,
    }
    assert "Anna" not in str(scrubbed.payload) and "+37060000001" not in str(scrubbed.payload)
    assert (
        scrubbed.payload["body"]["case"]["number"] == hers.number
        and scrubbed.payload["body"]["event"] == "case.opened"
    )
    [untouched] = rows[his.id]
    assert (
        untouched.payload["body"]["case"]["resident"]["name"] == "Jonas Jonaitis"
    )  # another person's row is left alone


async def test_forget_leaves_no_conversation_in_the_sql_storage(wired: Services, database: Database) -> None:
    storage = SQLStorage(database)
    wired.rights.conversations = functools.partial(
        forget_conversations, storage, BOT_ID
    )  # as bot.app wires it
    hers = StorageKey(bot_id=BOT_ID, chat_id=ANNA, user_id=ANNA)
    in_a_topic = StorageKey(bot_id=BOT_ID, chat_id=ANNA, user_id=ANNA, thread_id=7)
    his = StorageKey(bot_id=BOT_ID, chat_id=OTHER, user_id=OTHER)
    for key in (hers, in_a_topic, his):
        await storage.set_state(key, "Intake:description")
        await storage.set_data(key, {"phone": "+37060000001", "address": "Szkolna 5"})

    await wired.rights.forget(ANNA, RECEIVED)

    assert (await storage.get_state(hers), await storage.get_data(hers)) == (None, {})
    assert (await storage.get_state(in_a_topic), await storage.get_data(in_a_topic)) == (None, {})
    async with database.read() as session:
        keys = set((await session.execute(select(col(FsmRecord.key)))).scalars())
    assert keys == {storage.key_builder.build(his)}  # only the other person's conversation is left
    await storage.close()


@pytest.mark.skipif(not TEST_REDIS_URL, reason="the replicas' conversations live in Redis (TEST_REDIS_URL)")
async def test_forget_leaves_no_conversation_in_redis(wired: Services, database: Database) -> None:
    from aiogram.fsm.storage.redis import RedisStorage

    prefix = f"fsm-test-{secrets.token_hex(4)}"  # the test's own keys in a shared Redis
    storage = RedisStorage.from_url(
        TEST_REDIS_URL or "", key_builder=DefaultKeyBuilder(prefix=prefix, with_destiny=True)
    )
    wired.rights.conversations = functools.partial(
        forget_conversations, storage, BOT_ID
    )  # as bot.app wires it
    hers, in_a_topic = (
        StorageKey(bot_id=BOT_ID, chat_id=ANNA, user_id=ANNA),
        StorageKey(bot_id=BOT_ID, chat_id=ANNA, user_id=ANNA, thread_id=7),
    )
    his = StorageKey(bot_id=BOT_ID, chat_id=OTHER, user_id=OTHER)
    try:
        for key in (hers, in_a_topic, his):
            await storage.set_state(key, "Intake:description")
            await storage.set_data(key, {"phone": "+37060000001"})

        await wired.rights.forget(ANNA, RECEIVED)

        keys = cast("list[bytes]", await storage.redis.keys(f"{prefix}:*"))  # bytes: no decode_responses
        left = sorted(key.decode() for key in keys)
        assert left == [storage.key_builder.build(his, "data"), storage.key_builder.build(his, "state")]
    finally:
        await storage.redis.delete(*await storage.redis.keys(f"{prefix}:*") or [f"{prefix}:none"])
        await storage.close()


async def test_retention_blanks_satisfaction_comments_with_their_cases(
    wired: Services, database: Database
) -> None:
    def answer(kind: str, day: date, comment: str) -> SatisfactionAnswer:
        return SatisfactionAnswer(
            answered_on=day,
            locale="pl",
            kind=kind,
            category_id="roads",
            score=2,
            resolved="no",
            comment=comment,
        )

    async with database.write() as session:
        session.add_all(
            [
                answer(
                    "report", date(2024, 6, 1), "Pani Ania z urzędu była niemiła"
                ),  # reports: 2 years, gone
                answer("report", date(2025, 6, 1), "Za długo"),  # stays
                answer("request", date(2024, 6, 1), "Dziękuję"),  # requests: 5 years, stays
            ]
        )

    purged = await wired.rights.purge_expired(datetime(2026, 11, 23, 3, tzinfo=UTC))

    assert purged.comments == 1
    async with database.read() as session:
        answers = list(
            (
                await session.execute(
                    select(SatisfactionAnswer).order_by(
                        col(SatisfactionAnswer.kind), col(SatisfactionAnswer.answered_on)
                    )
                )
            ).scalars()
        )
    assert [(a.kind, a.answered_on, a.comment, a.score) for a in answers] == [
        ("report", date(2024, 6, 1), None, 2),  # the score still counts
        ("report", date(2025, 6, 1), "Za długo", 2),
        ("request", date(2024, 6, 1), "Dziękuję", 2),
    ]


@pytest.mark.unmigrated
async def test_the_migration_remembers_the_cards_and_topics_cases_already_had(database_url: str) -> None:
    """0012 on a store from before: each case's current topic and card, the card the outbox posted
    in the group a case was passed on from, and the topic it closed there."""
    database = Database(database_url)
    try:
        await upgrade(database, "0010")
        roads, eldership = -1001000000011, -1001000000012
        await insert_as_of_now(
            database,
            "cases",
            [
                {
                    "id": 1,
                    "number": "VRS-2026-000001",
                    "year": 2026,
                    "seq": 1,
                    "resident_id": None,
                    "locale": "pl",
                    "kind": "report",
                    "category_id": "roads",
                    "description": "Dziura",
                    "status": "new",
                    "received_at": RECEIVED,
                    "deadline": date(2026, 12, 21),
                    "extension_days": 0,
                    "group_chat_id": eldership,
                    "topic_id": 40,
                    "card_message_id": 41,
                    "feedback_asked": False,
                    "channel": "telegram",
                    "public": False,
                }
            ],
        )
        sent = {"status": "sent", "attempts": 1, "created_at": RECEIVED}
        await insert_as_of_now(
            database,
            "outbox",
            [
                {
                    "kind": "card",
                    "key": "g:x:1",
                    "chat_id": roads,
                    "case_id": 1,
                    "payload": {},
                    "sent_chat_id": roads,
                    "sent_message_id": 11,
                    **sent,
                },
                {
                    "kind": "close_topic",
                    "key": "g:x:1",
                    "chat_id": roads,
                    "case_id": 1,
                    "payload": {"topic_id": 10},
                    **sent,
                },
                {
                    "kind": "card",
                    "key": "g:y:1",
                    "chat_id": eldership,
                    "case_id": 1,
                    "payload": {},
                    "sent_chat_id": eldership,
                    "sent_message_id": 41,
                    **sent,
                },
                {
                    "kind": "message",
                    "key": "r:1",
                    "chat_id": ANNA,
                    "case_id": 1,
                    "payload": {},
                    "sent_chat_id": ANNA,
                    "sent_message_id": 5,
                    **sent,
                },
            ],
        )
        await upgrade(database)
        async with database.read() as session:
            traces = (await session.execute(select(CaseTrace).order_by(col(CaseTrace.id)))).scalars().all()
        assert len(traces) == 4 and {
            (t.case_id, t.kind, t.chat_id, t.topic_id, t.message_id) for t in traces
        } == {
            (1, "card", roads, None, 11),  # the card left behind (its topic was not recorded)
            (1, "card", eldership, 40, 41),  # the current card, once
            (1, "topic", roads, 10, None),
            (1, "topic", eldership, 40, None),
        }
    finally:
        await database.dispose()
