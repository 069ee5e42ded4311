"""Residents' data rights, in process, one behaviour a test: the privacy notice; /mydata over a
shared case with a clerk's message, read back against the database; /forget over a shared pair of
cases (one closed, one open). None of it needs a real process, so there is no end-to-end twin."""

import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlmodel import col

from bot.sandbox.control import control_headers
from bot.sandbox.emulator import Emulator
from bot.store.db import Database
from bot.store.models import Case, CaseEvent, Resident
from tests.catalog import tr
from tests.support.driver import Person, Received, Telegram
from tests.support.helpers import onboard, submit_case

MUNICIPALITY_PL = "Samorząd Rejonu Wileńskiego"
CONTROLLER_PL = "Administracja Samorządu Rejonu Wileńskiego, ul. Rinktinės 50, 09318 Wilno"
DESCRIPTION = "Dziura w jezdni przy <szkole>"
ERASED_NOTICE = "🧹 The resident of {number} erased their profile (/forget). The case stays on record; answers here still reach them, nothing else does."
NOT_SENT = (
    "Not sent: the resident erased their profile and the case is closed, or its retention period is over."
)


def to_anna(number: str, *paragraphs: str) -> str:
    return "\n\n".join(
        [
            tr("pl", "<b>{municipality}</b> · case {number}", municipality=MUNICIPALITY_PL, number=number),
            *paragraphs,
        ]
    )


async def download(emulator: Emulator, message: Received) -> bytes:
    async with httpx.AsyncClient(base_url=emulator.url, headers=control_headers(emulator)) as http:
        return (await http.get(f"/_emu/files/{message.raw['document']['file_id']}")).content


@pytest.fixture
async def anna(bot, telegram: Telegram) -> Person:
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    return anna


# --- the notice and /mydata -------------------------------------------------------------------


async def test_the_privacy_notice_names_the_controller_the_grounds_and_the_retention(anna: Person) -> None:
    await anna.send("/privacy")
    years = "{kind}: {count} year after closing", "{kind}: {count} years after closing"
    retention = "; ".join(
        [
            tr("pl", *years, n=5, kind="Wniosek", count=5),
            tr("pl", *years, n=5, kind="Skarga", count=5),
            tr("pl", *years, n=2, kind="Zgłoszenie problemu", count=2),
        ]
    )
    assert (await anna.receive_one()).text == tr(
        "pl",
        "<b>Privacy notice</b>\n\n"
        "<b>Controller:</b> {controller}. <b>Data protection officer:</b> {dpo}.\n\n"
        "<b>What we keep:</b> your Telegram account number, your name, your language, what you submit "
        "(text, files, location), your phone number only if you choose to share it, and your news subscriptions.\n\n"
        "<b>Why:</b> to register each request, complaint or report of a problem you send, handle it and answer you. "
        "This is the municipality's public task and its legal obligation under the laws on public administration "
        "and on the handling of submissions (GDPR Art. 6(1)(c) and (e)); it does not depend on consent.\n\n"
        "<b>How long:</b> your profile until you erase it; the personal data in cases, as the rules on records require "
        "({retention}), then it is removed.\n\n"
        "<b>Your rights:</b> /mydata sends you everything we keep about you; /forget erases your profile. "
        "You may also ask the data protection officer for correction or restriction, object, "
        "and complain to the State Data Protection Inspectorate (vdai.lrv.lt).",
        controller=CONTROLLER_PL,
        dpo="dap@vrsa.lt",
        retention=retention,
    ) + "\n\n" + tr(
        "pl",
        "<b>What is published:</b> nothing that names you. The municipality's open list of cases (Open311) shows two kinds of cases. "
        "A report of a problem sent here, only once a clerk makes it public: its number, category, the department handling it, "
        "the day it came (not the hour), its deadline, its status and the answer, your description, and the address and place "
        "rounded to about 100 m. A case sent through an Open311 service (a city app or website): its number, category, department, "
        "days, deadline, status and the answer. Never a name, phone number, e-mail address or Telegram account. "
        "Requests and complaints sent here are never listed.\n\n"
        "<b>Telegram:</b> this chat runs through Telegram, a service based outside the European Economic Area; what you send "
        "here passes through its servers under its own privacy policy (telegram.org/privacy). You may also submit the same "
        "in person, by post or by e-mail to the municipality.",
    )


