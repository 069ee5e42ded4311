"""A resident cannot fill the server's disk through "add information": the case's quota refuses the
file over it, in the resident's language, and keeps everything already added. (The quotas per day
and in bytes, the same file sent twice and the disk guard are in tests/unit/test_files.py.)"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlmodel import col

from bot.app import App
from bot.store.db import Database
from bot.store.models import Attachment, CaseEvent, EventKind
from tests.catalog import tr
from tests.support.driver import Telegram
from tests.support.helpers import onboard, start_adding_information, submit_case


async def test_the_case_refuses_the_21st_file_and_keeps_the_20(
    bot: App, telegram: Telegram, store: Database
) -> None:
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    await submit_case(
        anna, "pl", "📄 Wniosek", "Dokumenty, zaświadczenia", "Proszę o zaświadczenie o zamieszkaniu"
    )
    await start_adding_information(anna, "VRS-2026-000001")
    for number in range(20):
        await anna.send_photo(b"\xff\xd8\xff\xe0" + number.to_bytes(2, "big") * 64)

    await anna.send_photo(b"\xff\xd8\xff\xe0 the twenty-first")
    added = tr("pl", "Added to case {number}. Send more, or press “Done”.", number="VRS-2026-000001")
    refusal = await anna.receive_one()
    while (
        refusal.text == added
    ):  # the acknowledgements of the 20 come after a quiet moment: whenever the feeding paused
        refusal = await anna.receive_one()

    assert refusal.text == tr(
        "pl",
        "A case can hold at most {max} file; this one was not added.",
        "A case can hold at most {max} files; this one was not added.",
        n=20,
        max=20,
    )
    assert refusal.buttons == ["✅ Gotowe"]  # still adding: text can be sent, or "Done"
    async with store.read() as session:
        files = await session.scalar(select(func.count()).select_from(Attachment))
        additions = await session.scalar(
            select(func.count()).select_from(CaseEvent).where(col(CaseEvent.kind) == EventKind.MESSAGE_IN)
        )
    assert (files, additions) == (20, 20)  # the 21st left no trace; the 20 stay
    await anna.send("Jeszcze jedno zdanie")  # text still goes in
    assert (await anna.receive_one()).text == added
