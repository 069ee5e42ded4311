"""Satisfaction after a clerk closes a case, polls from the communications group, and the
quality report in the clerks' group, through the emulator; anonymity checked on the database."""

import io

import httpx
from openpyxl import load_workbook
from sqlalchemy import select, text

from bot.sandbox.emulator import Emulator
from bot.store.db import Database
from bot.store.models import Case, PollAnswer, SatisfactionAnswer
from tests.conftest import ADMIN_CHAT_ID, COMMS_CHAT_ID
from tests.e2e.driver import Person, Telegram
from tests.e2e.helpers import onboard, submit_case

POLL = """# Godziny pracy i usługi
Q: Jak ocenia Pan/Pani godziny pracy urzędu? | Kaip vertinate savivaldybės darbo laiką?
- Dobrze | Gerai
- Źle | Blogai
Q+: Co chciał(a)by Pan/Pani załatwiać przez internet? | Ką norėtumėte tvarkyti internetu?
- Zaświadczenia | Pažymas
- Zgłoszenia | Pranešimus
- Podatki | Mokesčius
"""


async def _close_case(clerks: Person, telegram: Telegram, answer: str) -> None:
    card = await clerks.receive_one()
    thread = (await telegram.chat(ADMIN_CHAT_ID))["topics"][-1]["message_thread_id"]
    await clerks.click("✅ Atsakyti ir užbaigti", card)
    await clerks.receive_one()  # "write the answer"
    await clerks.send(answer, thread_id=thread)


async def _all_values(store: Database, table: str) -> list[str]:
    async with store.read() as session:
        return [str(value) for row in (await session.execute(text(f"SELECT * FROM {table}"))).all() for value in row]


async def test_satisfaction_question_after_a_clerk_closes_the_case(bot, telegram: Telegram, store: Database, clerks: Person) -> None:
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    await submit_case(anna, "pl", "🚧 Zgłoszenie problemu", "Drogi, ulice i transport", "Dziura w jezdni przy szkole")
    await _close_case(clerks, telegram, "Dziura została załatana.")

    _answer, _closed, question = await anna.receive(3)
    assert "od 1 (bardzo źle) do 5" in question.text and "anonimowa" in question.text
    assert question.buttons == ["1 ★", "2 ★", "3 ★", "4 ★", "5 ★", "Nie, dziękuję"]
    await anna.click("4 ★", question)
    resolved = await anna.edited()
    assert resolved.text == "Pana/Pani ocena: 4 ★. Czy sprawa została załatwiona?"
    assert resolved.buttons == ["Tak", "Częściowo", "Nie"]
    await anna.click("Częściowo", resolved)
    assert (await anna.edited()).buttons == ["📨 Wyślij bez komentarza", "✍ Dodaj komentarz"]
    await anna.click("✍ Dodaj komentarz")
    assert (await anna.edited()).text.startswith("Proszę napisać komentarz w jednej wiadomości")
    await anna.send("Szybko, ale <b>łatka</b> już pęka & trzeba poprawić")
    assert (await anna.receive_one()).text.startswith("Dziękujemy za odpowiedź!")

    async with store.read() as session:
        answer = (await session.execute(select(SatisfactionAnswer))).scalar_one()
        case = (await session.execute(select(Case))).scalar_one()
    assert (answer.score, answer.resolved, answer.comment) == (4, "partly", "Szybko, ale <b>łatka</b> już pęka & trzeba poprawić")
    assert (answer.category_id, answer.kind, answer.locale) == ("roads", "report", "pl")
    stored = await _all_values(store, "satisfaction_answers") + await _all_values(store, "survey_receipts")
    assert not [v for v in stored if v in {str(anna.user["id"]), str(case.id), case.number, "Anna"}]

    # An old button cannot add a second answer.
    await anna.forge_button(f"fb:{case.id}:score:5:", question)
    assert (await anna.answer())["text"] == "Ocena tej sprawy została już zapisana. Dziękujemy!"
    # Reopened and closed again: the question is not repeated.
    await clerks.click("↩ Atnaujinti nagrinėjimą")
    await anna.receive_one()  # reopened
    await clerks.click("⛔ Atmesti")
    await clerks.receive_one()
    await clerks.send("Sprawa została już załatwiona wcześniej.", thread_id=(await telegram.chat(ADMIN_CHAT_ID))["topics"][0]["message_thread_id"])
    assert "Status: Odrzucona" in (await anna.receive_one()).text
    await anna.nothing_more(1.5)
    async with store.read() as session:
        assert len((await session.execute(select(SatisfactionAnswer))).all()) == 1


