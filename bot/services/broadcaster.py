"""The delivery engine for announcements: an outbox in the store, sent at Telegram's limits.

A broadcast has one Delivery row per recipient (unique per broadcast and chat). Senders claim
pending rows in small batches (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so several bot processes
never take the same row; SQLite has one writer at a time), send them as bulk traffic (replies to
residents go first), and record the outcome of each row as soon as it is known.

At most once, with one window: a row claimed and sent by a process that dies before recording
the outcome is still `sending`; the same instance takes its own rows back at once when it
restarts (`resume_own`), other instances' once their lease has expired (`recover`), and such a
row is sent a second time. The window is one claimed batch of one process (`batch` rows,
seconds long); everything else is sent exactly once, and nothing is lost.

A 429 or a Telegram outage (5xx, timeouts) never fails a row: it goes back to pending and is
tried again with backoff for as long as it takes; only permanent answers (blocked, a bad request)
fail it.

Content is a dict of versions by locale (`Version`: a `TextVersion`, with inline buttons for a
poll, or a `FilesVersion`: photos and documents with a caption), kept in Broadcast.content as their
`model_dump` and read back with `versions_of`; a resident gets their language's version, else the
first one (`version_for`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any, Literal

from aiogram import Bot
from aiogram.exceptions import TelegramMigrateToChat
from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaDocument,
    InputMediaPhoto,
    MediaUnion,
    Message,
)
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.aio import wait_for_event
from bot.limiter import bulk_traffic
from bot.store.db import Database, table_of
from bot.store.leases import LeasedQueue
from bot.store.models import Broadcast, BroadcastStatus, Delivery, DeliveryStatus, utcnow
from bot.telegram import Verdict, classify

log = logging.getLogger(__name__)

FINAL = (DeliveryStatus.SENT, DeliveryStatus.BLOCKED, DeliveryStatus.FAILED, DeliveryStatus.CANCELLED)


# --- what is sent -----------------------------------------------------------------------------


class Button(BaseModel):
    """An inline button of a version (a poll's first question)."""

    model_config = ConfigDict(extra="forbid")

    text: str
    callback_data: str

    @staticmethod
    def rows_of(markup: InlineKeyboardMarkup) -> list[list[Button]]:
        return [
            [Button(text=b.text, callback_data=b.callback_data or "") for b in row]
            for row in markup.inline_keyboard
        ]


class TextVersion(BaseModel):
    """A text announcement (HTML), or a poll's first question with its buttons."""

    model_config = ConfigDict(extra="forbid")

    text: str
    keyboard: list[list[Button]] = Field(default_factory=list)


class BroadcastFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["photo", "document"]
    file_id: str


class FilesVersion(BaseModel):
    """A photo or a document, or an album of them, with the caption (HTML) on the first."""

    model_config = ConfigDict(extra="forbid")

    files: Annotated[list[BroadcastFile], Field(min_length=1)]
    caption: str | None = None


Version = TextVersion | FilesVersion
_VERSIONS = TypeAdapter(dict[str, Version])


def versions_from_json(stored: dict[str, Any]) -> dict[str, Version]:
    return _VERSIONS.validate_python(stored)


def versions_to_json(versions: dict[str, Version]) -> dict[str, Any]:
    """What Broadcast.content (and an announcement being composed, in the FSM data) holds."""
    dumped: dict[str, Any] = _VERSIONS.dump_python(versions, mode="json")
    return dumped


def versions_of(broadcast: Broadcast) -> dict[str, Version]:
    """The broadcast's versions by locale, read from its JSON column."""
    return versions_from_json(broadcast.content)


def version_for(versions: dict[str, Version], locale: str) -> Version:
    """The version a resident reading `locale` gets: theirs, else the first one."""
    return versions.get(locale) or next(iter(versions.values()))


@dataclass
class Counts:
    by_status: dict[str, int] = field(default_factory=dict)

    def __getitem__(self, status: str) -> int:
        return self.by_status.get(status, 0)

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    @property
    def pending(self) -> int:
        return self[DeliveryStatus.PENDING] + self[DeliveryStatus.SENDING]


async def add_broadcast(
    session: AsyncSession,
    content: dict[str, Version],
    recipients: list[tuple[int, str]],
    *,
    audience: dict[str, Any] | None = None,
    author: tuple[int, str] | None = None,
    paid: bool = False,
) -> Broadcast:
    """The broadcast and a pending delivery for each (chat_id, locale), duplicates dropped, inside
    the caller's transaction (a change and the notices it causes are written together)."""
    unique = dict(recipients)
    broadcast = Broadcast(
        content=versions_to_json(content),
        audience=audience or {},
        paid=paid,
        author_id=author[0] if author else None,
        author_name=author[1] if author else None,
    )
    session.add(broadcast)
    await session.flush()
    rows = [
        {
            "broadcast_id": broadcast.id,
            "chat_id": chat,
            "locale": locale,
            "status": DeliveryStatus.PENDING,
            "attempts": 0,
        }
        for chat, locale in unique.items()
    ]
    for start in range(0, len(rows), 1000):
        await session.execute(table_of(Delivery).insert(), rows[start : start + 1000])
    return broadcast


FANOUT = "petent.fanout"  # session.info: broadcasts to start once the transaction commits


def fan_out_after_commit(session: AsyncSession, broadcast: Broadcast) -> None:
    """Start sending `broadcast` once the caller's transaction commits (the app's after-commit
    hook, `started_after_commit`); unfinished ones are picked up at start and by `pick_up`."""
    session.info.setdefault(FANOUT, []).append(broadcast)


def started_after_commit(start: Callable[[Broadcast], None]) -> Callable[[AsyncSession], None]:
    def hook(session: AsyncSession) -> None:
        for broadcast in session.info.pop(FANOUT, []):
            start(broadcast)

    return hook


class Paused(Exception):
    """The sender was paused (shutdown): the broadcast is not finished, it goes on at the next start."""


class Broadcaster:
    def __init__(
        self,
        database: Database,
        bot: Bot,
        *,
        batch: int = 30,
        lease: timedelta = timedelta(minutes=2),
        on_blocked: Callable[[int], Awaitable[None]] | None = None,
        worker: str | None = None,
        max_backoff: float = 30.0,
    ) -> None:
        self.database = database
        self.bot = bot
        self.batch = batch
        self.lease = lease
        self.on_blocked = on_blocked
        self.worker = worker or f"w-{secrets.token_hex(4)}"  # stable across restarts when given
        self.max_backoff = max_backoff
        self._failures = 0  # consecutive transient failures: the backoff grows with them
        self._pausing = asyncio.Event()
        self._queue = LeasedQueue(Delivery, self.worker, lease)

    # --- the outbox ---

    async def create(
        self,
        content: dict[str, Version],
        recipients: list[tuple[int, str]],
        *,
        audience: dict[str, Any] | None = None,
        author: tuple[int, str] | None = None,
        paid: bool = False,
    ) -> Broadcast:
        """Store the broadcast and a pending delivery for each (chat_id, locale), duplicates dropped."""
        async with self.database.write() as session:
            return await add_broadcast(
                session, content, recipients, audience=audience, author=author, paid=paid
            )

    async def claim(self, broadcast_id: int, limit: int) -> list[Delivery]:
        """Take up to `limit` pending rows for this sender; rows other senders hold are skipped."""
        pending = (
            select(col(Delivery.id))
            .where(col(Delivery.broadcast_id) == broadcast_id, col(Delivery.status) == DeliveryStatus.PENDING)
            .order_by(col(Delivery.id))
            .limit(limit)
        )
        return await self._queue.claim(self.database, pending)

    async def recover(self) -> int:
        """Rows left `sending` by a sender that died (lease expired) become pending again."""
        return await self._queue.recover(self.database, "deliveries resumed after a crash")

    async def resume_own(self) -> int:
        """On start: rows this instance held when it stopped are pending again, at once."""
        return await self._queue.resume_own(self.database, "deliveries of this instance resumed")

    async def release(self) -> None:
        """On a graceful stop: what this sender holds goes back to pending (the same window as a crash)."""
        await self._queue.release(self.database, col(Delivery.claimed_by) == self.worker)

    async def show_progress_in(self, broadcast: Broadcast, chat_id: int, message_id: int) -> None:
        """The message in the communications group that follows the delivery (edited as it goes)."""
        async with self.database.write() as session:
            stored = await session.get_one(Broadcast, broadcast.id)
            stored.progress_chat_id, stored.progress_message_id = chat_id, message_id
        broadcast.progress_chat_id, broadcast.progress_message_id = chat_id, message_id

    async def recent(self, limit: int = 10) -> list[Broadcast]:
        """The latest announcements, newest first."""
        async with self.database.read() as session:
            return list(
                (
                    await session.execute(select(Broadcast).order_by(col(Broadcast.id).desc()).limit(limit))
                ).scalars()
            )

    async def counts(self, broadcast_id: int) -> Counts:
        async with self.database.read() as session:
            rows = await session.execute(
                select(col(Delivery.status), func.count())
                .where(col(Delivery.broadcast_id) == broadcast_id)
                .group_by(col(Delivery.status))
            )
            return Counts(dict(rows.all()))  # rows unpack as (status, count)

    def pause(self) -> None:
        """Shutting down: each `run` ends after the batch it is sending (raising Paused), not amid
        a write; the broadcasts stay SENDING and go on at the next start."""
        self._pausing.set()

    async def stop(self, broadcast_id: int) -> bool:
        """Halt: nothing more is claimed; rows not yet sent are cancelled. False if not sending."""
        async with self.database.write() as session:
            broadcast = await session.get(Broadcast, broadcast_id)
            if broadcast is None or broadcast.status != BroadcastStatus.SENDING:
                return False
            broadcast.status, broadcast.finished_at = BroadcastStatus.STOPPED, utcnow()
            await session.execute(
                update(Delivery)
                .where(
                    col(Delivery.broadcast_id) == broadcast_id, col(Delivery.status) == DeliveryStatus.PENDING
                )
                .values(status=DeliveryStatus.CANCELLED)
            )
        return True

    # --- sending ---

    async def run(
        self, broadcast_id: int, progress: Callable[[Counts], Awaitable[None]] | None = None
    ) -> Counts:
        """Send until nothing is pending (or the broadcast is stopped); returns the final counts."""
        async with self.database.read() as session:
            broadcast = await session.get(Broadcast, broadcast_id)
        if broadcast is None:
            raise LookupError(broadcast_id)
        versions = versions_of(broadcast)
        while True:
            if self._pausing.is_set():
                raise Paused(broadcast_id)
            if await self._stopped(broadcast_id):
                break
            claimed = await self.claim(broadcast_id, self.batch)
            if not claimed:
                counts = await self.counts(broadcast_id)
                if counts[DeliveryStatus.SENDING] == 0:
                    break
                await wait_for_event(self._pausing, 1)  # another sender holds the last rows...
                await self.recover()  # ...unless it died: then its lease runs out
                continue
            outcomes = await asyncio.gather(
                *(self._deliver(row, broadcast, version_for(versions, row.locale)) for row in claimed)
            )
            if progress is not None:
                await progress(await self.counts(broadcast_id))
            if all(outcome == "retry" for outcome in outcomes):
                # Telegram is down or pacing us: wait before the same rows are tried again.
                self._failures += 1
                await wait_for_event(self._pausing, min(self.max_backoff, 0.5 * 2 ** (self._failures - 1)))
            else:
                self._failures = 0
        await self._finish(broadcast_id)
        return await self.counts(broadcast_id)

    async def _stopped(self, broadcast_id: int) -> bool:
        async with self.database.read() as session:
            broadcast = await session.get(Broadcast, broadcast_id)
            return broadcast is None or broadcast.status == BroadcastStatus.STOPPED

    async def _finish(self, broadcast_id: int) -> None:
        async with self.database.write() as session:
            broadcast = await session.get_one(Broadcast, broadcast_id)
            if broadcast.status == BroadcastStatus.SENDING:
                broadcast.status, broadcast.finished_at = BroadcastStatus.DONE, utcnow()

    async def _deliver(self, row: Delivery, broadcast: Broadcast, version: Version) -> str:
        """Send one row (`version`: its locale's) and record the outcome: "sent", "failed" or "retry"."""
        chat_id = row.chat_id
        try:
            with bulk_traffic(paid=broadcast.paid):
                try:
                    message = await send_version(self.bot, chat_id, version, broadcast.paid)
                except TelegramMigrateToChat as exc:
                    chat_id = exc.migrate_to_chat_id
                    message = await send_version(self.bot, chat_id, version, broadcast.paid)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            outcome = classify(exc)
            if outcome.verdict is Verdict.BLOCKED:
                await self._record(row, DeliveryStatus.BLOCKED, error=outcome.error)
                if self.on_blocked is not None:
                    await self.on_blocked(row.chat_id)
                return "failed"
            if outcome.verdict is Verdict.PERMANENT:
                await self._record(row, DeliveryStatus.FAILED, error=outcome.error)
                return "failed"
            if outcome.verdict is Verdict.UNEXPECTED:  # a bug or the database: the row waits, said so
                log.exception("delivery could not be sent", extra={"row": row.id})
            await self._record(
                row, DeliveryStatus.PENDING, error=outcome.error
            )  # paced, transient, moved twice
            return "retry"
        await self._record(row, DeliveryStatus.SENT, message_id=message.message_id, chat_id=chat_id)
        return "sent"

    async def _record(
        self,
        row: Delivery,
        status: DeliveryStatus,
        *,
        error: str | None = None,
        message_id: int | None = None,
        chat_id: int | None = None,
    ) -> None:
        values: dict[str, Any] = {"status": status, "last_error": error, "claimed_by": None}
        if message_id is not None:
            values["sent_message_id"] = message_id
        if chat_id is not None and chat_id != row.chat_id:
            values["chat_id"] = chat_id
        async with self.database.write() as session:
            await session.execute(update(Delivery).where(col(Delivery.id) == row.id).values(**values))


async def send_version(bot: Bot, chat_id: int, version: Version, paid: bool = False) -> Message:
    """One language version as residents get it (the preview uses this too); the first message."""
    extra: dict[str, Any] = {"allow_paid_broadcast": True} if paid else {}
    if isinstance(version, TextVersion):
        if version.keyboard:  # a poll's first question
            rows = [
                [InlineKeyboardButton(text=b.text, callback_data=b.callback_data) for b in row]
                for row in version.keyboard
            ]
            extra["reply_markup"] = InlineKeyboardMarkup(inline_keyboard=rows)
        return await bot.send_message(chat_id, version.text, **extra)
    files = version.files
    if len(files) == 1:
        send = bot.send_photo if files[0].kind == "photo" else bot.send_document
        return await send(chat_id, files[0].file_id, caption=version.caption, **extra)
    media: list[MediaUnion] = [
        (InputMediaPhoto if f.kind == "photo" else InputMediaDocument)(
            media=f.file_id, caption=version.caption if i == 0 else None
        )
        for i, f in enumerate(files)
    ]
    return (await bot.send_media_group(chat_id, media, **extra))[0]
