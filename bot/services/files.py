"""The municipality keeps its own copy of every photo and document of a case.

When an attachment is recorded (a resident's submission or addition, a clerk's relayed file),
a STORE_FILE row is written to the outbox in the same transaction (CaseCommands.add_files).
Its handler here asks Telegram for the file (getFile), downloads it from the Bot API's file URL
(`{TELEGRAM_API_URL}/file/bot<token>/<file_path>`) while hashing it, puts it into the store
(bot.services.storage) under `<year>/<case number>/<attachment id><.ext>`, and records the
size, SHA-256, store and key on the attachment. The card and /case still show the file from
Telegram; the record no longer needs Telegram or this bot to be read.

- getFile and the download are no messages: they use none of the sending lanes (the limiter
  paces only what puts something into a chat), and at most FILE_DOWNLOADS run at once, so the
  outbox's other slots stay free for the messages people wait for.
- 5xx, network errors and a store that cannot be reached: the row is retried with backoff.
- Telegram refuses files over 20 MB ("file is too big"): the attachment records it and the
  clerks are told once, in the case's topic, that the file stays only in Telegram. Residents
  are stopped earlier, when they send such a file (flows.common.too_big_to_keep).
- Retention: a DELETE_FILES row, written with the purge, deletes the stored copies.
- A full disk: while FILES_DIR's disk has less free space than FILES_MIN_FREE_BYTES, downloads
  wait (`DiskGuard`): the rows are retried every DISK_RECHECK seconds, the default team's group
  is alerted once, and /healthz says why it is unhealthy. Files stay in Telegram meanwhile.

- The photos of projects' updates (bot.services.projects) are kept the same way, under
  `projects/<project code>/<update id>-<n>.jpg`, recorded in the update's `photos`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import mimetypes
import os
import re
import tempfile
from collections.abc import Awaitable, Callable
from html import escape
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING

import aiohttp
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramNotFound
from aiogram.utils.i18n import gettext as _
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.services.outbox import NO_CHAT, Permanent, Retry, Sent, enqueue
from bot.services.outbox_payloads import DeleteFilesPayload, StoreFilePayload
from bot.services.storage import DOWNLOAD_PREFIX, FileStore, StorageError
from bot.store.db import Database, rowcount
from bot.store.models import Attachment, Case, OutboxMessage, Project, ProjectUpdate, utcnow

if TYPE_CHECKING:  # the case commands queue these handlers' rows: imported for types only
    from bot.services.case_notices import CaseNotices
    from bot.services.groups import ClerkTexts

log = logging.getLogger(__name__)

TOO_BIG = "too big"  # attachments.store_error when Telegram would not hand the file over (over 20 MB)
DOWNLOAD_TIMEOUT = 300  # seconds for one download (20 MB over a slow link)
FILE_DOWNLOADS = 4  # at most this many at once: the outbox's other slots stay for messages
DISK_RECHECK = 60.0  # seconds between looks at a disk found nearly full
_EXTENSION = re.compile(r"^\.[A-Za-z0-9]{1,8}$")


class _Hashing:
    """A binary destination for aiogram's download: writes to the file and hashes as it goes."""

    def __init__(self, file: IO[bytes]) -> None:
        self.file = file
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> int:
        self.sha256.update(chunk)
        self.size += len(chunk)
        return self.file.write(chunk)

    def flush(self) -> None:
        self.file.flush()


def storage_key(case: Case, attachment: Attachment, file_path: str | None) -> str:
    """`2026/VRS-2026-000042/17.jpg`: by case, so that a person (or another system) finds a
    case's files together; the extension from the sender's file name, Telegram's path or the type."""
    extension = ""
    for name in (attachment.file_name, file_path):
        suffix = PurePosixPath(name or "").suffix.lower()
        if _EXTENSION.match(suffix):
            extension = suffix
            break
    else:
        guessed = mimetypes.guess_extension(attachment.content_type or "") or ""
        extension = guessed if _EXTENSION.match(guessed) else ""
    return f"{case.year}/{case.number}/{attachment.id}{extension}"


