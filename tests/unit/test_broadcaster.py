"""The broadcast outbox: every recipient exactly once, resumable, shared by several senders."""

import asyncio
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlmodel import col

from bot.limiter import Lanes, RateLimiter
from bot.sandbox.emulator import Emulator
from bot.services.broadcaster import Broadcaster, Counts, Paused, TextVersion, Version
from bot.store.db import Database
from bot.store.models import Broadcast, BroadcastStatus, Delivery, DeliveryStatus, utcnow
from bot.telegram import create_bot
from tests.conftest import TOKEN

CONTENT: dict[str, Version] = {
    "pl": TextVersion(text="<b>Ogłoszenie</b>: remont drogi w Rzeszy od 1 grudnia."),
    "lt": TextVersion(text="<b>Skelbimas</b>: kelio remontas Riešėje nuo gruodžio 1 d."),
}


@pytest.fixture
async def bot(emulator: Emulator):
    emulator.limits.enabled = False
    bot = create_bot(TOKEN, emulator.url, RateLimiter(Lanes(global_per_second=0)))
    yield bot
    await bot.session.close()


def residents(emulator: Emulator, count: int) -> list[tuple[int, str]]:
    return [
        (emulator.add_user(f"R{i}", "pl" if i % 2 else "lt")["id"], "pl" if i % 2 else "lt")
        for i in range(count)
    ]


def received(emulator: Emulator) -> Counter[int]:
    return Counter(e["chat_id"] for e in emulator.events if e["type"] == "message" and e.get("outgoing"))


async def test_each_recipient_gets_their_language_once(database: Database, emulator: Emulator, bot) -> None:
    people = residents(emulator, 60)
    sender = Broadcaster(database, bot, batch=7)
    broadcast = await sender.create(CONTENT, people + people[:5])  # duplicates are dropped
    counts = await sender.run(broadcast.id)
    assert (counts.total, counts[DeliveryStatus.SENT]) == (60, 60)
    assert set(received(emulator).values()) == {1} and len(received(emulator)) == 60
    chat, locale = people[0]
    text = next(iter(emulator.chats[chat].messages.values()))["text"]
    assert text.startswith("Skelbimas" if locale == "lt" else "Ogłoszenie")


async def test_two_senders_never_send_the_same_delivery(
    database_url: str, database: Database, emulator: Emulator, bot
) -> None:
    people = residents(emulator, 150)
    first = Broadcaster(database, bot, batch=10)
    other_database = Database(database_url)  # another process's connection pool
    second = Broadcaster(other_database, bot, batch=10)
    broadcast = await first.create(CONTENT, people)
    try:
        await asyncio.gather(first.run(broadcast.id), second.run(broadcast.id))
    finally:
        await other_database.dispose()
    assert set(received(emulator).values()) == {1} and len(received(emulator)) == 150
    async with database.read() as session:
        senders = Counter((await session.execute(select(col(Delivery.attempts)))).scalars())
    assert senders == {1: 150}


async def test_blocked_and_bad_requests_fail_an_outage_is_waited_out(
    database: Database, emulator: Emulator, bot
) -> None:
    people = residents(emulator, 10)
    emulator.blocked.add(people[0][0])
    emulator.faults.append(
        {"kind": "error", "code": 502, "chat_id": people[1][0], "count": 12}
    )  # a long outage for one chat
    emulator.faults.append(
        {"kind": "error", "code": 500, "chat_id": people[2][0], "count": 1}
    )  # retried at once
    emulator.faults.append({"kind": "error", "code": 400, "chat_id": people[3][0], "count": 1})  # permanent
    blocked: list[int] = []

    async def on_blocked(chat_id: int) -> None:
        blocked.append(chat_id)

    sender = Broadcaster(database, bot, on_blocked=on_blocked, max_backoff=0.05)
    broadcast = await sender.create(CONTENT, people)
    counts = await sender.run(broadcast.id)
    assert (counts[DeliveryStatus.SENT], counts[DeliveryStatus.BLOCKED], counts[DeliveryStatus.FAILED]) == (
        8,
        1,
        1,
    )
    assert blocked == [people[0][0]]
    assert received(emulator)[people[1][0]] == 1  # after the outage, once
    async with database.read() as session:
        waited = (
            await session.execute(select(Delivery).where(col(Delivery.chat_id) == people[1][0]))
        ).scalar_one()
    assert waited.attempts > 1 and waited.status == DeliveryStatus.SENT


async def test_a_429_storm_delays_but_loses_nothing(database: Database, emulator: Emulator) -> None:
    emulator.limits.enabled = True
    emulator.limits.global_per_second, emulator.limits.global_burst = 50, 5
    emulator.reset_rate_buckets()
    bot = create_bot(
        TOKEN, emulator.url, RateLimiter(Lanes(global_per_second=0))
    )  # the bot does not pace itself
    try:
        people = residents(emulator, 40)
        sender = Broadcaster(database, bot, batch=40)
        broadcast = await sender.create(CONTENT, people)
        counts = await sender.run(broadcast.id)
    finally:
        await bot.session.close()
    assert counts[DeliveryStatus.SENT] == 40
    assert set(received(emulator).values()) == {1}
    assert any(r["status"] == 429 for r in emulator.requests)


