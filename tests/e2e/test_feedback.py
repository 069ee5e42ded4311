"""Satisfaction declined in Lithuanian, the quality report in the clerks' group and the weekly
report on its day, through the emulator. (The satisfaction question answered and a poll from the
communications group, one behaviour a test, are in tests/inprocess/test_feedback.py.)"""

import io

import httpx
from openpyxl import load_workbook
from sqlalchemy import text

from bot.sandbox.control import control_headers
from bot.sandbox.emulator import Emulator
from bot.store.db import Database
from tests.catalog import SURVEY, tr, tr_start
from tests.conftest import ADMIN_CHAT_ID
from tests.support.driver import Person, Telegram
from tests.support.helpers import onboard, submit_case

REPORT = "<b>Quality report</b> · {start} – {end}"


async def _close_case(clerks: Person, telegram: Telegram, answer: str) -> None:
    card = await clerks.receive_one()
    thread = (await telegram.chat(ADMIN_CHAT_ID))["topics"][-1]["message_thread_id"]
    await clerks.click("✅ Atsakyti ir užbaigti", card)
    await clerks.receive_one()  # "write the answer"
    await clerks.send(answer, thread_id=thread)


async def _all_values(store: Database, table: str) -> list[str]:
    async with store.read() as session:
        return [str(value) for row in (await session.execute(text(f"SELECT * FROM {table}"))).all() for value in row]


async def test_declined_in_lithuanian(bot, telegram: Telegram, store: Database, clerks: Person) -> None:
    jonas = await telegram.resident("Jonas", language_code="lt")
    await onboard(jonas, "lt")
    await submit_case(jonas, "lt", "📄 Prašymas", "Kiti klausimai", "Prašau pažymos apie gyvenamąją vietą")
    await _close_case(clerks, telegram, "Pažymą galite atsiimti seniūnijoje.")
    *_, question = await jonas.receive(2)
    assert question.text.startswith(tr("lt", SURVEY, number="VRS-2026-000001"))
    await jonas.click("Ne, dėkoju", question)
    assert (await jonas.edited()).text == "Gerai, dėl šio kreipimosi daugiau neklausime."
    await jonas.forge_button("fb:1:resolved:5:yes", question)
    assert (await jonas.answer())["text"] == "Šio kreipimosi įvertinimas jau išsaugotas. Dėkojame!"
    assert await _all_values(store, "satisfaction_answers") == []
    assert len(await _all_values(store, "survey_receipts")) == 1


async def test_quality_report_in_the_clerks_group(bot, telegram: Telegram, emulator: Emulator, store: Database, clerks: Person) -> None:
    emulator.chats[ADMIN_CHAT_ID].admins.add(clerks.user["id"])  # the quality staff: the whole municipality, with satisfaction
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
    assert refused.startswith("Laikotarpis nurodytas netinkamai.\nNaudojimas: /report")
    await clerks.send("/report 1999")
    assert (await clerks.receive_one()).text.startswith("Ataskaita gali apimti metus nuo 2000 iki 2027.")
    await clerks.send("/report 2026-11")
    message, chart, workbook = await clerks.receive(3, timeout=30)
    assert message.text.startswith(tr("lt", REPORT, start="2026 m. lapkričio 1 d.", end="2026 m. lapkričio 30 d."))
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


async def test_weekly_report_on_its_day(emulator: Emulator, telegram: Telegram, settings_env, tmp_path, store: Database) -> None:
    from tests.e2e.conftest import BotProcess

    # Monday 30 November 2026, just before DIGEST_TIME: the digest, then last week's report.
    env = {**settings_env, "PETENT_FROZEN_TIME": "2026-11-30T07:59:58+02:00", "DIGEST_TIME": "08:00", "WEEKLY_REPORT": "Monday"}
    process = BotProcess(emulator, env, tmp_path / "bot.log")
    await process.start()
    try:
        clerk = (await telegram.person("Ona")).in_chat(ADMIN_CHAT_ID)
        digest, report, chart, workbook = await clerk.receive(4, timeout=30)
    finally:
        await process.stop()
    assert digest.text.startswith(tr_start("lt", "📋 <b>Daily digest</b> of {team}, {date}", until="team"))
    assert report.text.startswith(tr("lt", REPORT, start="2026 m. lapkričio 23 d.", end="2026 m. lapkričio 29 d."))
    assert "Pasitenkinimas: per šį laikotarpį atsakymų nėra." in report.text
    assert "photo" in chart.raw and workbook.raw["document"]["file_name"] == "quality-2026-11-23-2026-11-29.xlsx"