def _content_type(attachment: Attachment, file_path: str | None) -> str:
    return (
        attachment.content_type
        or mimetypes.guess_type(attachment.file_name or "")[0]
        or mimetypes.guess_type(file_path or "")[0]
        or "application/octet-stream"
    )


class DiskGuard:
    """Is there room for more files? Free space of the store's disk against FILES_MIN_FREE_BYTES
    (0: never checked; a bucket: always room). Found short, it alerts once (`alert`, with the free
    and the required bytes) until there is room again."""

    def __init__(self, store: FileStore, min_free: int, alert: Callable[[int, int], Awaitable[None]]) -> None:
        self.store = store
        self.min_free = min_free
        self.alert = alert
        self._alerted = False

    async def problem(self) -> str | None:
        """None if downloads may go on; else why not, naming the settings."""
        if not self.min_free:
            return None
        try:
            free = await asyncio.to_thread(self.store.free_bytes)
        except OSError:
            return None  # not a disk problem to wait out: the download says what is wrong (naming FILES_DIR)
        if free is None or free >= self.min_free:
            if self._alerted:
                self._alerted = False
                log.warning("room for files again; downloads go on", extra={"free_bytes": free})
            return None
        if not self._alerted:
            self._alerted = True  # before the await: downloads that look at once alert once
            log.error(
                "the files' disk is nearly full; downloads wait",
                extra={"free_bytes": free, "min_free_bytes": self.min_free},
            )
            await self.alert(free, self.min_free)
        return f"low: {free} bytes free in FILES_DIR, FILES_MIN_FREE_BYTES is {self.min_free}; downloads wait"


