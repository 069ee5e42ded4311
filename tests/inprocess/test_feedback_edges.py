"""Satisfaction declined in Lithuanian and the quality report in the clerks' group, in process.
(Moved from tests/e2e/test_feedback.py, which keeps the weekly report on its day: the schedule.)"""

import io

import httpx
from openpyxl import load_workbook
from sqlalchemy import text

from bot.sandbox.control import control_headers
from bot.sandbox.emulator import Emulator
from bot.store.db import Database
from tests.catalog import SURVEY, tr
from tests.conftest import ADMIN_CHAT_ID
from tests.support.driver import Person, Telegram
from tests.support.helpers import onboard, submit_case

REPORT = "<b>Quality report</b> · {start} – {end}"
USAGE = "Usage: /report, /report 7d, /report 2026-10, /report 2026-Q4, /report 2026 or /report 2026-10-01..2026-12-31 (the last 30 days if left out)."


async def _close_case(clerks: Person, telegram: Telegram, answer: str) -> None:
    card = await clerks.receive_one()
    thread = (await telegram.chat(ADMIN_CHAT_ID))["topics"][-1]["message_thread_id"]
    await clerks.click(tr("lt", "✅ Answer and close"), card)
    await clerks.receive_one()  # "write the answer"
    await clerks.send(answer, thread_id=thread)


async def _all_values(store: Database, table: str) -> list[str]:
    async with store.read() as session:
        return [
            str(value)
            for row in (await session.execute(text(f"SELECT * FROM {table}"))).all()
            for value in row
        ]


async def test_declined_in_lithuanian(bot, telegram: Telegram, store: Database, clerks: Person) -> None:
    jonas = await telegram.resident("Jonas", language_code="lt")
    await onboard(jonas, "lt")
    await submit_case(jonas, "lt", "📄 Prašymas", "Kiti klausimai", "Prašau pažymos apie gyvenamąją vietą")
    await _close_case(clerks, telegram, "Pažymą galite atsiimti seniūnijoje.")
    *_, question = await jonas.receive(2)
    assert question.text.startswith(tr("lt", SURVEY, number="VRS-2026-000001"))
    await jonas.click(tr("lt", "No, thank you"), question)
    assert (await jonas.edited()).text == tr("lt", "All right, we will not ask about this case again.")
    await jonas.forge_button("fb:1:resolved:5:yes", question)
    assert (await jonas.answer())["text"] == tr("lt", "You have already answered about this case. Thank you!")
    assert await _all_values(store, "satisfaction_answers") == []
    assert len(await _all_values(store, "survey_receipts")) == 1


async def test_quality_report_in_the_clerks_group(
    bot, telegram: Telegram, emulator: Emulator, store: Database, clerks: Person
) -> None:
    emulator.chats[ADMIN_CHAT_ID].admins.add(
        clerks.user["id"]
    )  # the quality staff: the whole municipality, with satisfaction
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    await submit_case(anna, "pl", "📄 Wniosek", "Inne sprawy", "Proszę o informację o godzinach pracy")
    await _close_case(clerks, telegram, "Urząd pracuje od 8 do 17.")
    *_, question = await anna.receive(2)
    await anna.click("5 ★", question)
    await anna.edited()
    await anna.click("Tak")
    await anna.edited()
    await anna.click("📨 Wyślij bez komentarza")
    await anna.edited()

    await clerks.send("/report ostatnis")
    refused = (await clerks.receive_one()).text
    assert refused.startswith(tr("lt", "This is not a period.") + "\n" + tr("lt", USAGE))
    await clerks.send("/report 1999")
    assert (await clerks.receive_one()).text.startswith(
        tr("lt", "A report covers the years {first} to {last}.", first=2000, last=2027)
    )
    await clerks.send("/report 2026-11")
    message, chart, workbook = await clerks.receive(3, timeout=30)
    assert message.text.startswith(
        tr("lt", REPORT, start="2026 m. lapkričio 1 d.", end="2026 m. lapkričio 30 d.")
    )
    assert "Gauta: 1 · užbaigta: 1" in message.text
    assert "Užbaigta per nustatytą terminą: 100% (1 iš 1)" in message.text
    assert "Pasitenkinimas: 5 iš 5 pagal 1 atsakymą" in message.text
    assert "photo" in chart.raw
    document = workbook.raw["document"]
    assert document["file_name"] == "quality-2026-11-01-2026-11-30.xlsx"
    async with httpx.AsyncClient(base_url=emulator.url, headers=control_headers(emulator)) as http:
        data = (await http.get(f"/_emu/files/{document['file_id']}")).content
    book = load_workbook(io.BytesIO(data))
    assert book.sheetnames[0] == "Suvestinė"
    summary = {row[0]: row[1] for row in book["Suvestinė"].iter_rows(min_row=2, values_only=True)}
    assert summary["Gauti kreipimaisi"] == 1 and summary["Užbaigtų per terminą dalis, %"] == 100.0
    assert summary["Vidutinis pasitenkinimas (1-5)"] == 5
