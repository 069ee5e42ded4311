"""Backups that restore (`petent backup`, `petent restore`): a running desk with a case, a kept
file, a message Telegram has not taken yet and a broadcast half sent is backed up, restored into
an empty database and file store, and a bot started on the copy finishes what was left: every
row and file is there, the pending message arrives once, and nothing already sent goes again."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlmodel import col

from bot.app import App
from bot.sandbox.emulator import Emulator
from bot.services.backup import BackupError, backup, restore, table_counts
from bot.services.broadcaster import Broadcaster, TextVersion
from bot.services.storage import LocalFileStore
from bot.store.db import Database
from bot.store.models import Attachment, Case, Delivery, DeliveryStatus, OutboxMessage, OutboxStatus
from tests.conftest import _create_pg_database, _drop_pg_database
from tests.factories import services
from tests.inprocess.conftest import Submitted
from tests.support.helpers import wait_until

PHOTO = b"\x89PNG\r\n\x1a\n" + b"lamp" * 1000
RELAYED = "Sprawdzimy to jutro rano."


@pytest.fixture
async def empty_database_url(database: Database, tmp_path: Path):
    """A database of the same kind as the bot's, with no schema at all."""
    if database.is_sqlite:
        yield f"sqlite+aiosqlite:///{tmp_path}/restored.db"
        return
    url = await _create_pg_database(migrated=False)
    try:
        yield url
    finally:
        await _drop_pg_database(url)


def messages_to(emulator: Emulator, chat_id: int, text: str) -> int:
    return sum(
        1
        for e in emulator.events
        if e["type"] == "message"
        and e.get("outgoing")
        and e["chat_id"] == chat_id
        and text in (e["message"].get("text") or "")
    )


async def test_a_restored_backup_has_every_row_and_file_and_finishes_what_was_pending(
    submitted: Submitted,
    bot: App,
    store: Database,
    emulator: Emulator,
    empty_database_url: str,
    tmp_path: Path,
) -> None:
    anna = submitted.anna.user["id"]
    # A kept file of the case, in the municipality's store.
    files = LocalFileStore(tmp_path / "files")
    staged = files.staging() / "photo"
    staged.write_bytes(PHOTO)
    await files.put("2026/lamp.png", staged, "image/png", "lamp.png")
    async with store.write() as session:
        case = (await session.execute(select(Case))).scalar_one()
        session.add(
            Attachment(
                case_id=case.id,
                kind="photo",
                file_id="f1",
                file_unique_id="u1",
                content_type="image/png",
                file_name="lamp.png",
                size=len(PHOTO),
                sha256=hashlib.sha256(PHOTO).hexdigest(),
                storage="local",
                storage_key="2026/lamp.png",
            )
        )
    # A clerk's answer that Telegram keeps refusing: pending in the outbox at the backup.
    emulator.faults.append({"kind": "error", "code": 502, "chat_id": anna, "count": 10_000})
    await submitted.clerks.send(RELAYED, thread_id=submitted.thread)
    await wait_until(
        lambda: any(
            r["status"] == 502 and r["params"].get("chat_id") in (anna, str(anna)) for r in emulator.requests
        )
    )
    bot.outbox.stop()  # this bot stops here; its copy goes on
    # An announcement to four residents, two of them already served.
    people = [emulator.add_user(f"R{i}", "pl")["id"] for i in range(4)]
    broadcaster = Broadcaster(store, bot.bot)
    broadcast = await broadcaster.create(
        {"pl": TextVersion(text="Ogłoszenie: remont drogi")}, [(chat, "pl") for chat in people]
    )
    async with store.write() as session:
        await session.execute(
            update(Delivery)
            .where(col(Delivery.chat_id).in_(people[:2]))
            .values(status=DeliveryStatus.SENT, sent_message_id=1)
        )
    before = await table_counts(store)
    async with store.read() as session:
        pending = (
            (
                await session.execute(
                    select(OutboxMessage).where(col(OutboxMessage.status) == OutboxStatus.PENDING)
                )
            )
            .scalars()
            .all()
        )
    assert pending, "the clerk's answer waits in the outbox"

    archive = tmp_path / "backup.tar.gz"
    manifest = await backup(store, files, archive)
    assert [kept.key for kept in manifest.files] == ["2026/lamp.png"] and manifest.tables == before

    restored = Database(empty_database_url)
    restored_files = LocalFileStore(tmp_path / "restored-files")
    try:
        await restore(restored, restored_files, archive)
        assert await table_counts(restored) == before
        assert await restored_files.get("2026/lamp.png") == PHOTO
        with pytest.raises(BackupError, match="not empty"):  # never over live data
            await restore(restored, restored_files, archive)

        # Telegram is back; a bot on the copy sends what was left, and only that.
        emulator.faults.clear()
        async with restored.write() as session:  # the backoff's wait has passed
            await session.execute(
                update(OutboxMessage)
                .where(col(OutboxMessage.status) == OutboxStatus.PENDING)
                .values(due_at=None)
            )
        copy = services(restored, emulator.url, send_rate_per_second=0)
        try:
            await copy.outbox.send_due_now()
            counts = await Broadcaster(restored, copy.bot).run(broadcast.id)
        finally:
            copy.outbox.close()
            await copy.bot.session.close()
    finally:
        await restored.dispose()
    assert messages_to(emulator, anna, RELAYED) == 1
    assert (counts[DeliveryStatus.SENT], counts.total) == (4, 4)
    assert Counter(
        e["chat_id"] for e in emulator.events if e["type"] == "message" and e["chat_id"] in people
    ) == Counter(people[2:])


async def test_a_folder_that_is_not_a_backup_is_refused_in_one_line(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/x.db")
    try:
        with pytest.raises(BackupError, match="not a Petent backup"):
            await restore(database, LocalFileStore(tmp_path / "f"), tmp_path)
    finally:
        await database.dispose()