class FileKeeper:
    """The outbox's handlers for STORE_FILE and DELETE_FILES."""

    def __init__(
        self,
        bot: Bot,
        database: Database,
        store: FileStore,
        stores: dict[str, FileStore],
        notices: CaseNotices,
        clerk_texts: ClerkTexts,
        guard: DiskGuard | None = None,
    ) -> None:
        self.bot = bot
        self.database = database
        self.store = store  # where new files go
        self.stores = stores  # every store files may be in, by kind
        self.notices = notices  # the clerks' notice in the case's topic
        self.clerk_texts = clerk_texts  # ClerkTexts: that notice in ADMIN_LOCALE
        self.guard = guard

    async def keep(self, row: OutboxMessage) -> Sent:
        payload = StoreFilePayload.of(row)
        if payload.project_update is not None and payload.index is not None:
            return await self._keep_project_photo(payload.project_update, payload.index)
        async with self.database.read() as session:
            attachment = await session.get(Attachment, payload.attachment)
            case = await session.get(Case, attachment.case_id) if attachment is not None else None
        if attachment is None or case is None or case.purged_at is not None:
            return Sent()  # the retention period ended meanwhile: nothing to keep
        if attachment.stored_at is not None:
            return Sent()  # kept already (a row sent again after a crash)
        if self.guard is not None and (problem := await self.guard.problem()) is not None:
            raise Retry(problem, DISK_RECHECK)  # the file waits in Telegram until there is room
        try:
            file = await self.bot.get_file(attachment.file_id)
        except (TelegramBadRequest, TelegramNotFound) as exc:
            too_big = "too big" in exc.message.lower()
            return Sent(record=self._not_kept(attachment, TOO_BIG if too_big else exc.message))
        if not file.file_path:
            return Sent(
                record=self._not_kept(attachment, TOO_BIG)
            )  # Telegram gives no path for files it will not serve
        key = storage_key(case, attachment, file.file_path)
        size, digest = await self._download_and_put(
            file.file_path, key, _content_type(attachment, file.file_path), attachment.file_name
        )
        log.info(
            "file kept",
            extra={
                "attachment": attachment.id,
                "case_id": case.id,
                "bytes": size,
                "storage": self.store.kind,
            },
        )

        async def record(session: AsyncSession) -> None:
            stored = await session.execute(
                update(Attachment)
                .where(col(Attachment.id) == attachment.id)
                .values(
                    storage=self.store.kind,
                    storage_key=key,
                    size=size,
                    sha256=digest,
                    stored_at=utcnow(),
                    store_error=None,
                    content_type=_content_type(attachment, file.file_path)[:128],
                )
            )
            if not rowcount(stored):  # purged while downloading: the copy goes too
                enqueue(
                    session,
                    DeleteFilesPayload(files=[(self.store.kind, key)]),
                    NO_CHAT,
                    key=f"file:purge:{case.id}",
                    case_id=case.id,
                )

        return Sent(record=record)

    async def _keep_project_photo(self, update_id: int, index: int) -> Sent:
        """A photo of a project's update (bot.services.projects), kept under
        `projects/<project code>/<update id>-<n>.jpg`; what was kept is recorded in the update's photos."""
        async with self.database.read() as session:
            update_row = await session.get(ProjectUpdate, update_id)
            project = await session.get(Project, update_row.project_id) if update_row is not None else None
        if (
            update_row is None
            or project is None
            or index >= len(update_row.photos)
            or update_row.photos[index].get("stored_at")
        ):
            return Sent()  # gone, or kept already (a row sent again after a crash)
        photo = update_row.photos[index]
        try:
            file = await self.bot.get_file(photo["file_id"])
        except (TelegramBadRequest, TelegramNotFound) as exc:
            return Sent(
                record=self._record_photo(
                    update_id,
                    index,
                    {"store_error": (TOO_BIG if "too big" in exc.message.lower() else exc.message)[:256]},
                )
            )
        if not file.file_path:
            return Sent(record=self._record_photo(update_id, index, {"store_error": TOO_BIG}))
        suffix = PurePosixPath(file.file_path).suffix.lower()
        key = f"projects/{_safe(project.external_id)}/{update_id}-{index + 1}{suffix if _EXTENSION.match(suffix) else '.jpg'}"
        content_type = mimetypes.guess_type(file.file_path)[0] or "image/jpeg"
        size, digest = await self._download_and_put(file.file_path, key, content_type, None)
        log.info("file kept", extra={"project_update": update_id, "bytes": size, "storage": self.store.kind})
        kept = {
            "storage": self.store.kind,
            "storage_key": key,
            "size": size,
            "sha256": digest,
            "stored_at": utcnow().isoformat(),
        }
        return Sent(record=self._record_photo(update_id, index, kept))

    @staticmethod
    def _record_photo(
        update_id: int, index: int, values: dict[str, object]
    ) -> Callable[[AsyncSession], Awaitable[None]]:
        async def record(session: AsyncSession) -> None:
            update_row = await session.get(ProjectUpdate, update_id, with_for_update=True)
            if update_row is not None and index < len(update_row.photos):
                photos = [dict(p) for p in update_row.photos]
                photos[index].update(values)
                update_row.photos = photos
                session.add(update_row)

        return record

    async def _download_and_put(
        self, file_path: str, key: str, content_type: str, file_name: str | None
    ) -> tuple[int, str]:
        try:
            staging = self.store.staging()
            handle = tempfile.NamedTemporaryFile(dir=staging, prefix=DOWNLOAD_PREFIX, delete=False)  # noqa: SIM115  # closed below, moved by the store
        except OSError as exc:
            raise self._later(f"FILES_DIR: cannot write a download: {exc.strerror or exc}") from None
        path = Path(handle.name)
        try:
            with handle:
                destination = _Hashing(handle)
                try:
                    await self.bot.download_file(file_path, destination, timeout=DOWNLOAD_TIMEOUT, seek=False)  # type: ignore[arg-type]
                except aiohttp.ClientResponseError as exc:
                    if exc.status in (400, 403):
                        raise Permanent(f"download refused: {exc.status}") from None
                    raise Retry(
                        f"download failed: HTTP {exc.status}"
                    ) from None  # 404 (the path expired), 5xx: getFile again later
                except (aiohttp.ClientError, TimeoutError) as exc:
                    raise Retry(f"download failed: {type(exc).__name__}") from None
                handle.flush()
                os.fsync(handle.fileno())
            try:
                await self.store.put(key, path, content_type, file_name)
            except StorageError as exc:
                raise self._later(str(exc)) from None
            return destination.size, destination.sha256.hexdigest()
        finally:
            path.unlink(missing_ok=True)  # noqa: ASYNC240  # a local temporary file: microseconds

    @staticmethod
    def _later(message: str) -> Retry:
        log.warning("a file could not be stored; will retry", extra={"error": message})
        return Retry(message)

    def _not_kept(self, attachment: Attachment, error: str) -> Callable[[AsyncSession], Awaitable[None]]:
        """The file stays only in Telegram: recorded, and the clerks told once in the case's topic."""
        log.warning("a file cannot be kept", extra={"attachment": attachment.id, "error": error})

        async def record(session: AsyncSession) -> None:
            await session.execute(
                update(Attachment).where(col(Attachment.id) == attachment.id).values(store_error=error[:256])
            )
            case = await session.get(Case, attachment.case_id)
            if case is not None and case.purged_at is None:
                self.notices.post_in(
                    session, case, self.clerk_texts.notice(lambda: _not_kept_text(attachment, error))
                )

        return record

    async def delete(self, row: OutboxMessage) -> Sent:
        for kind, key in DeleteFilesPayload.of(row).files:
            store = self.stores.get(kind)
            if store is None:
                raise Permanent(
                    f"the file {key} is in {kind} storage, which is no longer configured: delete it there by hand"
                )
            try:
                await store.delete(key)
            except StorageError as exc:
                raise self._later(str(exc)) from None
        return Sent()