@dataclass
class Export:
    anna: Person
    machine: Received
    readable: Received
    data: dict[str, Any]  # the JSON file, parsed
    text: str  # the text file


@pytest.fixture
async def export(anna: Person, clerks: Person, emulator: Emulator) -> Export:
    """Anna's case with a message from the clerk in it; then /mydata."""
    await submit_case(anna, "pl", "🚧 Zgłoszenie problemu", "Drogi, ulice i transport", DESCRIPTION)
    card = await clerks.receive_one()
    await clerks.send("Sprawdzimy to jutro.", thread_id=card.thread_id)
    await anna.receive_one()
    await anna.send("/mydata")
    machine, readable = await anna.receive(2)
    data = json.loads(await download(emulator, machine))
    return Export(anna, machine, readable, data, (await download(emulator, readable)).decode())


async def test_my_data_sends_a_json_and_a_text_file(export: Export) -> None:
    assert export.machine.raw["document"]["file_name"] == "my-data-2026-11-23.json"
    assert export.readable.raw["document"]["file_name"] == "my-data-2026-11-23.txt"
    assert export.readable.text == tr(
        "pl", "Everything we keep about you: the text file to read, the JSON file for computers."
    )


async def test_the_json_file_holds_the_profile(export: Export, store: Database) -> None:
    async with store.read() as session:
        resident = await session.get(Resident, export.anna.user["id"])
    assert resident is not None and resident.consent_at is not None
    assert export.data["profile"] == {
        "telegram_id": resident.id,
        "name": "Anna",
        "phone": None,
        "language": "pl",
        "privacy_notice_acknowledged_at": resident.consent_at.isoformat(),
        "first_contact_at": resident.created_at.isoformat(),
    }
    assert export.data["not_linked_to_you"] == [
        "satisfaction answers",
        "poll answers",
        "visit survey answers",
    ]


async def test_the_json_file_holds_each_case_with_its_events(export: Export, store: Database) -> None:
    async with store.read() as session:
        case = (await session.execute(select(Case))).scalar_one()
        events = list((await session.execute(select(CaseEvent).order_by(col(CaseEvent.id)))).scalars())
    [exported] = export.data["cases"]
    assert (exported["number"], exported["kind"], exported["description"], exported["status"]) == (
        case.number,
        "report",
        DESCRIPTION,
        case.status,
    )
    assert [(e["kind"], e["from"], e["text"]) for e in exported["events"]] == [
        (e.kind, "you" if e.actor_id == export.anna.user["id"] else "municipality", e.text) for e in events
    ]
    assert exported["events"][-1]["text"] == "Sprawdzimy to jutro."


async def test_the_text_file_reads_the_same(export: Export) -> None:
    lines = export.text.splitlines()
    assert lines[0] == "Pana/Pani dane przechowywane przez: " + CONTROLLER_PL
    assert "Imię i nazwisko: Anna" in lines
    assert "SPRAWY (1)" in lines
    assert "Opis: " + DESCRIPTION in lines
    assert [line for line in lines if line.endswith("wiadomość samorządu: Sprawdzimy to jutro.")] != []
    assert lines[-1] == tr(
        "pl",
        "Visit surveys (the QR code at our desks and offices) are anonymous: we keep nothing about you from them.",
    )


async def test_my_data_is_given_three_times_a_day(export: Export) -> None:
    anna = export.anna
    for _ in range(2):
        await anna.send("/mydata")
        await anna.receive(2)
    await anna.send("/mydata")
    assert (await anna.receive_one()).text == tr(
        "pl",
        "You can ask for your data {count} time a day. Please try again tomorrow.",
        "You can ask for your data {count} times a day. Please try again tomorrow.",
        3,
        count=3,
    )


# --- /forget ----------------------------------------------------------------------------------


