"""A case that came by phone, registered by a clerk with /register through the emulator: routed
to another team's group with the person's contact on its card, nothing sent to anybody's
Telegram, and closed recording that the answer was given by phone."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.sandbox.emulator import Emulator
from bot.services.outbox import NO_CHAT
from bot.store.db import Database
from bot.store.models import Case, CaseEvent, CaseStatus, EventKind, OutboxMessage
from tests.conftest import ADMIN_CHAT_ID
from tests.e2e.driver import Telegram
from tests.e2e.helpers import PHOTO
from tests.e2e.test_teams import ROADS, Desk, start_desk


@pytest.fixture
async def desk(emulator: Emulator, telegram: Telegram, settings_env, tmp_path):
    desk = await start_desk(emulator, telegram, settings_env, tmp_path)
    yield desk
    await desk.bot.stop()
    assert not desk.bot.refused_requests(), "the bot sent a request Telegram refuses"
    assert not desk.bot.emulator.spec.unknown_parameters


async def test_a_phoned_in_case_is_registered_routed_and_closed_by_phone(desk: Desk, telegram: Telegram, store: Database) -> None:
    ona = desk.front  # the front office: a call comes in

    # Started, a button pressed by another clerk (refused), then cancelled: nothing stored.
    await ona.send("/register")
    first = await ona.receive_one()
    other = desk.head.in_chat(ADMIN_CHAT_ID)
    await other.click("📞 Telefonu", first)
    assert (await other.answer())["text"] == "Šį registravimą pradėjo kitas specialistas arba jis jau baigtas."
    await ona.click("✖ Atšaukti", first)
    assert (await ona.edited()).text == "Registravimas atšauktas. Nieko neišsaugota."

    await ona.send("/register")
    came = await ona.receive_one()
    assert came.text.startswith("Registruojamas kreipimasis, gautas ne per „Telegram“")
    assert came.buttons == ["📞 Telefonu", "✉️ El. paštu", "📮 Paštu", "🏢 Aptarnavimo skyriuje", "✖ Atšaukti"]
    await ona.click("📞 Telefonu", came)
    assert (await ona.edited()).text == "Gauta telefonu"
    for label in ("🚧 Pranešimas apie problemą", "Keliai ir transportas", "🗺 Visas rajonas"):
        await ona.click(label, await ona.receive_one())
        await ona.edited()
    assert (await ona.receive_one()).text.startswith("Aprašykite reikalą taip, kaip jį išdėstė asmuo")
    await ona.send("Gili duobė Mokyklos gatvėje prie autobusų stotelės")
    assert (await ona.receive_one()).buttons == ["⏭ Be failų", "✖ Atšaukti"]
    await ona.send_photo(PHOTO, caption="Atsiuntė el. paštu")
    attached = await ona.receive_one()
    assert attached.text == "Pridėtas 1 failas." and attached.buttons == ["✅ Baigta", "✖ Atšaukti"]
    await ona.click("✅ Baigta", attached)
    await ona.edited()
    assert (await ona.receive_one()).text == "Asmens vardas ir pavardė?"
    await ona.send("Jonas <Jonaitis>")
    how = await ona.receive_one()
    assert how.buttons == ["📞 Telefonu", "✉️ El. paštu", "📮 Paštu", "🤝 Asmeniškai", "✖ Atšaukti"]
    await ona.click("📞 Telefonu", how)
    await ona.edited()
    assert (await ona.receive_one()).text == "Asmens telefono numeris?"
    await ona.send("pasakė, kad neturi")  # not a number: asked again
    assert (await ona.receive_one()).text.startswith("Tai nepanašu į telefono numerį")
    await ona.send("+370 600 12345")
    summary = await ona.receive_one()
    assert "Gauta telefonu" in summary.text and "Asmuo: Jonas <Jonaitis> (neturi „Telegram“)" in summary.text
    assert "Atsakyti telefonu: +370 600 12345" in summary.text and "Failai: 1" in summary.text
    await ona.click("✅ Užregistruoti", summary)
    await ona.edited()
    registered = await ona.receive_one()
    assert registered.text.startswith("✅ Kreipimasis VRS-2026-000001 užregistruotas.\nNagrinėja: Kelių skyrius\nTerminas: 2026 m. gruodžio 21 d.")
    assert "Pagal paskirstymo taisykles kreipimasis perduotas komandai Kelių skyrius: jo kortelė yra tos komandos grupėje." in registered.text

    # The roads department gets the card (with whom to answer, and how) and the file in a topic.
    card, photo = await desk.member.receive(2)
    assert card.text.startswith("🚧 VRS-2026-000001 · Pranešimas apie problemą") and card.thread_id is not None
    assert "Asmuo: Jonas <Jonaitis> (neturi „Telegram“)" in card.text
    assert "Atsakyti telefonu: 📞 +370 600 12345" in card.text and "Užregistravo Ona, gauta telefonu" in card.text
    assert "photo" in photo.raw and photo.thread_id == card.thread_id

    # Writing in the topic reaches nobody: the clerk is told to answer outside Telegram.
    await desk.member.send("Sveiki, duobę užtaisysime", thread_id=card.thread_id)
    refusal = await desk.member.receive_one()
    assert refusal.text.startswith("Neišsiųsta: šio kreipimosi asmuo neturi „Telegram“.")

    # Petras phoned the answer: closing asks how, then the answer for the record.
    await desk.member.click("✅ Atsakyti ir užbaigti", card)
    question = await desk.member.receive_one()
    assert question.text == "VRS-2026-000001: kaip buvo pateiktas atsakymas?"
    await desk.member.click("📞 Telefonu", question)
    await desk.member.edited()
    prompt = await desk.member.receive_one()
    assert prompt.text.startswith("VRS-2026-000001: įrašykite į kreipimosi bylą atsakymą, pateiktą telefonu.")
    await desk.member.send("Duobė bus užtaisyta iki penktadienio", thread_id=card.thread_id)
    closed = await desk.member.edited()
    assert closed.id == card.id and "Būsena: Atsakyta" in closed.text and "Atsakymas pateiktas telefonu" in closed.text
    assert closed.buttons == ["↩ Atnaujinti nagrinėjimą", "🌐 Paviešinti"]  # a report: the clerks may publish it (Open311)

    async with store.read() as session:
        case = (await session.execute(select(Case))).scalar_one()
        events = (await session.execute(select(CaseEvent).order_by(CaseEvent.id))).scalars().all()
        chats = set((await session.execute(select(OutboxMessage.chat_id).where(OutboxMessage.chat_id != NO_CHAT))).scalars())  # not the file downloads
    assert (case.channel, case.resident_id, case.team_id, case.status, case.answered_via) == ("staff", None, "roads", CaseStatus.ANSWERED, "phone")
    assert case.contact == {"name": "Jonas <Jonaitis>", "answer_by": "phone", "phone": "+370 600 12345"}
    assert not case.feedback_asked and chats == {ROADS}  # only the roads group was ever written to
    created, status = events[0], events[-1]
    assert (created.kind, created.actor_id, created.actor_name) == (EventKind.CREATED, ona.user["id"], "Ona")
    assert created.data == {"team": "roads", "channel": "staff", "received_by": "phone"}
    assert (status.kind, status.actor_name, status.text) == (EventKind.STATUS, "Petras", "Duobė bus užtaisyta iki penktadienio")
    assert status.data == {"from": "new", "to": "answered", "answered_via": "phone"}