def _safe(code: str) -> str:
    """A project's code as a path segment (its "/" would make a folder)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", code)


def _not_kept_text(attachment: Attachment, error: str) -> str:
    name = (
        escape(attachment.file_name)
        if attachment.file_name
        else _("(photo)")
        if attachment.kind == "photo"
        else _("(document)")
    )
    if error == TOO_BIG:
        return _(
            "⚠️ The file {name} is larger than 20 MB: Telegram does not let the bot download it, so it is not in the municipality's storage "
            "and stays only in this chat. Please obtain it another way (for example in smaller parts or by e-mail)."
        ).format(name=name)
    return _(
        "⚠️ The file {name} could not be saved in the municipality's storage ({error}); it stays only in this chat."
    ).format(name=name, error=escape(error))


async def stored_files(session: AsyncSession, case_ids: list[int]) -> list[tuple[int, str, str]]:
    """(case id, store, key) of the stored copies of these cases' files."""
    query = select(col(Attachment.case_id), col(Attachment.storage), col(Attachment.storage_key)).where(
        col(Attachment.case_id).in_(case_ids), col(Attachment.storage_key).is_not(None)
    )
    return [
        (case_id, str(storage), str(key)) for case_id, storage, key in (await session.execute(query)).all()
    ]


def queue_deletions(session: AsyncSession, files: list[tuple[int, str, str]]) -> None:
    """One DELETE_FILES row per case for its stored copies (in the purge's transaction)."""
    by_case: dict[int, list[tuple[str, str]]] = {}
    for case_id, storage, key in files:
        by_case.setdefault(case_id, []).append((storage, key))
    for case_id, keys in by_case.items():
        enqueue(
            session, DeleteFilesPayload(files=keys), NO_CHAT, key=f"file:purge:{case_id}", case_id=case_id
        )
