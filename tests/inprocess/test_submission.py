"""Anna's report, in Polish, step by step: a sticker where a button is expected, the elderships'
pages, a description too short, an album, her location; then the summary, the confirmation, what
is stored and what the clerks get. One behaviour a test, over shared fixtures that take her to a
step. (End to end, tests/e2e/test_intake.py keeps a redelivered press and restarts.)"""

from dataclasses import dataclass

import pytest
from sqlalchemy import select
from sqlmodel import col

from bot.store.db import Database
from bot.store.models import Attachment, Case
from tests.catalog import tr
from tests.support.driver import Person, Received, Telegram
from tests.support.helpers import PHOTO, choose, onboard

NUMBER = "VRS-2026-000001"
DESCRIPTION = (
    "<b>Dziura</b> & wyrwa w jezdni przy ul. Wileńskiej 5 🚧"  # shown as typed: escaped, not interpreted
)
LATITUDE, LONGITUDE = 54.64061, 25.10472
CAPTION = "Widok od północy"


@pytest.fixture
async def anna(bot, telegram: Telegram) -> Person:
    """Anna, onboarded in Polish, asked what she would like to submit."""
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    await anna.send("📝 Nowa sprawa")
    return anna


@pytest.fixture
async def kinds(anna: Person) -> Received:
    return await anna.receive_one()


async def at_description(anna: Person) -> Received:
    """A report of a problem on the roads of Rzesza (the third page of elderships): asked to describe it."""
    await anna.receive_one()
    await choose(anna, "🚧 Zgłoszenie problemu")
    await anna.click("▶ 2/3")
    await anna.edited()
    await anna.click("▶ 3/3")
    await anna.edited()
    await choose(anna, "Rzesza")
    await anna.click("Drogi, ulice i transport")
    await anna.edited()
    return await anna.receive_one()


async def at_files(anna: Person) -> Received:
    await at_description(anna)
    await anna.send(DESCRIPTION)
    return await anna.receive_one()


async def at_location(anna: Person) -> Received:
    await at_files(anna)
    await anna.send_album([PHOTO, PHOTO, PHOTO], caption=CAPTION)
    await anna.receive_one()
    await anna.click("✅ Gotowe")
    await anna.edited()
    return await anna.receive_one()


@pytest.fixture
async def summary(anna: Person) -> Received:
    """Every step answered (an album of three, her location, the answer here): the summary."""
    await at_location(anna)
    await anna.share_location(LATITUDE, LONGITUDE)
    await anna.receive_one()
    await anna.send("💬 Odpowiedź tutaj, w Telegramie")
    _, summary = await anna.receive(2)
    return summary


@dataclass
class Submitted:
    anna: Person
    confirmation: Received
    to_clerks: list[Received]  # the card, the location, the album


@pytest.fixture
async def submitted(anna: Person, summary: Received, clerks: Person) -> Submitted:
    """Sent; what the clerks get is waited for here (the test ends with nothing still being sent)."""
    await anna.click("✅ Wyślij", summary)
    await anna.edited()
    confirmation = await anna.receive_one()
    return Submitted(anna, confirmation, await clerks.receive(5))


async def test_the_kinds_are_offered_and_a_sticker_gets_a_hint(anna: Person, kinds: Received) -> None:
    assert kinds.buttons == ["📄 Wniosek", "⚠️ Skarga", "🚧 Zgłoszenie problemu", "✖️ Anuluj"]
    await anna.send_sticker()  # not a button press: a hint and the question again, and the step stays
    hint, again = await anna.receive(2)
    assert hint.text == tr("pl", "Please choose with the buttons below. To stop, send /cancel.")
    assert (again.text, again.buttons) == (kinds.text, kinds.buttons)
    await anna.click("🚧 Zgłoszenie problemu", kinds)  # the first question's buttons work as well
    assert (await anna.edited()).text == "Rodzaj: Zgłoszenie problemu"


async def test_the_elderships_come_in_pages_in_alphabetical_order(anna: Person, kinds: Received) -> None:
    elderships = await choose(anna, "🚧 Zgłoszenie problemu")
    assert elderships.buttons[:8] == [
        "Awiżenie",
        "Bezdany",
        "Bujwidze",
        "Czarny Bór",
        "Dukszty",
        "Kowalczuki",
        "Ławaryszki",
        "Mariampol",
    ]
    assert elderships.buttons[8:] == ["▶ 2/3", "🤷 Nie wiem / cały rejon", "✖️ Anuluj"]
    await anna.click("▶ 2/3")
    await anna.edited()
    await anna.click("▶ 3/3")
    assert "Rzesza" in (await anna.edited()).buttons
    await anna.click("Rzesza")
    assert (await anna.edited()).text == "Starostwo: Rzesza"


async def test_a_description_too_short_or_blank_is_asked_again(anna: Person) -> None:
    prompt = await at_description(anna)
    assert prompt.text == tr(
        "pl",
        "Please describe the matter in your own words ({min} to {max} character). You can add photos and documents in the next step.",
        "Please describe the matter in your own words ({min} to {max} characters). You can add photos and documents in the next step.",
        3000,
        min=10,
        max=3000,
    )
    too_short = tr(
        "pl",
        "This is too short to act on. Please describe the matter in at least {min} character.",
        "This is too short to act on. Please describe the matter in at least {min} characters.",
        10,
        min=10,
    )
    await anna.send("za krótko")
    assert (await anna.receive_one()).text == too_short
    await anna.send("   \n   ")
    assert (await anna.receive_one()).text == too_short


