"""The municipality keeps the files: what a resident sends lands in FILES_DIR (the default,
data/files beside the bot) with its size and SHA-256 in the attachments table; a file over
Telegram's 20 MB download limit is refused at once in the resident's language, and one a clerk
sends is recorded as kept only in Telegram, with the clerks told in the topic."""

import asyncio
import hashlib
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select
from sqlmodel import col

from bot.store.db import Database
from bot.store.models import Attachment, Case
from tests.catalog import tr
from tests.support.driver import Person, Telegram
from tests.support.helpers import LABELS, PHOTO, choose, onboard

OVER_20_MB = 20 * 1024 * 1024 + 1
TOO_BIG = (
    "⚠️ The file {name} is larger than 20 MB: Telegram does not let the bot download it, so it is not in the municipality's storage "
    "and stays only in this chat. Please obtain it another way (for example in smaller parts or by e-mail)."
)
PDF = b"%PDF-1.4\n" + b"Plan sytuacyjny, ul. Wilenska 5\n" * 300


async def _attachments_when(
    store: Database, done: Callable[[list[Attachment]], object], timeout: float = 20.0
) -> list[Attachment]:
    deadline = time.monotonic() + timeout
    while True:
        async with store.read() as session:
            rows = list((await session.execute(select(Attachment).order_by(col(Attachment.id)))).scalars())
        if done(rows) or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.2)


async def test_files_land_in_the_municipality_storage_and_a_large_one_is_refused(
    bot, telegram: Telegram, store: Database, clerks: Person, tmp_path: Path
) -> None:
    labels = LABELS["pl"]
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    await anna.send(labels["new"])
    await anna.receive_one()
    await choose(anna, "⚠️ Skarga")
    await choose(anna, labels["whole"])
    await choose(anna, "Drogi, ulice i transport")
    await anna.send("Wyrwa w jezdni przy ul. Wileńskiej 5, zdjęcie i plan w załączeniu")
    await anna.receive_one()  # photos and documents, please

    await anna.send_photo(PHOTO, caption="Widok od północy")
    assert (await anna.receive_one()).text.startswith(
        tr("pl", "{count} file attached.", "{count} files attached.", 1, count=1)
    )
    await anna.send_document(PDF, "plan.pdf")
    assert (await anna.receive_one()).text.startswith(
        tr("pl", "{count} file attached.", "{count} files attached.", 2, count=2)
    )
    await anna.send_document(b"%PDF-1.4\n", "nagranie-z-kamery.pdf", size=OVER_20_MB)
    refused = await anna.receive_one()
    assert refused.text == (
        "Ten plik ma ponad 20 MB: samorząd nie może przechowywać tak dużych plików, dlatego nie został dodany. "
        "Proszę wysłać mniejszy plik lub podzielić go na części po najwyżej 20 MB."
    )
    await anna.click("✅ Gotowe")
    await anna.edited()
    await anna.receive_one()  # the location
    await anna.send(labels["skip"])
    await anna.receive_one()
    await anna.send(labels["here"])
    _, summary = await anna.receive(2)
    assert "Pliki: 2" in summary.text
    await anna.click(labels["submit"])
    await anna.edited()
    assert "Numer sprawy: VRS-2026-000001" in (await anna.receive_one()).text

    # Both files are downloaded from Telegram into FILES_DIR, with their size and SHA-256.
    photo, document = await _attachments_when(
        store, lambda rows: len(rows) == 2 and all(r.stored_at for r in rows)
    )
    files = tmp_path / "data" / "files"  # the default FILES_DIR, beside the bot
    assert (photo.storage, photo.size, photo.sha256) == (
        "local",
        len(PHOTO),
        hashlib.sha256(PHOTO).hexdigest(),
    )
    assert photo.storage_key == f"2026/VRS-2026-000001/{photo.id}.jpg"
    assert (files / photo.storage_key).read_bytes() == PHOTO
    assert (document.file_name, document.content_type, document.size) == (
        "plan.pdf",
        "application/pdf",
        len(PDF),
    )
    assert document.sha256 == hashlib.sha256(PDF).hexdigest()
    assert (files / f"2026/VRS-2026-000001/{document.id}.pdf").read_bytes() == PDF

    # The clerks still see them in Telegram, under the card.
    card, *shown = await clerks.receive(3)
    assert card.text.startswith("⚠️ VRS-2026-000001")
    assert ["photo" in m.raw for m in shown] == [True, False] and shown[1].raw["document"][
        "file_name"
    ] == "plan.pdf"

    # A clerk's file over 20 MB reaches the resident (Telegram copies it), but the bot cannot
    # download it: the record says so and the clerks are told once, in the topic, in Lithuanian.
    bot.expected_errors.append("file is too big")
    await clerks.send_document(
        b"%PDF-1.4\n", "skenuotas-atsakymas.pdf", size=OVER_20_MB, thread_id=card.thread_id
    )
    relayed = await anna.receive_one()
    assert relayed.raw["document"]["file_name"] == "skenuotas-atsakymas.pdf"
    notice = await clerks.receive_one()
    assert notice.thread_id == card.thread_id
    assert notice.text.startswith(tr("lt", TOO_BIG, name="skenuotas-atsakymas.pdf"))
    *_, large = await _attachments_when(store, lambda rows: len(rows) == 3 and rows[-1].store_error)
    assert (large.file_name, large.store_error, large.stored_at, large.size) == (
        "skenuotas-atsakymas.pdf",
        "too big",
        None,
        OVER_20_MB,
    )
    await clerks.nothing_more(1.0)
    async with store.read() as session:
        assert (await session.execute(select(Case))).scalar_one().number == "VRS-2026-000001"
