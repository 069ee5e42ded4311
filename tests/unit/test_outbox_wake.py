"""A committed transaction wakes the outbox's senders of the rows it added, and only those: a
pool that wakes claims (a write transaction) whether or not it has new rows."""

from __future__ import annotations

import asyncio

from bot.services.outbox import Kind, Outbox, Pool, Sent, enqueue
from bot.services.outbox_payloads import MessagePayload, WebhookPayload
from bot.store.db import Database
from bot.store.migrate import upgrade
from bot.store.models import OutboxMessage


def _outbox(database: Database) -> Outbox:
    return Outbox(database, "test", pools=[Pool(frozenset({Kind.WEBHOOK}), concurrency=2, max_backoff=5.0)])


async def test_a_commit_wakes_the_senders_of_what_it_added_and_no_others(database: Database) -> None:
    await upgrade(database)
    outbox = _outbox(database)
    telegram, webhooks = outbox._workers

    async with database.write() as session:
        enqueue(session, MessagePayload(text="Dzień dobry"), 5, key="r:5")
    assert (telegram.wake.is_set(), webhooks.wake.is_set()) == (True, False)

    telegram.wake.clear()
    async with database.write() as session:
        enqueue(
            session,
            WebhookPayload(receiver="dms", body={"event": "case.opened", "id": 1}),
            0,
            key="hook:dms:1",
        )
    assert (telegram.wake.is_set(), webhooks.wake.is_set()) == (False, True)


async def test_nothing_wakes_for_a_transaction_without_rows_or_rolled_back(database: Database) -> None:
    await upgrade(database)
    outbox = _outbox(database)
    async with database.write():
        pass
    try:
        async with database.write() as session:
            enqueue(session, MessagePayload(text="Dzień dobry"), 5, key="r:5")
            raise RuntimeError("the change fails after queuing")
    except RuntimeError:
        pass
    assert not any(workers.wake.is_set() for workers in outbox._workers)
    outbox.close()
    async with database.write() as session:
        enqueue(session, MessagePayload(text="Dzień dobry"), 5, key="r:5")
    assert not any(workers.wake.is_set() for workers in outbox._workers), (
        "a closed outbox is no longer called"
    )


async def test_a_row_is_sent_at_once_without_waiting_for_the_tick(database: Database) -> None:
    await upgrade(database)
    outbox = _outbox(database)
    sent = asyncio.Event()

    async def message(row: OutboxMessage) -> Sent:
        sent.set()
        return Sent()

    outbox.handle(Kind.MESSAGE, message)
    running = asyncio.create_task(outbox.run())
    try:
        await asyncio.sleep(0.2)  # its first look found nothing; the next tick is a second away
        async with database.write() as session:
            enqueue(session, MessagePayload(text="Dzień dobry"), 5, key="r:5")
        async with asyncio.timeout(0.5):
            await sent.wait()
    finally:
        outbox.stop()
        await running