async def test_an_album_is_acknowledged_once(anna: Person) -> None:
    files_prompt = await at_files(anna)
    assert files_prompt.buttons == ["⏭ Pomiń"]
    await anna.send_album([PHOTO, PHOTO, PHOTO], caption=CAPTION)
    attached = await anna.receive_one()  # one answer for the whole album
    assert attached.text == tr(
        "pl", "{count} file attached.", "{count} files attached.", 3, count=3
    ) + " " + tr("pl", "Send more, or press “Done”.")
    assert attached.buttons == ["✅ Gotowe"]
    await anna.nothing_more()


async def test_the_location_then_the_contact_are_asked_with_their_keyboards(anna: Person) -> None:
    location_prompt = await at_location(anna)
    assert location_prompt.keyboard_buttons == ["📍 Wyślij moją lokalizację", "⏭ Pomiń"]
    await anna.share_location(LATITUDE, LONGITUDE)
    contact_prompt = await anna.receive_one()
    assert contact_prompt.keyboard_buttons == [
        "💬 Odpowiedź tutaj, w Telegramie",
        "📞 Udostępnij mój numer telefonu",
    ]


async def test_the_summary_shows_every_answer_and_the_description_as_typed(summary: Received) -> None:
    assert summary.text == "\n".join(
        [
            tr("pl", "<b>Please check your submission</b>"),
            "",
            "Rodzaj: Zgłoszenie problemu",
            "Starostwo: Rzesza",
            tr("pl", "Category: {name}", name="Drogi, ulice i transport"),
            tr("pl", "Files: {count}", count=3),
            tr("pl", "Location: {place}", place="📍 54.64061, 25.10472"),
            tr("pl", "Answer: {contact}", contact=tr("pl", "here in Telegram")),
            "",
            DESCRIPTION,
        ]
    )
    assert summary.buttons == ["✅ Wyślij", "✏️ Popraw dane", "✖️ Anuluj"]


async def test_the_confirmation_gives_the_number_and_the_deadline(submitted: Submitted) -> None:
    confirmation = submitted.confirmation
    assert confirmation.text == "\n".join(
        [
            tr("pl", "✅ <b>Your submission has been registered.</b>"),
            "",
            tr("pl", "Case number: <b>{number}</b>", number=NUMBER),
            "Rodzaj: Zgłoszenie problemu",
            tr("pl", "Handled by: {team}", team="Urzędnicy"),
            tr("pl", "Received: {date}", date="23 listopada 2026"),
            "Termin odpowiedzi: 21 grudnia 2026 (pozostało 20 dni roboczych)",
            "",
            tr(
                "pl",
                "What happens next: a clerk of the municipality will deal with your case and answer you here. "
                "You will get a message whenever its status changes. You can follow it under “My cases”.",
            ),
        ]
    )
    assert confirmation.keyboard_buttons[0] == "📝 Nowa sprawa"  # back to the menu


async def test_the_case_is_stored_as_given(submitted: Submitted, store: Database) -> None:
    async with store.read() as session:
        case = (await session.execute(select(Case))).scalar_one()
        attachments = (await session.execute(select(Attachment).order_by(col(Attachment.id)))).scalars().all()
    assert (case.number, case.kind, case.eldership_id, case.category_id, case.locale) == (
        NUMBER,
        "report",
        "riese",
        "roads",
        "pl",
    )
    assert case.description == DESCRIPTION
    assert (case.latitude, case.longitude) == (LATITUDE, LONGITUDE)
    assert case.deadline.isoformat() == "2026-12-21"
    assert [a.caption for a in attachments] == [CAPTION, None, None]
    assert len({a.media_group_id for a in attachments}) == 1  # one album


async def test_the_clerks_get_the_card_the_location_and_the_album(submitted: Submitted) -> None:
    card, pin, *album = submitted.to_clerks
    assert card.text == "\n".join(
        [
            "🚧 VRS-2026-000001 · Pranešimas apie problemą",
            tr("lt", "Status: {status}", status=tr("lt", "Received"))
            + " · "
            + tr("lt", "nobody responsible yet"),
            "Komanda: Specialistai",
            "Seniūnija: Riešė",
            "Sritis: Keliai ir transportas",
            "Gauta: 2026 m. lapkričio 23 d.",
            "Terminas: 2026 m. gruodžio 21 d. (liko 20 darbo dienų)",
            "Gyventojas: Anna",
            "Kalba: Polski",
            "",
            DESCRIPTION,
        ]
    )
    assert pin.raw["location"] == {"latitude": LATITUDE, "longitude": LONGITUDE}
    assert [m.raw["media_group_id"] for m in album] == [album[0].raw["media_group_id"]] * 3  # one album
    assert [m.text for m in album] == [CAPTION, "", ""]
