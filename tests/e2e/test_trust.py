"""What a resident is told survives a Telegram outage and a kill -9 in the middle of it: once
the outage is over, the answer, the status and the satisfaction question arrive, each once; and
an announcement to 300 residents goes on through a five-minute outage of all of Telegram."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from sqlalchemy import func, select
from sqlmodel import col

from bot.sandbox.emulator import Emulator
from bot.store.db import Database
from bot.store.migrate import upgrade
from bot.store.models import (
    Broadcast,
    BroadcastStatus,
    Delivery,
    DeliveryStatus,
    OutboxMessage,
    OutboxStatus,
    Resident,
    utcnow,
)
from tests.catalog import SURVEY, tr
from tests.conftest import DATABASES
from tests.e2e.conftest import BotProcess
from tests.support.driver import Person, Telegram
from tests.support.helpers import broadcast_to_all, onboard, staff, submit_case

OUTAGE_SECONDS = 60


@pytest.mark.slow
async def test_a_60_second_outage_and_a_kill_9_lose_nothing(
    emulator: Emulator, telegram: Telegram, settings_env, tmp_path, store: Database, clerks: Person
) -> None:
    bot = BotProcess(emulator, settings_env, tmp_path / "bot.log")
    await bot.start()
    try:
        anna = await telegram.resident("Anna", language_code="pl")
        await onboard(anna, "pl")
        await submit_case(anna, "pl", "📄 Wniosek", "Inne sprawy", "Proszę o zaświadczenie")
        card = await clerks.receive_one()

        # Telegram fails every message to Anna for a minute (502), while the clerk answers and closes.
        await telegram.fault("error", code=502, chat_id=anna.user["id"], seconds=OUTAGE_SECONDS)
        await clerks.click("✅ Atsakyti ir užbaigti", card)
        await clerks.receive_one()  # the prompt
        await clerks.send("Zaświadczenie jest gotowe do odbioru.", thread_id=card.thread_id)
        await clerks.edited()  # the card: answered
        await anna.nothing_more(2.0)

        # The process dies mid-outage; a new one takes over its unsent rows at once.
        await bot.kill()
        bot = BotProcess(emulator, settings_env, tmp_path / "bot.log")
        await bot.start()
        answer, question = await anna.receive(2, timeout=OUTAGE_SECONDS + 45)
        await anna.nothing_more(3.0)
    finally:
        await bot.stop()
    assert (
        "Zaświadczenie jest gotowe do odbioru." in answer.text and "Sprawa została zamknięta." in answer.text
    )  # one message: the answer, closed
    assert question.text.startswith(tr("pl", SURVEY, number="VRS-2026-000001"))
    async with store.read() as session:
        rows = (
            (await session.execute(select(OutboxMessage).where(OutboxMessage.chat_id == anna.user["id"])))
            .scalars()
            .all()
        )
    assert {row.status for row in rows} == {OutboxStatus.SENT}
    assert max(row.attempts for row in rows) > 1, "the outage was retried, not skipped"


RECIPIENTS = 300
LONG_OUTAGE_SECONDS = 300


@pytest.mark.slow
@pytest.mark.parametrize(
    "database_url", [DATABASES[-1]], indirect=True
)  # five minutes once: PostgreSQL when there is one
async def test_a_broadcast_to_300_goes_on_through_a_5_minute_outage(
    emulator: Emulator, telegram: Telegram, settings_env, tmp_path, store: Database
) -> None:
    await upgrade(store)
    people = [emulator.add_user(f"R{i}", "lt")["id"] for i in range(RECIPIENTS)]
    async with store.write() as session:
        session.add_all(
            Resident(id=uid, locale="lt", display_name="R", consent_at=utcnow(), news_topics=["general"])
            for uid in people
        )
    # Retries at most 5 s apart (30 by default): the announcement goes on soon after the outage ends.
    bot = BotProcess(emulator, {**settings_env, "BROADCAST_MAX_BACKOFF_SECONDS": "5"}, tmp_path / "bot.log")
    await bot.start()
    try:
        rasa = await staff(telegram, emulator)
        await broadcast_to_all(rasa, "Vandens tiekimas bus sustabdytas", RECIPIENTS)

        async def delivered() -> int:
            async with store.read() as session:
                count = await session.scalar(
                    select(func.count())
                    .select_from(Delivery)
                    .where(col(Delivery.status) == DeliveryStatus.SENT)
                )
                assert count is not None  # COUNT(*) always has a row
                return count

        while await delivered() < 60:
            await asyncio.sleep(0.05)
        # All of Telegram answers 502 for five minutes: sends, edits, getUpdates alike.
        await telegram.fault("error", code=502, seconds=LONG_OUTAGE_SECONDS)
        await asyncio.sleep(LONG_OUTAGE_SECONDS / 2)
        during = await delivered()
        assert during < RECIPIENTS, "the outage held nothing up"
        for _ in range(int(LONG_OUTAGE_SECONDS / 2 + 90) * 10):  # the rest of the outage, then some backoff
            if await delivered() == RECIPIENTS:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(2)  # anything sent twice would arrive now
        progress = await rasa.edited(timeout=30)
        while True:  # the last edit of the progress message
            try:
                progress = await rasa.edited(timeout=2)
            except AssertionError:
                break
    finally:
        await bot.stop()
    counts = Counter(
        e["chat_id"]
        for e in emulator.events
        if e["type"] == "message" and e.get("outgoing") and e["chat_id"] > 0
    )
    assert set(counts) == set(people), f"{RECIPIENTS - len(counts)} residents never got the announcement"
    assert set(counts.values()) == {1}, "someone got it twice"
    async with store.read() as session:
        statuses = Counter((await session.execute(select(col(Delivery.status)))).scalars())
        broadcast = (await session.execute(select(Broadcast))).scalar_one()
    assert statuses == {DeliveryStatus.SENT: RECIPIENTS}, statuses
    assert broadcast.status == BroadcastStatus.DONE
    assert (
        progress.text
        == "📣 Skelbimas #1: išsiųstas\nišsiųsta 300 · laukia 0 · užblokavo 0 · nepavyko 0 · iš 300"
    ), progress.text
