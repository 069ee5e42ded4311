"""Announcements as the communications staff see them: sending in the background, one progress
message edited as it goes (at most every few seconds: the group's lane), a report at the end,
and unfinished broadcasts resumed when the bot starts."""

from __future__ import annotations

import asyncio
import logging
import time

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from sqlalchemy import select
from sqlmodel import col

from bot.aio import finish_or_cancel, wait_for_event
from bot.config import Config
from bot.services.broadcaster import Broadcaster, Counts, Paused
from bot.services.teams import TeamDirectory
from bot.store.models import Broadcast, BroadcastStatus, DeliveryStatus
from bot.telegram import single_attempt

log = logging.getLogger(__name__)

PICK_UP_EVERY = (
    30.0  # seconds between looks for broadcasts another process stored (`petent projects import --apply`)
)
PROGRESS_EVERY = 5.0  # seconds between edits of the progress message (20 a minute per group)
CLOSE_GRACE = 10.0  # seconds a shutdown waits for the batches being sent, as the outbox's drain


class Announcements:
    def __init__(
        self, broadcaster: Broadcaster, bot: Bot, i18n: I18n, config: Config, chats: TeamDirectory
    ) -> None:
        self.broadcaster = broadcaster
        self.bot = bot
        self.i18n = i18n
        self.config = config
        self.chats = chats
        self._running: dict[int, asyncio.Task[None]] = {}

    def render(self, broadcast_id: int, counts: Counts, finished: bool = False) -> str:
        with self.i18n.context(), self.i18n.use_locale(self.config.settings.admin_locale):
            title = _("📣 Announcement #{id}: done") if finished else _("📣 Announcement #{id}: sending…")
            figures = _("sent {sent} · pending {pending} · blocked {blocked} · failed {failed} · of {total}")
            return (
                title.format(id=broadcast_id)
                + "\n"
                + figures.format(
                    sent=counts[DeliveryStatus.SENT],
                    pending=counts.pending,
                    blocked=counts[DeliveryStatus.BLOCKED],
                    failed=counts[DeliveryStatus.FAILED],
                    total=counts.total,
                )
            )

    def start(self, broadcast: Broadcast) -> None:
        if broadcast.id in self._running:
            return
        task = asyncio.create_task(self._run(broadcast))
        self._running[broadcast.id] = task
        task.add_done_callback(lambda _: self._running.pop(broadcast.id, None))

    async def _run(self, broadcast: Broadcast) -> None:
        last_edit = 0.0
        shown = ""

        async def progress(counts: Counts) -> None:
            nonlocal last_edit, shown
            if time.monotonic() - last_edit < PROGRESS_EVERY:
                return
            last_edit = time.monotonic()
            shown = await self._edit(broadcast, self.render(broadcast.id, counts), shown)

        try:
            counts = await self.broadcaster.run(broadcast.id, progress)
        except Paused:
            return  # shutting down: not done, and not failed
        except Exception:
            log.exception("broadcast failed", extra={"broadcast_id": broadcast.id})
            return
        await self._edit(broadcast, self.render(broadcast.id, counts, finished=True), shown)

    async def _edit(self, broadcast: Broadcast, text: str, shown: str) -> str:
        if text == shown or broadcast.progress_message_id is None:
            return shown
        # The progress message only shows the figures: tried once, and never a reason to stop sending.
        try:
            with single_attempt():
                await self.bot.edit_message_text(
                    text, chat_id=broadcast.progress_chat_id, message_id=broadcast.progress_message_id
                )
        except TelegramAPIError as exc:
            log.warning("could not update the progress message", extra={"error": type(exc).__name__})
            return shown
        return text

    async def resume(self) -> None:
        """After a restart: this instance's rows at once, a dead sender's after its lease, go back to pending; sending goes on."""
        await self.broadcaster.resume_own()
        await self.broadcaster.recover()
        await self._start_unfinished()

    async def _start_unfinished(self) -> None:
        async with self.broadcaster.database.read() as session:
            unfinished = (
                (
                    await session.execute(
                        select(Broadcast).where(col(Broadcast.status) == BroadcastStatus.SENDING)
                    )
                )
                .scalars()
                .all()
            )
        for broadcast in unfinished:
            if broadcast.id not in self._running:
                log.info("resuming a broadcast", extra={"broadcast_id": broadcast.id})
                self.start(broadcast)

    async def pick_up(self, stopping: asyncio.Event) -> None:
        """Until `stopping`: broadcasts stored by another process (the projects' import on the
        server writes its followers' notices) are sent here too, within PICK_UP_EVERY seconds."""
        while not await wait_for_event(stopping, PICK_UP_EVERY):
            try:
                await self._start_unfinished()
            except Exception:  # the database away for a moment: the next look tries again
                log.exception("could not look for broadcasts to send")

    async def close(self) -> None:
        """On shutdown: stop sending after the batches in hand (cancelled only if they take longer
        than CLOSE_GRACE: a task cancelled amid a SQLite write can leave it open); rows this
        process still held go back to pending for the next start."""
        self.broadcaster.pause()
        await finish_or_cancel(list(self._running.values()), CLOSE_GRACE)
        await self.broadcaster.release()
