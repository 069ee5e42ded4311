"""The municipality's copies of files: the two stores (a directory; S3 against a local moto
server) and the outbox's download from the emulator over HTTP, with the size and SHA-256
recorded, the 20 MB refusal told to the clerks, and retention deleting the copies."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import col

from bot.app import App
from bot.sandbox.emulator import Emulator
from bot.services.case_commands import AlreadyAdded, FileLimit, FileQuotaReached
from bot.services.cases import AttachmentDraft, CaseDraft
from bot.services.outbox import NO_CHAT, Kind, Outbox, Pool, Sent, enqueue
from bot.services.outbox_payloads import MessagePayload, StoreFilePayload
from bot.services.storage import LocalFileStore, S3FileStore, StorageError, check_store, file_stores
from bot.settings import ConfigError
from bot.store.db import Database
from bot.store.models import Attachment, Case, CaseEvent, CaseStatus, EventKind, OutboxMessage, Resident
from tests import factories
from tests.catalog import tr
from tests.conftest import ADMIN_CHAT_ID
from tests.factories import services

PHOTO = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40  # a JPEG's first bytes, then some
RECEIVED = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _staged(store: LocalFileStore | S3FileStore, data: bytes) -> Path:
    path = store.staging() / f"incoming-{hashlib.sha256(data).hexdigest()[:8]}"
    path.write_bytes(data)
    return path


# --- the local directory ---------------------------------------------------------------------


async def test_local_store_keeps_reads_and_deletes(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path / "files")
    await store.check()
    source = _staged(store, PHOTO)
    await store.put("2026/VRS-2026-000001/1.jpg", source, "image/jpeg")
    assert not source.exists()  # moved, not copied: one write
    assert (tmp_path / "files/2026/VRS-2026-000001/1.jpg").read_bytes() == PHOTO
    assert await store.get("2026/VRS-2026-000001/1.jpg") == PHOTO
    assert store.where("2026/VRS-2026-000001/1.jpg") == str(tmp_path / "files/2026/VRS-2026-000001/1.jpg")
    await store.delete("2026/VRS-2026-000001/1.jpg")
    await store.delete("2026/VRS-2026-000001/1.jpg")  # twice: nothing to do
    assert not (tmp_path / "files/2026").exists()  # the emptied case and year directories go too
    assert (tmp_path / "files").is_dir()


async def test_local_store_refuses_keys_outside_it(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path / "files")
    with pytest.raises(ValueError):
        await store.put("../escape.jpg", _staged(store, b"x"), "image/jpeg")
    with pytest.raises(ValueError):
        await store.delete("/etc/passwd")


async def test_an_unwritable_files_dir_stops_start_up_naming_the_setting(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    with pytest.raises(ConfigError, match=r"^FILES_DIR: cannot write to .*a-file"):
        await check_store(LocalFileStore(tmp_path / "a-file" / "files"))


# --- S3, against a local moto server ---------------------------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server_module = pytest.importorskip("moto.server")
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint: str) -> S3FileStore:
    store = S3FileStore(s3_endpoint, "petent-files", "test-key", "test-secret")
    if not store.client.bucket_exists("petent-files"):
        store.client.make_bucket("petent-files")
    return store


async def test_s3_store_keeps_reads_and_deletes(s3: S3FileStore) -> None:
    await s3.check()
    source = _staged(s3, PHOTO)
    await s3.put("2026/VRS-2026-000001/1.jpg", source, "image/jpeg")
    assert not source.exists()
    stat = s3.client.stat_object("petent-files", "2026/VRS-2026-000001/1.jpg")
    assert (stat.size, stat.content_type) == (len(PHOTO), "image/jpeg")
    assert await s3.get("2026/VRS-2026-000001/1.jpg") == PHOTO
    assert s3.where("2026/VRS-2026-000001/1.jpg") == "s3://petent-files/2026/VRS-2026-000001/1.jpg"
    await s3.delete("2026/VRS-2026-000001/1.jpg")
    await s3.delete("2026/VRS-2026-000001/1.jpg")
    assert [o.object_name for o in s3.client.list_objects("petent-files", recursive=True)] == []


async def test_s3_objects_are_downloaded_not_shown_under_their_name(s3: S3FileStore) -> None:
    """A browser opening an object's URL saves it (a sender's HTML or SVG does not run) under its
    name: ASCII for old clients, the exact name in UTF-8 (RFC 6266/5987); unencrypted by default."""
    await s3.put(
        "2026/VRS-2026-000001/1.html",
        _staged(s3, b"<script>alert(1)</script>"),
        "text/html",
        'Zaświadczenie Łukasza "pilne" %41.html',
    )
    await s3.put(
        "2026/VRS-2026-000001/2.jpg", _staged(s3, PHOTO), "image/jpeg"
    )  # a photo has no name: the key's
    page, photo = (
        s3.client.stat_object("petent-files", f"2026/VRS-2026-000001/{name}").metadata
        for name in ("1.html", "2.jpg")
    )
    assert page is not None and photo is not None
    assert page["Content-Disposition"] == (
        "attachment; filename=\"Zaswiadczenie _ukasza _pilne_ _41.html\"; filename*=UTF-8''Za%C5%9Bwiadczenie%20%C5%81ukasza%20%22pilne%22%20%2541.html"
    )
    assert (page["Content-Type"], photo["Content-Disposition"]) == (
        "text/html",
        "attachment; filename=\"2.jpg\"; filename*=UTF-8''2.jpg",
    )
    assert "x-amz-server-side-encryption" not in page


@pytest.mark.parametrize(
    ("setting", "headers"),
    [
        ("AES256", {"x-amz-server-side-encryption": "AES256"}),
        (
            "alias/petent-files",
            {
                "x-amz-server-side-encryption": "aws:kms",
                "x-amz-server-side-encryption-aws-kms-key-id": "alias/petent-files",
            },
        ),
    ],
)
async def test_s3_objects_are_encrypted_as_files_s3_sse_says(
    s3_endpoint: str, s3: S3FileStore, setting: str, headers: dict[str, str]
) -> None:
    store = S3FileStore(s3_endpoint, "petent-files", "test-key", "test-secret", sse=setting)
    await store.put("2026/VRS-2026-000001/1.jpg", _staged(store, PHOTO), "image/jpeg")
    stat = store.client.stat_object("petent-files", "2026/VRS-2026-000001/1.jpg")
    assert stat.metadata is not None
    assert {name: stat.metadata.get(name) for name in headers} == headers


async def test_a_file_kept_in_s3_carries_its_name_and_the_encryption(
    database: Database, emulator: Emulator, s3_endpoint: str, s3: S3FileStore
) -> None:
    """Through the outbox, as the bot keeps a file, with FILES_S3_SSE from the settings."""
    emulator.add_group("Clerks", forum=True, chat_id=ADMIN_CHAT_ID)
    async with database.write() as session:
        session.add(Resident(id=501, locale="pl", display_name="Anna"))
    s3_settings = {
        "files_s3_bucket": "petent-files",
        "files_s3_access_key": "test-key",
        "files_s3_secret_key": "test-secret",
    }
    wired = services(
        database, emulator.url, files_s3_endpoint=s3_endpoint, files_s3_sse="aes256", **s3_settings
    )
    try:
        svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
        svg_id, document = emulator.store_file(svg, "plan sklypo.svg", "image/svg+xml", "document")
        draft = AttachmentDraft(
            "document",
            svg_id,
            document.unique_id,
            file_name="Prašymas dėl sklypo.svg",
            mime_type="image/svg+xml",
            file_size=len(svg),
        )
        await wired.commands.open(_draft(draft), RECEIVED)
        await wired.outbox.send_due_now()
    finally:
        await wired.bot.session.close()
    (attachment,) = await _attachments(database)
    assert attachment.storage == "s3" and attachment.storage_key is not None
    stat = s3.client.stat_object("petent-files", attachment.storage_key)
    assert stat.metadata is not None
    assert (
        stat.metadata["Content-Disposition"]
        == "attachment; filename=\"Prasymas del sklypo.svg\"; filename*=UTF-8''Pra%C5%A1ymas%20d%C4%97l%20sklypo.svg"
    )
    assert stat.metadata["x-amz-server-side-encryption"] == "AES256"


async def test_s3_problems_name_the_setting(s3_endpoint: str) -> None:
    with pytest.raises(
        ConfigError, match="^FILES_S3_BUCKET: there is no bucket no-such-bucket at http://127.0.0.1"
    ):
        await check_store(S3FileStore(s3_endpoint, "no-such-bucket", "k", "s"))
    unreachable = S3FileStore("http://127.0.0.1:9", "petent-files", "k", "s")  # nothing listens on port 9
    with pytest.raises(
        StorageError, match=r"^FILES_S3_ENDPOINT: storing 1\.jpg: cannot reach http://127\.0\.0\.1:9"
    ):
        await unreachable.put("1.jpg", _staged(unreachable, b"x"), "image/jpeg")


async def test_s3_settings_are_checked_at_start_up(database: Database) -> None:
    with pytest.raises(ConfigError, match="^FILES_S3_BUCKET: must be set with FILES_S3_ENDPOINT"):
        factories.test_config(database, files_s3_endpoint="http://127.0.0.1:9000")
    with pytest.raises(ConfigError, match="^FILES_S3_SECRET_KEY: must be set with FILES_S3_ENDPOINT"):
        factories.test_config(
            database,
            files_s3_endpoint="http://127.0.0.1:9000",
            files_s3_bucket="petent-files",
            files_s3_access_key="k",
        )
    with pytest.raises(ConfigError, match="^FILES_S3_ENDPOINT: must be the storage's http"):
        factories.test_config(database, files_s3_endpoint="http://127.0.0.1:9000/petent-files")
    with pytest.raises(ConfigError, match="^FILES_S3_SSE: only for a bucket: set FILES_S3_ENDPOINT too"):
        factories.test_config(database, files_s3_sse="AES256")
    s3 = {
        "files_s3_endpoint": "http://127.0.0.1:9000",
        "files_s3_bucket": "petent-files",
        "files_s3_access_key": "k",
        "files_s3_secret_key": "s",
    }
    with pytest.raises(ConfigError, match="^FILES_S3_SSE: must be AES256 or a KMS key id"):
        factories.test_config(database, files_s3_sse="AES 256", **s3)
    kms = factories.test_config(
        database, files_s3_sse=" arn:aws:kms:eu-central-1:111122223333:key/1234abcd-12ab ", **s3
    ).settings
    assert kms.files_s3_sse == "arn:aws:kms:eu-central-1:111122223333:key/1234abcd-12ab"
    store, _ = file_stores(kms)
    assert (
        isinstance(store, S3FileStore)
        and store.sse is not None
        and store.sse.headers()["X-Amz-Server-Side-Encryption"] == "aws:kms"
    )
    with pytest.raises(ConfigError, match="^FILES_S3_BUCKET: must be a bucket name"):
        factories.test_config(
            database,
            files_s3_endpoint="http://127.0.0.1:9000",
            files_s3_bucket="Petent_Files",
            files_s3_access_key="k",
            files_s3_secret_key="s",
        )


# --- the download, through the outbox, from the emulator --------------------------------------


@pytest.fixture
async def wired(database: Database, emulator: Emulator, tmp_path: Path) -> AsyncIterator[object]:
    emulator.add_group("Clerks", forum=True, chat_id=ADMIN_CHAT_ID)
    async with database.write() as session:
        session.add(Resident(id=501, locale="pl", display_name="Anna"))
    wired = services(database, emulator.url, files_dir=tmp_path / "files")
    yield wired
    await wired.bot.session.close()


def _draft(*attachments: AttachmentDraft) -> CaseDraft:
    return CaseDraft(
        resident_id=501,
        locale="pl",
        kind="request",
        category_id="roads",
        description="Dziura w drodze",
        attachments=attachments,
    )


async def _attachments(database: Database) -> list[Attachment]:
    async with database.read() as session:
        return list((await session.execute(select(Attachment).order_by(col(Attachment.id)))).scalars())


async def test_files_are_downloaded_into_the_store_with_size_and_sha256(
    wired, database: Database, emulator: Emulator, tmp_path: Path
) -> None:
    photo_id, photo = emulator.store_file(PHOTO, None, None, "photo")
    pdf = b"%PDF-1.4 plan of the street\n" * 100
    pdf_id, document = emulator.store_file(pdf, "plan ulicy.pdf", "application/pdf", "document")
    case = (
        await wired.commands.open(
            _draft(
                AttachmentDraft("photo", photo_id, photo.unique_id, file_size=len(PHOTO)),
                AttachmentDraft(
                    "document",
                    pdf_id,
                    document.unique_id,
                    file_name="plan ulicy.pdf",
                    mime_type="application/pdf",
                    file_size=len(pdf),
                ),
            ),
            RECEIVED,
        )
    ).case
    await wired.outbox.send_due_now()

    first, second = await _attachments(database)
    assert (first.size, first.sha256, first.storage, first.content_type) == (
        len(PHOTO),
        hashlib.sha256(PHOTO).hexdigest(),
        "local",
        "image/jpeg",
    )
    assert (
        first.storage_key == f"2026/{case.number}/{first.id}.jpg"
        and first.stored_at is not None
        and first.store_error is None
    )
    assert (tmp_path / "files" / first.storage_key).read_bytes() == PHOTO
    assert (second.size, second.sha256, second.file_name) == (
        len(pdf),
        hashlib.sha256(pdf).hexdigest(),
        "plan ulicy.pdf",
    )
    assert second.storage_key == f"2026/{case.number}/{second.id}.pdf"
    assert (tmp_path / "files" / second.storage_key).read_bytes() == pdf
    assert not list((tmp_path / "files" / ".incoming").iterdir())  # no download left half-way
    downloads = [r for r in emulator.requests if r["method"] == "getFile"]
    assert len(downloads) == 2 and all(r["status"] == 200 for r in downloads)
    # The card and the files still went to the clerks from Telegram.
    card, photo_post, document_post = [
        m for m in emulator.chats[ADMIN_CHAT_ID].messages.values() if "forum_topic_created" not in m
    ]
    assert card["text"].splitlines()[0] == f"📄 {case.number} · Prašymas"
    assert ([p["file_id"] for p in photo_post["photo"]], document_post["document"]["file_id"]) == (
        [photo_id],
        pdf_id,
    )  # re-sent by file_id
    assert {m.get("message_thread_id") for m in (photo_post, document_post)} == {
        card["message_thread_id"]
    }  # in the case's topic
    # /mydata tells the resident what the municipality keeps.
    exported = (await wired.rights.export(501, RECEIVED))["cases"][0]["files"]
    assert [(f["file_name"], f["size"], f["sha256"], f["kept_by_municipality"]) for f in exported] == [
        (None, len(PHOTO), hashlib.sha256(PHOTO).hexdigest(), True),
        ("plan ulicy.pdf", len(pdf), hashlib.sha256(pdf).hexdigest(), True),
    ]
    with wired.i18n.context(), wired.i18n.use_locale("pl"):
        assert "Dokument: — · kopię przechowuje samorząd" in wired.rights.readable(
            await wired.rights.export(501, RECEIVED)
        )


async def test_a_file_over_20_mb_is_recorded_and_the_clerks_are_told_once(
    wired, database: Database, emulator: Emulator, tmp_path: Path
) -> None:
    big_id, big = emulator.store_file(
        b"\0" * (20 * 1024 * 1024 + 1), "nagranie.pdf", "application/pdf", "document"
    )
    await wired.commands.open(
        _draft(
            AttachmentDraft(
                "document", big_id, big.unique_id, file_name="nagranie.pdf", file_size=20 * 1024 * 1024 + 1
            )
        ),
        RECEIVED,
    )
    await wired.outbox.send_due_now()

    (attachment,) = await _attachments(database)
    assert (attachment.store_error, attachment.stored_at, attachment.sha256) == ("too big", None, None)
    refused = [r for r in emulator.requests if r["method"] == "getFile"]
    assert [(r["status"], r["error"]) for r in refused] == [(400, "Bad Request: file is too big")]
    notices = [
        m.get("text", "")
        for m in emulator.chats[ADMIN_CHAT_ID].messages.values()
        if "nagranie.pdf" in m.get("text", "")
    ]
    assert len(notices) == 1 and "20 MB" in notices[0]  # in the clerks' language (ADMIN_LOCALE)
    assert not (tmp_path / "files" / "2026").exists()


async def test_a_storage_outage_is_retried_until_the_file_is_kept(
    wired, database: Database, emulator: Emulator, tmp_path: Path
) -> None:
    photo_id, photo = emulator.store_file(PHOTO, None, None, "photo")
    (tmp_path / "files").write_text("the disk is not mounted")  # FILES_DIR is unusable for now
    await wired.commands.open(_draft(AttachmentDraft("photo", photo_id, photo.unique_id)), RECEIVED)
    await wired.outbox.send_due_now()
    async with database.read() as session:
        row = (
            await session.execute(select(OutboxMessage).where(col(OutboxMessage.kind) == "store_file"))
        ).scalar_one()
    assert (
        row.status == "pending"
        and row.last_error is not None
        and row.last_error.startswith("FILES_DIR: cannot write")
    )
    (tmp_path / "files").unlink()  # mounted again
    async with database.write() as session:
        stored_row = await session.get(OutboxMessage, row.id)
        assert stored_row is not None
        stored_row.due_at = None
    await wired.outbox.send_due_now()
    (attachment,) = await _attachments(database)
    assert attachment.sha256 == hashlib.sha256(PHOTO).hexdigest()


async def test_retention_deletes_the_stored_copies(
    wired, database: Database, emulator: Emulator, tmp_path: Path
) -> None:
    photo_id, photo = emulator.store_file(PHOTO, None, None, "photo")
    case = (
        await wired.commands.open(_draft(AttachmentDraft("photo", photo_id, photo.unique_id)), RECEIVED)
    ).case
    await wired.outbox.send_due_now()
    (attachment,) = await _attachments(database)
    assert attachment.storage_key is not None
    kept = tmp_path / "files" / attachment.storage_key
    assert kept.exists()

    async with database.write() as session:
        stored = await session.get(Case, case.id)
        assert stored is not None
        stored.status, stored.closed_at = CaseStatus.ANSWERED, RECEIVED
    purged = await wired.rights.purge_expired(RECEIVED + timedelta(days=6 * 366))
    assert purged.files == 1
    await wired.outbox.send_due_now()
    assert not kept.exists() and not (tmp_path / "files" / "2026").exists()
    assert await _attachments(database) == []


async def test_downloads_take_a_few_of_the_outbox_slots_and_messages_pass_them(database: Database) -> None:
    outbox = Outbox(
        database,
        "test",
        concurrency=8,
        pools=[Pool(frozenset({Kind.STORE_FILE}), concurrency=2, max_backoff=30)],
    )
    release, running, peak, sent = asyncio.Event(), [0], [0], []

    async def download(row: OutboxMessage) -> Sent:
        running[0] += 1
        peak[0] = max(peak[0], running[0])
        await release.wait()
        running[0] -= 1
        return Sent()

    async def message(row: OutboxMessage) -> Sent:
        sent.append(row.id)
        return Sent()

    outbox.handle(Kind.STORE_FILE, download)
    outbox.handle(Kind.MESSAGE, message)
    async with database.write() as session:
        for i in range(10):
            enqueue(session, StoreFilePayload(attachment=i), NO_CHAT, key=f"file:{i}")
        enqueue(session, MessagePayload(text="x"), 501, key="r:501")
    task = asyncio.create_task(outbox.run())
    try:
        for _ in range(100):
            if sent and running[0] == 2:
                break
            await asyncio.sleep(0.05)
        assert sent and running[0] == 2  # the message went at once, beside two downloads, not behind ten
        release.set()
        for _ in range(200):
            async with database.read() as session:
                left = (
                    (await session.execute(select(OutboxMessage).where(col(OutboxMessage.status) != "sent")))
                    .scalars()
                    .all()
                )
            if not left:
                break
            await asyncio.sleep(0.05)
        assert not left and peak[0] == 2
    finally:
        task.cancel()


# --- what a resident may send, and room on the disk --------------------------------------------


async def test_the_same_file_sent_again_is_kept_once(wired, database: Database, emulator: Emulator) -> None:
    pdf = b"%PDF-1.4 a large scan\n" * 1000
    pdf_id, document = emulator.store_file(pdf, "skan.pdf", "application/pdf", "document")
    scan = AttachmentDraft(
        "document",
        pdf_id,
        document.unique_id,
        file_name="skan.pdf",
        mime_type="application/pdf",
        file_size=len(pdf),
    )
    case = (await wired.commands.open(_draft(), RECEIVED)).case
    await wired.commands.add_information(case.id, 501, None, (scan,), resident_message_id=10)
    with pytest.raises(AlreadyAdded):  # re-sent by its file id: nothing new, nothing recorded
        await wired.commands.add_information(case.id, 501, None, (scan,), resident_message_id=11)
    await wired.commands.add_information(
        case.id, 501, "Jeszcze raz, z opisem", (scan, scan), resident_message_id=12
    )  # the text goes in, the file not again
    await wired.outbox.send_due_now()

    (kept,) = await _attachments(database)
    assert (kept.file_unique_id, kept.size, kept.sha256) == (
        document.unique_id,
        len(pdf),
        hashlib.sha256(pdf).hexdigest(),
    )
    assert [r["params"]["file_id"] for r in emulator.requests if r["method"] == "getFile"] == [
        pdf_id
    ]  # downloaded once
    async with database.read() as session:
        texts = [
            e.text
            for e in (
                await session.execute(
                    select(CaseEvent)
                    .where(col(CaseEvent.kind) == EventKind.MESSAGE_IN)
                    .order_by(col(CaseEvent.id))
                )
            ).scalars()
        ]
    assert texts == [None, "Jeszcze raz, z opisem"]


async def test_the_files_quotas_per_case_and_per_day_refuse_what_goes_over(
    database: Database, emulator: Emulator, tmp_path: Path
) -> None:
    async with database.write() as session:
        session.add(Resident(id=501, locale="pl", display_name="Anna"))
    wired = services(
        database,
        emulator.url,
        files_dir=tmp_path / "files",
        files_per_resident_day_max=3,
        file_bytes_per_case_max="1KiB",
    )
    try:

        def photo(number: int, size: int = 100) -> AttachmentDraft:
            return AttachmentDraft("photo", f"photo-{number}", f"unique-{number}", file_size=size)

        first = (await wired.commands.submit(_draft(photo(1), photo(2)), RECEIVED, update_id=1)).case
        second = (await wired.commands.submit(_draft(), RECEIVED, update_id=2)).case
        with pytest.raises(FileQuotaReached) as bytes_over:
            await wired.commands.add_information(
                second.id, 501, "Skan", (photo(3, size=2000),), resident_message_id=10
            )
        assert (bytes_over.value.limit, bytes_over.value.maximum) == (FileLimit.CASE_BYTES, 1024)
        await wired.commands.add_information(
            second.id, 501, None, (photo(4),), resident_message_id=11
        )  # the day's third file
        with pytest.raises(FileQuotaReached) as day_over:
            await wired.commands.add_information(
                first.id, 501, "I jeszcze to", (photo(5),), resident_message_id=12
            )
        assert (day_over.value.limit, day_over.value.maximum) == (FileLimit.DAY_FILES, 3)
        with pytest.raises(FileQuotaReached):  # the intake asks before a file joins its draft
            await wired.commands.check_files(501, (photo(6),))
        with pytest.raises(AlreadyAdded):
            await wired.commands.check_files(501, (photo(7), photo(7)))
    finally:
        await wired.bot.session.close()
    async with database.read() as session:
        events = (
            (await session.execute(select(CaseEvent).where(col(CaseEvent.kind) == EventKind.MESSAGE_IN)))
            .scalars()
            .all()
        )
    assert {a.file_unique_id for a in await _attachments(database)} == {"unique-1", "unique-2", "unique-4"}
    assert [e.text for e in events] == [None]  # the refused additions left nothing, not even their text


@pytest.fixture
def nearly_full(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """FILES_DIR's disk as the probe sees it: 10 MiB free (the default minimum is 1 GiB); change free[0] to make room."""
    free = [10 * 2**20]
    monkeypatch.setattr(LocalFileStore, "free_bytes", lambda self: free[0])
    return free


