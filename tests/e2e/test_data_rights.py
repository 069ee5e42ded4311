"""Residents' data rights through the real bot: the privacy notice, /mydata read back against the
database, and /forget on a resident with a closed and an open case."""

import json

import httpx
from sqlalchemy import select

from bot.sandbox.emulator import Emulator
from bot.store.db import Database
from bot.store.models import Case, CaseEvent, Resident
from tests.catalog import tr
from tests.conftest import ADMIN_CHAT_ID
from tests.e2e.driver import Person, Received, Telegram
from tests.e2e.helpers import onboard, submit_case


async def _download(emulator: Emulator, message: Received) -> bytes:
    async with httpx.AsyncClient(base_url=emulator.url) as http:
        return (await http.get(f"/_emu/files/{message.raw['document']['file_id']}")).content


async def _answer_in_topic(clerks: Person, telegram: Telegram, text: str, close: bool) -> Received:
    card = await clerks.receive_one()
    thread = (await telegram.chat(ADMIN_CHAT_ID))["topics"][-1]["message_thread_id"]
    if close:
        await clerks.click("✅ Atsakyti ir užbaigti", card)
        await clerks.receive_one()  # "write the answer"
    await clerks.send(text, thread_id=thread)
    return card


async def test_privacy_notice_and_my_data(bot, telegram: Telegram, emulator: Emulator, store: Database, clerks: Person) -> None:
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    await anna.send("/privacy")
    notice = (await anna.receive_one()).text
    assert "Administrator: Administracja Samorządu Rejonu Wileńskiego, ul. Rinktinės 50, 09318 Wilno." in notice
    assert "Inspektor ochrony danych: dap@vrsa.lt." in notice
    assert "art. 6 ust. 1 lit. c i e RODO" in notice and "nie zależy to od zgody" in notice
    assert "Wniosek: 5 lat po zamknięciu sprawy; Skarga: 5 lat po zamknięciu sprawy; Zgłoszenie problemu: 2 lata po zamknięciu sprawy" in notice
    assert "/mydata" in notice and "/forget" in notice

    await submit_case(anna, "pl", "🚧 Zgłoszenie problemu", "Drogi, ulice i transport", "Dziura w jezdni przy <szkole>")
    await _answer_in_topic(clerks, telegram, "Sprawdzimy to jutro.", close=False)
    await anna.receive_one()

    await anna.send("/mydata")
    machine, readable = await anna.receive(2)
    assert machine.raw["document"]["file_name"].endswith(".json") and readable.raw["document"]["file_name"].endswith(".txt")
    assert readable.text == "Wszystko, co o Panu/Pani przechowujemy: plik tekstowy do przeczytania i plik JSON do przetwarzania komputerowego."
    data = json.loads(await _download(emulator, machine))
    async with store.read() as session:
        resident = await session.get(Resident, anna.user["id"])
        case = (await session.execute(select(Case))).scalar_one()
        events = list((await session.execute(select(CaseEvent).order_by(CaseEvent.id))).scalars())
    assert data["profile"] == {
        "telegram_id": resident.id, "name": "Anna", "phone": None, "language": "pl",
        "privacy_notice_acknowledged_at": resident.consent_at.isoformat(), "first_contact_at": resident.created_at.isoformat(),
    }  # fmt: skip
    [exported] = data["cases"]
    assert (exported["number"], exported["kind"], exported["description"], exported["status"]) == (
        case.number,
        "report",
        "Dziura w jezdni przy <szkole>",
        case.status,
    )
    assert [(e["kind"], e["from"], e["text"]) for e in exported["events"]] == [
        (e.kind, "you" if e.actor_id == resident.id else "municipality", e.text) for e in events
    ]
    assert exported["events"][-1]["text"] == "Sprawdzimy to jutro."
    assert data["not_linked_to_you"] == ["satisfaction answers", "poll answers"]
    text = (await _download(emulator, readable)).decode()
    assert text.startswith("Pana/Pani dane przechowywane przez: Administracja Samorządu Rejonu Wileńskiego")
    assert "Imię i nazwisko: Anna" in text and "SPRAWY (1)" in text and "Opis: Dziura w jezdni przy <szkole>" in text
    assert "wiadomość samorządu: Sprawdzimy to jutro." in text

    for _ in range(2):  # three a day
        await anna.send("/mydata")
        await anna.receive(2)
    await anna.send("/mydata")
    assert (await anna.receive_one()).text == "O swoje dane można poprosić 3 razy dziennie. Prosimy spróbować jutro."