@dataclass
class TwoCases:
    anna: Person
    clerks: Person
    closed_card: Received
    closed_card_now: Received  # as the closing left it
    open_card: Received


@pytest.fixture
async def two_cases(anna: Person, clerks: Person, store: Database) -> TwoCases:
    """Anna's report, answered and closed; then her request, open; she reads the general news."""
    await submit_case(
        anna, "pl", "🚧 Zgłoszenie problemu", "Drogi, ulice i transport", "Dziura w jezdni przy szkole"
    )
    closed_card = await clerks.receive_one()
    await clerks.click("✅ Atsakyti ir užbaigti", closed_card)
    await clerks.receive_one()  # "write the answer"
    await clerks.send("Załatane.", thread_id=closed_card.thread_id)
    await anna.receive(2)  # the answer (the case is closed), the satisfaction question
    await clerks.edited()  # the prompt: its "Cancel" goes once answered
    closed_card_now = await clerks.edited()
    await submit_case(anna, "pl", "📄 Wniosek", "Inne sprawy", "Proszę o zaświadczenie o zamieszkaniu")
    open_card = await clerks.receive_one()
    async with store.write() as session:
        resident = await session.get(Resident, anna.user["id"])
        assert resident is not None
        resident.news_topics = ["general"]
    return TwoCases(anna, clerks, closed_card, closed_card_now, open_card)


@dataclass
class Erased(TwoCases):
    confirmation: Received  # the question, edited
    farewell: Received
    told: Received  # what the clerks were told
    cards: list[Received]  # both cards, as the erasing left them


@pytest.fixture
async def erased(two_cases: TwoCases) -> Erased:
    """/forget, confirmed: Anna reads the confirmation and the farewell; the clerks get a notice
    and both cards are edited (waited for here: the test ends with nothing still being sent)."""
    anna, clerks = two_cases.anna, two_cases.clerks
    await anna.send("/forget")
    await anna.click("🗑 Usuń mój profil", await anna.receive_one())
    confirmation = await anna.edited()
    farewell = await anna.receive_one()
    told = await clerks.receive_one()
    cards = [await clerks.edited(), await clerks.edited()]
    return Erased(**vars(two_cases), confirmation=confirmation, farewell=farewell, told=told, cards=cards)


async def test_the_closed_cases_card_shows_it_answered(two_cases: TwoCases) -> None:
    """Who answered it and when, instead of "nobody responsible"; the deadline without a countdown."""
    received = (
        tr("lt", "Status: {status}", status=tr("lt", "Received")) + " · " + tr("lt", "nobody responsible yet")
    )
    answered = (
        tr("lt", "Status: {status}", status=tr("lt", "Answered"))
        + " · "
        + tr("lt", "closed by {name} on {date}", name="Ona", date="2026 m. lapkričio 23 d.")
    )
    counting = tr(
        "lt", "Deadline: {date} ({left})", date="2026 m. gruodžio 21 d.", left="liko 20 darbo dienų"
    )
    assert two_cases.closed_card_now.text == two_cases.closed_card.text.replace(received, answered).replace(
        counting, "Terminas: 2026 m. gruodžio 21 d."
    )
    assert two_cases.closed_card_now.buttons == ["↩️ Atnaujinti nagrinėjimą", "🌐 Paviešinti"]


async def test_forget_asks_first_and_keeping_the_profile_erases_nothing(
    two_cases: TwoCases, store: Database
) -> None:
    anna = two_cases.anna
    await anna.send("/forget")
    ask = await anna.receive_one()
    assert ask.text == tr(
        "pl",
        "<b>Erase your profile?</b>\n\n"
        "• Erased at once: your name, phone number, language, news subscriptions and any step in progress. "
        "We will send you no news, polls or questions.\n"
        "• Kept, because the law on handling submissions requires it: your cases, without your name and phone, "
        "for as long as the rules on records say (see /privacy). Answers to cases still being handled will still come here.\n"
        "• Your cases will no longer show under /cases. With /start you begin afresh.\n\n"
        "This cannot be undone.",
    )
    assert ask.buttons == ["🗑 Usuń mój profil", "Nie usuwaj"]
    await anna.click("Nie usuwaj", ask)
    assert (await anna.edited()).text == tr("pl", "Nothing was erased.")
    async with store.read() as session:
        resident = await session.get(Resident, anna.user["id"])
    assert resident is not None and (resident.display_name, resident.news_topics) == ("Anna", ["general"])