async def test_declined_in_lithuanian(bot, telegram: Telegram, store: Database, clerks: Person) -> None:
    jonas = await telegram.resident("Jonas", language_code="lt")
    await onboard(jonas, "lt")
    await submit_case(jonas, "lt", "📄 Prašymas", "Kiti klausimai", "Prašau pažymos apie gyvenamąją vietą")
    await _close_case(clerks, telegram, "Pažymą galite atsiimti seniūnijoje.")
    *_, question = await jonas.receive(3)
    assert question.text.startswith("Ar esate patenkinti, kaip buvo išnagrinėtas kreipimasis VRS-2026-000001?")
    await jonas.click("Ne, dėkoju", question)
    assert (await jonas.edited()).text == "Gerai, dėl šio kreipimosi daugiau neklausime."
    await jonas.forge_button("fb:1:resolved:5:yes", question)
    assert (await jonas.answer())["text"] == "Šio kreipimosi įvertinimas jau išsaugotas. Dėkojame!"
    assert await _all_values(store, "satisfaction_answers") == []
    assert len(await _all_values(store, "survey_receipts")) == 1


async def _staff(telegram: Telegram, emulator: Emulator) -> Person:
    rasa = await telegram.person("Rasa", language_code="lt")
    emulator.chats[COMMS_CHAT_ID].members.add(rasa.user["id"])
    return rasa.in_chat(COMMS_CHAT_ID)