async def test_forget_erases_the_profile_and_keeps_the_cases_apart(bot, telegram: Telegram, emulator: Emulator, store: Database, clerks: Person) -> None:
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    await submit_case(anna, "pl", "🚧 Zgłoszenie problemu", "Drogi, ulice i transport", "Dziura w jezdni przy szkole")
    closed_card = await _answer_in_topic(clerks, telegram, "Załatane.", close=True)
    await anna.receive(3)  # the answer, the status, the satisfaction question
    assert "Būsena: Atsakyta" in (await clerks.edited()).text  # the closed case's card
    await submit_case(anna, "pl", "📄 Wniosek", "Inne sprawy", "Proszę o zaświadczenie o zamieszkaniu")
    open_card = await clerks.receive_one()
    async with store.write() as session:
        (await session.get(Resident, anna.user["id"])).news_topics = ["general"]

    await anna.send("/forget")
    ask = await anna.receive_one()
    assert ask.text.startswith("Usunąć Pana/Pani profil?") and ask.buttons == ["🗑 Usuń mój profil", "Nie usuwaj"]
    await anna.click("Nie usuwaj", ask)
    assert (await anna.edited()).text == "Niczego nie usunięto."
    async with store.read() as session:
        assert (await session.get(Resident, anna.user["id"])).display_name == "Anna"

    await anna.send("/forget")
    await anna.click("🗑 Usuń mój profil", await anna.receive_one())
    assert (await anna.edited()).text == "Pana/Pani profil został usunięty."
    farewell = await anna.receive_one()
    assert farewell.text.startswith("Nie będziemy już do Pana/Pani pisać")
    sent = next(r for r in reversed(emulator.requests) if r["method"] == "sendMessage" and str(r["params"]["chat_id"]) == str(anna.user["id"]))
    assert "remove_keyboard" in str(sent["params"]["reply_markup"])  # the menu goes
    told = await clerks.receive_one()
    erased = "🧹 The resident of {number} erased their profile (/forget). The case stays on record; answers here still reach them, nothing else does."
    assert (told.text, told.thread_id) == (tr("lt", erased, number="VRS-2026-000002"), open_card.thread_id)  # only the open case's team is told
    cards = [await clerks.edited(), await clerks.edited()]
    assert sorted(card.id for card in cards) == sorted([closed_card.id, open_card.id])
    assert all("Gyventojas: ištrynė savo profilį" in card.text and "Anna" not in card.text for card in cards)
    async with store.read() as session:
        resident = await session.get(Resident, anna.user["id"])
        cases = list((await session.execute(select(Case).order_by(Case.id))).scalars())
    assert (resident.display_name, resident.phone, resident.locale, resident.consent_at, resident.news_topics) == ("", None, None, None, [])
    assert resident.erased_at is not None and resident.created_at == resident.erased_at
    assert [c.resident_id for c in cases] == [anna.user["id"]] * 2  # both kept on record
    forgotten = [r["params"] for r in emulator.requests if r["method"] == "deleteMyCommands"]
    assert [json.loads(params["scope"]) for params in forgotten] == [{"type": "chat", "chat_id": anna.user["id"]}]  # her own menu, once

    # The open case is still answered; the satisfaction question is not asked any more.
    thread = open_card.thread_id
    await clerks.click("✅ Atsakyti ir užbaigti", open_card)
    await clerks.receive_one()
    await clerks.send("Zaświadczenie jest gotowe.", thread_id=thread)
    answer, status = await anna.receive(2)
    assert answer.text.startswith("Samorząd Rejonu Wileńskiego · sprawa VRS-2026-000002")  # still in her language
    assert answer.text.endswith("Zaświadczenie jest gotowe.")
    await anna.nothing_more(1.0)  # and no satisfaction question
    await clerks.send("Jeszcze jedno", thread_id=closed_card.thread_id)  # a closed case of an erased profile
    assert (await clerks.receive_one()).text.startswith("Neišsiųsta: gyventojas ištrynė savo profilį")
    await anna.nothing_more(1.0)

    # Back again: a fresh start, the old cases are not shown as hers.
    await onboard(anna, "pl")
    await anna.send("/cases")
    assert (await anna.receive_one()).text.startswith("Nie ma Pan/Pani jeszcze żadnych spraw")