async def test_a_nearly_full_disk_stops_downloads_and_alerts_the_clerks_once(
    wired, database: Database, emulator: Emulator, nearly_full: list[int]
) -> None:
    for _ in range(2):
        photo_id, photo = emulator.store_file(PHOTO, None, None, "photo")
        await wired.commands.open(
            _draft(AttachmentDraft("photo", photo_id, photo.unique_id, file_size=len(PHOTO))), RECEIVED
        )
    await wired.outbox.send_due_now()

    assert [r for r in emulator.requests if r["method"] == "getFile"] == []  # nothing downloaded
    assert all(
        a.stored_at is None and a.store_error is None for a in await _attachments(database)
    )  # the files wait in Telegram
    async with database.read() as session:
        rows = (
            (await session.execute(select(OutboxMessage).where(col(OutboxMessage.kind) == "store_file")))
            .scalars()
            .all()
        )
    assert [(row.status, row.last_error) for row in rows] == [
        (
            "pending",
            "low: 10485760 bytes free in FILES_DIR, FILES_MIN_FREE_BYTES is 1073741824; downloads wait",
        )
    ] * 2
    alert = tr(
        "lt",
        "⚠️ The disk where the municipality keeps the files of cases has only {free} free (the minimum is {minimum}). "
        "New files are not downloaded until there is room: please free space or enlarge the disk. They are kept in Telegram meanwhile.",
        free="10 MB",
        minimum="1 GB",
    )
    alerts = [m for m in emulator.chats[ADMIN_CHAT_ID].messages.values() if m.get("text", "").startswith("⚠️")]
    assert [m["text"] for m in alerts] == [alert] and "message_thread_id" not in alerts[
        0
    ]  # once, in the default team's group

    nearly_full[0] = 5 * 2**30  # room again
    async with database.write() as session:
        for row in rows:
            stored_row = await session.get(OutboxMessage, row.id)
            assert stored_row is not None
            stored_row.due_at = None  # as if the minute passed
    await wired.outbox.send_due_now()
    assert all(a.sha256 == hashlib.sha256(PHOTO).hexdigest() for a in await _attachments(database))


async def test_healthz_is_unhealthy_while_the_files_disk_is_nearly_full(
    database: Database, emulator: Emulator, tmp_path: Path, nearly_full: list[int]
) -> None:

    from bot.app import build_app
    from tests.inprocess.conftest import routers_given_back

    with routers_given_back():  # build_app attaches the flows' routers: given back for the next test's app
        app = build_app(factories.test_config(database, emulator.url, files_dir=tmp_path / "files"))
        await _healthz_follows_the_disk(app, nearly_full)


async def _healthz_follows_the_disk(app: App, nearly_full: list[int]) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from bot.web import build_ops_app

    try:
        async with TestClient(TestServer(build_ops_app(app))) as client:
            response = await client.get("/healthz")
            body = await response.json()
            assert response.status == 503 and body["status"] == "unavailable"
            assert (
                body["files"]
                == "low: 10485760 bytes free in FILES_DIR, FILES_MIN_FREE_BYTES is 1073741824; downloads wait"
            )
            assert (body["database"], body["telegram"]) == ("ok", "ok")  # the disk alone makes it unhealthy
            nearly_full[0] = 5 * 2**30
            response = await client.get("/healthz")
            assert response.status == 200 and (await response.json())["files"] == "ok"
    finally:
        await app.close()