async def test_erasing_says_so_and_takes_the_menu_away(erased: Erased) -> None:
    assert erased.confirmation.text == tr("pl", "Your profile is erased.")
    assert erased.farewell.text == tr(
        "pl",
        "We will not write to you again, except the answers to cases still being handled. Send /start if you want to use the service again.",
    )
    assert erased.farewell.keyboard == {"remove_keyboard": True}  # the menu goes


async def test_only_the_open_cases_team_is_told(erased: Erased) -> None:
    assert (erased.told.text, erased.told.thread_id) == (
        tr("lt", ERASED_NOTICE, number="VRS-2026-000002"),
        erased.open_card.thread_id,
    )
    await erased.clerks.nothing_more()


async def test_both_cards_no_longer_name_her(erased: Erased) -> None:
    assert sorted(card.id for card in erased.cards) == sorted([erased.closed_card.id, erased.open_card.id])
    resident_line = tr("lt", "Resident: erased their profile; answer only about this case, in this topic")
    for card in erased.cards:
        lines = card.text.splitlines()
        assert resident_line in lines and "Gyventojas: Anna" not in lines and "Anna" not in card.text


async def test_the_profile_is_emptied_and_the_cases_kept_on_record(erased: Erased, store: Database) -> None:
    anna_id = erased.anna.user["id"]
    async with store.read() as session:
        resident = await session.get(Resident, anna_id)
        cases = list((await session.execute(select(Case).order_by(col(Case.id)))).scalars())
    assert resident is not None
    assert (
        resident.display_name,
        resident.phone,
        resident.locale,
        resident.consent_at,
        resident.news_topics,
    ) == ("", None, None, None, [])
    assert resident.erased_at is not None and resident.created_at == resident.erased_at
    assert [c.resident_id for c in cases] == [anna_id, anna_id]


async def test_her_own_command_menu_is_removed_once(erased: Erased, emulator: Emulator) -> None:
    forgotten = [r["params"] for r in emulator.requests if r["method"] == "deleteMyCommands"]
    assert [params["scope"] for params in forgotten] == [{"type": "chat", "chat_id": erased.anna.user["id"]}]


async def test_the_open_case_is_still_answered_but_satisfaction_is_not_asked(erased: Erased) -> None:
    anna, clerks, card = erased.anna, erased.clerks, erased.open_card
    await clerks.click("✅ Atsakyti ir užbaigti", card)
    await clerks.receive_one()  # "write the answer"
    await clerks.send("Zaświadczenie jest gotowe.", thread_id=card.thread_id)
    answer = await anna.receive_one()
    reopen = "The case is closed. If the matter is not settled, you can reopen it under “My cases” within {days} day."
    reopen_plural = "The case is closed. If the matter is not settled, you can reopen it under “My cases” within {days} days."
    closed = tr("pl", reopen, reopen_plural, n=14, days=14)
    assert answer.text == to_anna(
        "VRS-2026-000002", tr("pl", "The answer to your case:") + "\nZaświadczenie jest gotowe.", closed
    )  # still in Polish
    await anna.nothing_more()  # the point: no satisfaction question


async def test_a_message_to_her_closed_case_is_not_sent(erased: Erased) -> None:
    await erased.clerks.send("Jeszcze jedno", thread_id=erased.closed_card.thread_id)
    assert (await erased.clerks.receive_one()).text == tr("lt", NOT_SENT)
    await erased.anna.nothing_more()  # the point: nothing reaches Anna


async def test_back_again_she_starts_afresh_without_her_old_cases(erased: Erased) -> None:
    anna = erased.anna
    await onboard(anna, "pl")
    await anna.send("/cases")
    assert (await anna.receive_one()).text == tr(
        "pl", "You have no cases yet. To submit one, press “📝 New case”."
    )