async def test_resume_after_a_crash_sends_what_was_left(database: Database, emulator: Emulator, bot) -> None:
    people = residents(emulator, 20)
    crashed = Broadcaster(database, bot, batch=5)
    broadcast = await crashed.create(CONTENT, people)
    claimed = await crashed.claim(broadcast.id, 5)  # claimed, then the process died before sending
    async with database.write() as session:  # its lease ran out
        await session.execute(
            update(Delivery)
            .where(col(Delivery.id).in_([d.id for d in claimed]))
            .values(claimed_at=utcnow() - timedelta(minutes=5))
        )

    restarted = Broadcaster(database, bot)
    assert await restarted.recover() == 5
    counts = await restarted.run(broadcast.id)
    assert counts[DeliveryStatus.SENT] == 20
    assert set(received(emulator).values()) == {1} and len(received(emulator)) == 20


async def test_a_fresh_claim_is_not_taken_over(database: Database, emulator: Emulator, bot) -> None:
    people = residents(emulator, 3)
    sender = Broadcaster(database, bot)
    broadcast = await sender.create(CONTENT, people)
    await sender.claim(broadcast.id, 3)
    assert await Broadcaster(database, bot).recover() == 0  # another process starting up


async def test_stop_cancels_what_is_not_sent(database: Database, emulator: Emulator, bot) -> None:
    sender = Broadcaster(database, bot, batch=5)
    broadcast = await sender.create(CONTENT, residents(emulator, 30))
    await sender.stop(broadcast.id)
    counts = await sender.run(broadcast.id)
    assert counts[DeliveryStatus.CANCELLED] == 30 and not received(emulator)
    async with database.read() as session:
        from bot.store.models import Broadcast

        stopped = await session.get(Broadcast, broadcast.id)
        assert stopped is not None and stopped.status == BroadcastStatus.STOPPED


async def test_a_paused_sender_ends_after_its_batch_and_the_rest_goes_on_later(
    database: Database, emulator: Emulator, bot
) -> None:
    """Shutting down: the batch in hand is sent and recorded, nothing is left claimed, the
    broadcast stays sending; the next start sends the rest, each once."""
    people = residents(emulator, 30)
    sender = Broadcaster(database, bot, batch=5)
    broadcast = await sender.create(CONTENT, people)

    async def pause_at_the_first_progress(counts: Counts) -> None:
        sender.pause()

    with pytest.raises(Paused):
        await sender.run(broadcast.id, pause_at_the_first_progress)
    counts = await sender.counts(broadcast.id)
    assert (counts[DeliveryStatus.SENT], counts[DeliveryStatus.PENDING], counts[DeliveryStatus.SENDING]) == (
        5,
        25,
        0,
    )
    async with database.read() as session:
        sending = await session.get(Broadcast, broadcast.id)
        assert sending is not None and sending.status == BroadcastStatus.SENDING
    counts = await Broadcaster(database, bot, batch=5).run(broadcast.id)  # the next start
    assert counts[DeliveryStatus.SENT] == 30 and set(received(emulator).values()) == {1}


async def test_a_not_found_answer_fails_its_row_and_the_rest_goes_on(
    database: Database, emulator: Emulator, bot
) -> None:
    """A 404 (TelegramNotFound) is permanent for the broadcaster as for the outbox: the row fails
    and the others are delivered (it escaped the broadcaster and ended the whole run before)."""
    people = residents(emulator, 5)
    emulator.faults.append({"kind": "error", "code": 404, "chat_id": people[2][0], "count": 1})
    sender = Broadcaster(database, bot)
    broadcast = await sender.create(CONTENT, people)
    counts = await sender.run(broadcast.id)
    assert (counts[DeliveryStatus.SENT], counts[DeliveryStatus.FAILED]) == (4, 1)


async def test_an_unexpected_error_keeps_the_row_and_it_goes_later(
    database: Database, emulator: Emulator, bot, monkeypatch
) -> None:
    """A bug or a database hiccup while sending one row: the row waits and is sent on a later
    pass, nobody is lost and the run goes on (it escaped and ended the run before)."""
    people = residents(emulator, 4)
    real_send = bot.send_message
    failed: list[int] = []

    async def send_message(chat_id: int, *args, **kwargs):
        if chat_id == people[1][0] and not failed:
            failed.append(chat_id)
            raise RuntimeError("a hiccup")
        return await real_send(chat_id, *args, **kwargs)

    monkeypatch.setattr(bot, "send_message", send_message)
    sender = Broadcaster(database, bot, max_backoff=0.05)
    broadcast = await sender.create(CONTENT, people)
    counts = await sender.run(broadcast.id)
    assert counts[DeliveryStatus.SENT] == 4 and failed == [people[1][0]]
    assert set(received(emulator).values()) == {1}
