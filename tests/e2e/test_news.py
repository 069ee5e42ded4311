"""News through the emulator: sending surviving kill -9 and a stop. (Subscribing, and an
announcement composed in two languages and sent to a topic's subscribers, one behaviour a test,
are in tests/inprocess/test_news.py; an album announcement and broadcasting refused outside the
communications group in tests/inprocess/test_news_edges.py.)"""

import asyncio
from collections import Counter

import pytest
from sqlalchemy import func, select
from sqlmodel import col

from bot.sandbox.emulator import Emulator
from bot.store.db import Database
from bot.store.models import Delivery, DeliveryStatus, Resident, utcnow
from tests.support.driver import Telegram
from tests.support.helpers import broadcast_to_all, staff


@pytest.mark.parametrize("stop", ["kill -9", "SIGTERM"])
async def test_sending_resumes_after_a_stop_without_losses(
    stop: str, emulator: Emulator, telegram: Telegram, settings_env, tmp_path, store: Database
) -> None:
    """Killed mid-announcement, or stopped (SIGTERM): after a restart every resident has it. A
    stop ends the batches in hand and exits by itself, so nobody gets it twice."""
    from bot.store.migrate import upgrade
    from tests.e2e.conftest import BotProcess

    await upgrade(store)
    people = [emulator.add_user(f"R{i}", "lt")["id"] for i in range(150)]
    async with store.write() as session:
        session.add_all(
            Resident(id=uid, locale="lt", display_name="R", consent_at=utcnow(), news_topics=["general"])
            for uid in people
        )
    # A real clock: a frozen one would restart at the same moment and never see the lease end.
    process = BotProcess(
        emulator,
        {**settings_env, "BROADCAST_LEASE_SECONDS": "1", "PETENT_FROZEN_TIME": ""},
        tmp_path / "bot.log",
    )
    await process.start()
    try:
        rasa = await staff(telegram, emulator)
        await broadcast_to_all(rasa, "Svarbus pranešimas visiems gyventojams", 150)

        async def sent() -> int:
            async with store.read() as session:
                count = await session.scalar(
                    select(func.count())
                    .select_from(Delivery)
                    .where(col(Delivery.status) == DeliveryStatus.SENT)
                )
                assert count is not None  # COUNT(*) always has a row
                return count

        for _ in range(600):
            if await sent() >= 30:
                break
            await asyncio.sleep(0.05)
        if stop == "kill -9":
            await process.kill()
        else:
            await process.stop()
            assert process.returncode == 0, "the bot ended by itself, not killed when it did not"
        async with store.read() as session:
            in_flight = set(
                (
                    await session.execute(
                        select(col(Delivery.chat_id)).where(col(Delivery.status) == DeliveryStatus.SENDING)
                    )
                ).scalars()
            )
        await asyncio.sleep(1.5)  # the dead sender's lease runs out
        await process.start()
        for _ in range(400):
            if await sent() == 150:
                break
            await asyncio.sleep(0.1)
    finally:
        await process.stop()
    counts = Counter(
        e["chat_id"]
        for e in emulator.events
        if e["type"] == "message" and e.get("outgoing") and e["chat_id"] in set(people)
    )
    assert set(people) == set(counts), "every resident got the announcement"
    twice = {chat for chat, n in counts.items() if n > 1}
    assert twice <= in_flight, "only messages in flight at the crash may go twice"
    assert max(counts.values()) <= 2
    if stop == "SIGTERM":
        assert (in_flight, twice) == (set(), set()), "a stop leaves nothing in hand"
        assert "database is locked" not in process.log()
