"""Residents submit cases and follow them, in Polish and in Lithuanian, through the emulator.
(Editing a step, cancelling and the list of one's cases, which need no real process, are in
tests/inprocess/test_intake.py; the steps of a submission in Polish, one a test, in
tests/inprocess/test_submission.py; adding information, reopening and the day's limit in
tests/inprocess/test_after_submission.py; a submit press delivered again and a confirmation
through the outbox in tests/inprocess/test_delivery.py.)"""

from sqlalchemy import select
from sqlmodel import col

from bot.store.db import Database
from bot.store.models import Attachment, Case, FsmRecord, Resident
from tests.catalog import tr
from tests.support.driver import Telegram
from tests.support.helpers import PHOTO, choose, fill_in_from_category, onboard


async def test_a_question_telegram_failed_to_deliver_comes_again_when_the_resident_writes(
    bot, telegram: Telegram, store: Database
) -> None:
    """Telegram answered 502 to every try of the next question, so it never arrived and Anna has no
    buttons to press. What she writes then brings the question back with its buttons; her first
    answer is kept and she goes on to the end."""
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    await anna.send("📝 Nowa sprawa")
    await anna.receive_one()
    await telegram.fault(
        "error", code=502, chat_id=anna.user["id"], method="sendMessage", count=4
    )  # every try
    await anna.click("🚧 Zgłoszenie problemu")
    assert (await anna.edited()).text == "Rodzaj: Zgłoszenie problemu"
    await anna.nothing_more(wait=5)  # four tries over 3.5 s, none delivered

    await anna.send("Halo? Co dalej?")
    hint, question = await anna.receive(2)
    assert hint.text == tr("pl", "Please choose with the buttons below. To stop, send /cancel.")
    assert question.text == tr("pl", "Which eldership does it concern?") and "Awiżenie" in question.buttons
    await choose(anna, "Awiżenie")
    summary = await fill_in_from_category(
        anna, "pl", "Drogi, ulice i transport", "Dziura w jezdni przy ul. Wileńskiej 5"
    )
    assert "Rodzaj: Zgłoszenie problemu" in summary.text
    await anna.click("✅ Wyślij")
    await anna.edited()
    await anna.receive_one()
    async with store.read() as session:
        case = (
            await session.execute(select(Case).where(col(Case.resident_id) == anna.user["id"]))
        ).scalar_one()
    assert (case.kind, case.eldership_id) == ("report", "avizieniai")


async def test_full_submission_in_lithuanian_with_address_and_phone(
    bot, telegram: Telegram, store: Database
) -> None:
    jonas = await telegram.resident("Jonas", language_code="lt")
    await onboard(jonas, "lt")
    await jonas.send("/new")
    await jonas.receive_one()
    await choose(jonas, "⚠️ Skundas")
    await jonas.click("🤷 Nežinau / visas rajonas")
    assert (await jonas.edited()).text == "Seniūnija: visas rajonas / nežinau"
    await jonas.receive_one()
    await choose(jonas, "Atliekos ir švara")
    await jonas.send("x" * 3001)
    assert "Simbolių skaičius: 3001 (leidžiama ne daugiau kaip 3000)" in (await jonas.receive_one()).text
    await jonas.send("Š" * 3000)  # exactly the limit
    await jonas.receive_one()
    await jonas.send_voice()  # not a file the step takes
    assert "tik nuotraukas ir dokumentus" in (await jonas.receive_one()).text
    await choose(jonas, "⏭ Praleisti")
    await jonas.send("Gedimino g. 1, Nemenčinė")
    await jonas.receive_one()
    await jonas.share_contact("+37060000000")
    _, summary = await jonas.receive(2)
    assert "Vieta: Gedimino g. 1, Nemenčinė" in summary.text
    assert "telefonu +37060000000" in summary.text
    await jonas.click("✅ Pateikti")
    await jonas.edited()
    confirmation = await jonas.receive_one()
    assert "Kreipimosi numeris: VRS-2026-000001" in confirmation.text
    assert "Atsakymo terminas: 2026 m. gruodžio 21 d. (liko 20 darbo dienų)" in confirmation.text

    async with store.read() as session:
        case = (await session.execute(select(Case))).scalar_one()
        resident = await session.get(Resident, jonas.user["id"])
    assert (case.kind, case.eldership_id, case.address) == ("complaint", None, "Gedimino g. 1, Nemenčinė")
    assert case.description == "Š" * 3000
    assert resident is not None
    assert resident.phone == "+37060000000"


async def test_restart_in_the_middle_continues_where_the_resident_was(bot, telegram: Telegram) -> None:
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    await anna.send("📝 Nowa sprawa")
    await anna.receive_one()
    await choose(anna, "🚧 Zgłoszenie problemu")
    await choose(anna, "Awiżenie")
    await choose(anna, "Oświetlenie ulic")  # asked for the description

    await bot.kill()
    await bot.start()

    await anna.send("Nie świeci latarnia przy szkole w Awiżeniach")
    assert (await anna.receive_one()).buttons == ["⏭ Pomiń"]  # the files step: nothing was lost
    await choose(anna, "⏭ Pomiń")
    await anna.send("⏭ Pomiń")
    await anna.receive_one()
    await anna.send("💬 Odpowiedź tutaj, w Telegramie")
    _, summary = await anna.receive(2)
    assert "Starostwo: Awiżenie" in summary.text and "Oświetlenie ulic" in summary.text


async def test_a_draft_left_by_the_previous_version_continues_after_a_deploy(
    bot, telegram: Telegram, store: Database
) -> None:
    """A deploy in the middle of a case: the previous version kept the draft's answers at the top
    level of the FSM data; the new one reads them, and the case is submitted as they were given."""
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    await anna.send("📝 Nowa sprawa")
    await anna.receive_one()
    await choose(anna, "🚧 Zgłoszenie problemu")
    await choose(anna, "Awiżenie")
    await choose(anna, "Oświetlenie ulic")
    await anna.send("Nie świeci latarnia przy szkole w Awiżeniach")
    await anna.receive_one()
    await anna.send_photo(PHOTO, caption="Latarnia")
    await anna.receive_one()
    await choose(anna, "✅ Gotowe")  # asked for the location

    await bot.kill()
    async with store.write() as session:
        record = (
            await session.execute(select(FsmRecord).where(col(FsmRecord.state) == "Intake:location"))
        ).scalar_one()
        draft = record.data["draft"]
        # What the previous version had stored by this step (its files: AttachmentDraft.__dict__).
        record.data = {key: draft[key] for key in ("files", "kind", "eldership", "category", "description")}
    await bot.start()

    await anna.send("ul. Szkolna 3, Awiżenie")
    await anna.receive_one()
    await anna.send("💬 Odpowiedź tutaj, w Telegramie")
    _, summary = await anna.receive(2)
    assert (
        "Starostwo: Awiżenie" in summary.text
        and "Oświetlenie ulic" in summary.text
        and "Pliki: 1" in summary.text
    )
    await anna.click("✅ Wyślij")
    await anna.edited()
    assert "Numer sprawy: VRS-2026-000001" in (await anna.receive_one()).text
    async with store.read() as session:
        case = (await session.execute(select(Case))).scalar_one()
        attachment = (await session.execute(select(Attachment))).scalar_one()
    assert (case.kind, case.eldership_id, case.category_id) == ("report", "avizieniai", "lighting")
    assert (case.description, case.address) == (
        "Nie świeci latarnia przy szkole w Awiżeniach",
        "ul. Szkolna 3, Awiżenie",
    )
    assert (attachment.case_id, attachment.kind, attachment.caption) == (case.id, "photo", "Latarnia")