async def test_a_poll_from_the_communications_group(bot, telegram: Telegram, emulator: Emulator, store: Database) -> None:
    anna = await telegram.resident("Anna", language_code="pl")
    jonas = await telegram.resident("Jonas", language_code="lt")
    await onboard(anna, "pl")
    await onboard(jonas, "lt")
    rasa = await _staff(telegram, emulator)

    await rasa.send("/help")
    assert "/results ID: gauti apklausos atsakymai su diagrama" in (await rasa.receive_one()).text
    await rasa.send("/poll")
    assert "Q+:" in (await rasa.receive_one()).text
    await rasa.send("Q: Jak? | Kaip?\n- Dobrze\n- Źle | Blogai")
    assert (await rasa.receive_one()).text == "2 eilutė: parašykite tekstą lenkiškai, tada |, tada tekstą lietuviškai."
    await rasa.send_document(POLL.encode(), "ankieta.txt", mime="text/plain")
    audience = await rasa.receive_one()
    assert audience.text.startswith("Apklausoje yra 2 klausimai.") and "Gavėjų dabar: 2" in audience.text
    await rasa.click("👁 Peržiūra", audience)
    await rasa.edited()
    previews = await rasa.receive(7)  # title + question for each of three languages, then the confirmation
    assert previews[1].text.startswith("📊 Ankieta · pytanie 1 z 2") and previews[3].text.startswith("📊 Apklausa · 1 klausimas iš 2")
    await rasa.click("○ Dobrze", previews[1])
    assert (await rasa.answer())["text"] == "Tai peržiūra: gyventojai atsako savo pokalbyje su botu."
    await rasa.click("✅ Siųsti gavėjams: 2", previews[-1])
    await rasa.edited()
    sending, _progress = await rasa.receive(2)
    assert sending.text.startswith("Apklausa #1 siunčiama kaip skelbimas #1.")

    first = await anna.receive_one()
    assert first.text.startswith("📊 Ankieta · pytanie 1 z 2") and "Jak ocenia Pan/Pani godziny pracy urzędu?" in first.text
    assert first.buttons == ["○ Dobrze", "○ Źle", "✅ Potwierdzam"]
    await anna.click("✅ Potwierdzam", first)
    assert (await anna.answer())["text"] == "Proszę najpierw wybrać odpowiedź."
    await anna.click("○ Źle", first)
    assert (await anna.edited()).buttons == ["○ Dobrze", "● Źle", "✅ Potwierdzam"]
    await anna.click("✅ Potwierdzam", first)
    second = await anna.edited()
    assert "pytanie 2 z 2" in second.text and second.buttons[0] == "☐ Zaświadczenia"
    await anna.click("☐ Zaświadczenia", second)
    await anna.edited()
    await anna.click("☐ Podatki", second)
    assert (await anna.edited()).buttons == ["☑ Zaświadczenia", "☐ Zgłoszenia", "☑ Podatki", "✅ Potwierdzam"]
    await anna.click("✅ Potwierdzam", second)
    summary = await anna.edited()
    assert "→ Źle" in summary.text and "→ Zaświadczenia, Podatki" in summary.text
    assert summary.buttons == ["📨 Wyślij odpowiedzi", "↩ Zacznij od nowa"]
    await anna.click("📨 Wyślij odpowiedzi", summary)
    assert (await anna.edited()).text.endswith("Dziękujemy! Pana/Pani odpowiedzi zostały zapisane anonimowo.")
    await anna.forge_button("pv:1:1.1:0:s:0", first)  # the buttons are gone; a crafted client tries again
    assert (await anna.answer())["text"] == "Odpowiedź na tę ankietę została już zapisana. Dziękujemy!"

    question = await jonas.receive_one()
    assert "Kaip vertinate savivaldybės darbo laiką?" in question.text and question.buttons[0] == "○ Gerai"
    await rasa.send("/results 1")
    results = await rasa.receive_one()
    assert results.text.startswith("📊 Apklausa #1 (vykdoma): 1 atsakymas")
    assert "• Blogai: 1 (100%)" in results.text and "• Mokesčius: 1 (100%)" in results.text
    assert "Polski mažiau nei 5" in results.text  # one answer in Polish: not shown by language
    assert "photo" in (await rasa.receive_one()).raw

    await rasa.send("/close 1")
    closed, final, _chart = await rasa.receive(3)
    assert closed.text == "Apklausa #1 užbaigta: nauji atsakymai nebepriimami."
    assert "(baigta): 1 atsakymas" in final.text
    await jonas.click("○ Gerai", question)
    assert (await jonas.answer())["text"] == "Ši apklausa jau baigta. Dėkojame už susidomėjimą!"
    await rasa.send("/polls")
    listing = await rasa.receive_one()
    assert "#1 · 2026 m. lapkričio 23 d. · baigta · 1 atsakymas\nKaip vertinate savivaldybės darbo laiką?" in listing.text

    async with store.read() as session:
        answers = (await session.execute(select(PollAnswer))).scalars().all()
    assert [(a.choices, a.locale) for a in answers] == [([[1], [0, 2]], "pl")]
    values = await _all_values(store, "poll_answers") + await _all_values(store, "survey_receipts")
    assert not [v for v in values if str(anna.user["id"]) in v]


async def test_quality_report_in_the_clerks_group(bot, telegram: Telegram, emulator: Emulator, store: Database, clerks: Person) -> None:
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    await submit_case(anna, "pl", "📄 Wniosek", "Inne sprawy", "Proszę o informację o godzinach pracy")
    await _close_case(clerks, telegram, "Urząd pracuje od 8 do 17.")
    *_, question = await anna.receive(3)
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
    assert message.text.startswith("Kokybės ataskaita · 2026 m. lapkričio 1 d. – 2026 m. lapkričio 30 d.")
    assert "Gauta: 1 · užbaigta: 1" in message.text
    assert "Užbaigta per nustatytą terminą: 100% (1 iš 1)" in message.text
    assert "Pasitenkinimas: 5 iš 5 pagal 1 atsakymą" in message.text
    assert "photo" in chart.raw
    document = workbook.raw["document"]
    assert document["file_name"] == "quality-2026-11-01-2026-11-30.xlsx"
    async with httpx.AsyncClient(base_url=emulator.url) as http:
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
    assert digest.text.startswith("📋 Dienos suvestinė")
    assert report.text.startswith("Kokybės ataskaita · 2026 m. lapkričio 23 d. – 2026 m. lapkričio 29 d.")
    assert "Pasitenkinimas: per šį laikotarpį atsakymų nėra." in report.text
    assert "photo" in chart.raw and workbook.raw["document"]["file_name"] == "quality-2026-11-23-2026-11-29.xlsx"
