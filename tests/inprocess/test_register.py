"""A case that came by phone, registered by a clerk with /register in the front office's group, one
behaviour a test: the form, the case routed to the roads department with the person's contact on
its card, nothing sent to anybody's Telegram, and closed recording that the answer was given by phone."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import select
from sqlmodel import col

from bot.services.outbox import NO_CHAT
from bot.store.db import Database
from bot.store.models import Case, CaseEvent, CaseStatus, EventKind, OutboxMessage
from tests.catalog import tr
from tests.conftest import ADMIN_CHAT_ID
from tests.support.driver import Person, Received
from tests.support.helpers import PHOTO, ROADS, Desk

NUMBER = "VRS-2026-000001"
CAME = ["📞 Telefonu", "✉️ El. paštu", "📮 Paštu", "🏢 Aptarnavimo skyriuje", "✖️ Atšaukti"]
ANSWER_BY = ["📞 Telefonu", "✉️ El. paštu", "📮 Paštu", "🤝 Asmeniškai", "✖️ Atšaukti"]
NAME = "Jonas <Jonaitis>"  # as typed: shown escaped, never taken for HTML
PHONE = "+370 600 12345"
DESCRIPTION = "Gili duobė Mokyklos gatvėje prie autobusų stotelės"
ANSWER = "Duobė bus užtaisyta iki penktadienio"
BY_PHONE = tr("lt", "by phone")


def lt(msgid: str, plural: str | None = None, n: int = 1, **values: object) -> str:
    return tr("lt", msgid, plural, n, **values)


def card_text(
    status: str,
    *closing: str,
    responsible: str = "",
    deadline: str = "Terminas: 2026 m. gruodžio 21 d. (liko 20 darbo dienų)",
) -> str:
    """The roads department's card (in ADMIN_LOCALE, Lithuanian): the person's contact instead of a resident."""
    return "\n".join(
        [
            "🚧 VRS-2026-000001 · Pranešimas apie problemą",
            lt("Status: {status}", status=lt(status)) + " · " + (responsible or lt("nobody responsible yet")),
            "Komanda: Kelių skyrius",
            "Seniūnija: visas rajonas",
            "Sritis: Keliai ir transportas",
            "Gauta: 2026 m. lapkričio 23 d.",
            deadline,
            lt("Person: {name} (no Telegram)", name=NAME),
            "Atsakyti telefonu: 📞 " + PHONE,
            lt("Registered by {clerk}, received {how}", clerk="Ona", how=BY_PHONE),
            *closing,
            "",
            DESCRIPTION,
        ]
    )


async def choose(ona: Person, label: str, question: Received) -> Received:
    """Press a button of the form: the question shows the choice, and the next one comes."""
    await ona.click(label, question)
    await ona.edited()
    return await ona.receive_one()


async def up_to_how(ona: Person) -> Received:
    """/register, up to the question how to answer the person (with a photo attached)."""
    await ona.send("/register")
    question = await choose(ona, "📞 Telefonu", await ona.receive_one())
    for label in ("🚧 Pranešimas apie problemą", "Keliai ir transportas", "🗺 Visas rajonas"):
        question = await choose(ona, label, question)
    await ona.send(DESCRIPTION)
    await ona.receive_one()
    await ona.send_photo(PHOTO, caption="Atsiuntė el. paštu")
    await choose(ona, "✅ Baigta", await ona.receive_one())
    await ona.send(NAME)
    return await ona.receive_one()


async def up_to_the_phone(ona: Person) -> Received:
    """/register, up to the question of the person's phone number."""
    return await choose(ona, "📞 Telefonu", await up_to_how(ona))


@dataclass
class Registered:
    ona: Person
    confirmation: Received
    card: Received
    photo: Received


@pytest.fixture
async def summary(desk: Desk) -> Received:
    """The form filled in, up to the summary to register."""
    await up_to_the_phone(desk.front)
    await desk.front.send(PHONE)
    return await desk.front.receive_one()


@pytest.fixture
async def registered(desk: Desk, summary: Received) -> Registered:
    """Registered: the confirmation in the front office, the card and the file in the roads department's group."""
    await desk.front.click("✅ Užregistruoti", summary)
    await desk.front.edited()
    confirmation = await desk.front.receive_one()
    card, photo = await desk.member.receive(2)
    return Registered(desk.front, confirmation, card, photo)


@pytest.fixture
async def answered_by_phone(desk: Desk, registered: Registered) -> Received:
    """Closed by Petras recording the answer he gave by phone; the card as it is then."""
    petras, card = desk.member, registered.card
    await petras.click("✅ Atsakyti ir užbaigti", card)
    await petras.click("📞 Telefonu", await petras.receive_one())
    await petras.edited()
    await petras.receive_one()  # the prompt for the answer
    await petras.send(ANSWER, thread_id=card.thread_id)
    await petras.edited()  # the prompt: its "Cancel" goes once answered
    return await petras.edited()


async def test_a_registration_started_by_one_clerk_refuses_another_clerks_press(desk: Desk) -> None:
    await desk.front.send("/register")
    first = await desk.front.receive_one()
    other = desk.head.in_chat(ADMIN_CHAT_ID)
    await other.click("📞 Telefonu", first)
    assert (await other.answer())["text"] == lt(
        "This registration was started by another clerk, or it has ended."
    )


async def test_cancelling_a_registration_stores_nothing(desk: Desk, store: Database) -> None:
    await desk.front.send("/register")
    await desk.front.click("✖️ Atšaukti", await desk.front.receive_one())
    assert (await desk.front.edited()).text == lt("Registration cancelled. Nothing was stored.")
    async with store.read() as session:
        assert (await session.execute(select(Case))).scalars().all() == []


async def test_the_form_asks_how_it_came_what_it_is_and_what_the_person_said(desk: Desk) -> None:
    ona = desk.front
    await ona.send("/register")
    came = await ona.receive_one()
    assert (came.text, came.buttons) == (
        lt("<b>Registering a case</b> that came outside Telegram. How did it come in?"),
        CAME,
    )
    await ona.click("📞 Telefonu", came)
    assert (await ona.edited()).text == lt("Received {how}", how=BY_PHONE)
    asked = [await ona.receive_one()]
    for label in ("🚧 Pranešimas apie problemą", "Keliai ir transportas", "🗺 Visas rajonas"):
        asked.append(await choose(ona, label, asked[-1]))
    *questions, describe = asked
    assert [question.text for question in questions] == [
        lt("What kind of case is it?"),
        lt("What is it about?"),
        lt("Which eldership does it concern?"),
    ]
    assert describe.text == lt(
        "Write the matter as the person put it ({min} to {max} character).",
        "Write the matter as the person put it ({min} to {max} characters).",
        3000,
        min=10,
        max=3000,
    )


async def test_text_where_a_button_is_expected_brings_the_question_again(desk: Desk) -> None:
    """The clerk writes instead of pressing (the question may be far up, or never arrived): a
    hint, the same question with its buttons, and the draft goes on from there."""
    ona = desk.front
    await ona.send("/register")
    kind = await choose(ona, "📞 Telefonu", await ona.receive_one())
    await ona.send("pranešimas apie duobę")
    hint, again = await ona.receive(2)
    assert hint.text == lt("Please answer with the buttons of the question below, or “✖️ Cancel”.")
    assert (again.text, again.buttons) == (kind.text, kind.buttons)
    assert (await choose(ona, "🚧 Pranešimas apie problemą", again)).text == lt("What is it about?")


async def test_files_are_counted_as_they_come(desk: Desk) -> None:
    ona = desk.front
    await ona.send("/register")
    question = await choose(ona, "📞 Telefonu", await ona.receive_one())
    for label in ("🚧 Pranešimas apie problemą", "Keliai ir transportas", "🗺 Visas rajonas"):
        question = await choose(ona, label, question)
    await ona.send(DESCRIPTION)
    files = await ona.receive_one()
    assert (files.text, files.buttons) == (
        lt(
            "Send photos or scanned documents (up to {max} file), or press “No files”.",
            "Send photos or scanned documents (up to {max} files), or press “No files”.",
            10,
            max=10,
        ),
        ["⏭ Be failų", "✖️ Atšaukti"],
    )
    await ona.send_photo(PHOTO, caption="Atsiuntė el. paštu")
    attached = await ona.receive_one()
    assert (attached.text, attached.buttons) == (
        tr("lt", "{count} file attached.", "{count} files attached.", 1, count=1),
        ["✅ Baigta", "✖️ Atšaukti"],
    )
    await ona.click("✅ Baigta", attached)
    assert (await ona.edited()).text == lt("Files: {count}", count=1)
    assert (await ona.receive_one()).text == lt("The person's name and surname?")


async def test_asking_how_to_answer_the_person(desk: Desk) -> None:
    how = await up_to_how(desk.front)
    assert (how.text, how.buttons) == (lt("How is the person to be answered?"), ANSWER_BY)


async def test_a_phone_number_that_is_not_one_is_asked_again(desk: Desk) -> None:
    ona = desk.front
    assert (await up_to_the_phone(ona)).text == lt("The person's phone number?")
    await ona.send("pasakė, kad neturi")
    again = await ona.receive_one()
    assert again.text == lt(
        "This does not look like a phone number; please write it with digits, e.g. +370 600 12345."
    )
    assert again.buttons == ["✖️ Atšaukti"]


async def test_the_summary_shows_the_case_the_person_and_how_to_answer(summary: Received) -> None:
    assert summary.text == "\n".join(
        [
            lt("<b>Please check the case before registering it</b>"),
            "",
            lt("Received {how}", how=BY_PHONE),
            lt("Kind: {kind}", kind="Pranešimas apie problemą"),
            lt("Category: {name}", name="Keliai ir transportas"),
            lt("Eldership: {name}", name=lt("whole district")),
            lt("Files: {count}", count=1),
            lt("Person: {name} (no Telegram)", name=NAME),
            lt("Answer {how}", how=BY_PHONE) + ": " + PHONE,
            "",
            DESCRIPTION,
        ]
    )
    assert summary.buttons == ["✅ Užregistruoti", "✖️ Atšaukti"]


async def test_registering_tells_the_clerk_the_number_and_the_team_the_rules_chose(
    registered: Registered,
) -> None:
    team = "Kelių skyrius"
    assert registered.confirmation.text == "\n".join(
        [
            lt("✅ Case <b>{number}</b> registered.", number=NUMBER),
            lt("Handled by: {team}", team=team),
            lt("Deadline: {date} ({left})", date="2026 m. gruodžio 21 d.", left="liko 20 darbo dienų"),
            lt("The routing rules sent it to {team}: its card is in that team's group.", team=team),
            "",
            lt(
                "Tell the person the case number and the deadline. When the case is closed, record how the answer was given."
            ),
        ]
    )


async def test_the_team_gets_the_card_with_whom_to_answer_and_how_and_the_file_in_its_topic(
    registered: Registered,
) -> None:
    card, photo = registered.card, registered.photo
    assert card.text == card_text("Received")
    assert card.thread_id is not None and (photo.thread_id, bool(photo.raw["photo"])) == (
        card.thread_id,
        True,
    )


async def test_writing_in_the_topic_reaches_nobody_and_says_to_answer_outside_telegram(
    desk: Desk, registered: Registered
) -> None:
    await desk.member.send("Sveiki, duobę užtaisysime", thread_id=registered.card.thread_id)
    refusal = await desk.member.receive_one()
    assert refusal.text == lt(
        "Not sent: the person of this case has no Telegram. Answer them as the card says (phone, e-mail, post or in person), "
        "then close the case recording how the answer was given. Start a message with ! for an internal note."
    )


async def test_closing_asks_how_the_answer_was_given_then_the_answer_for_the_record(
    desk: Desk, registered: Registered
) -> None:
    petras = desk.member
    await petras.click("✅ Atsakyti ir užbaigti", registered.card)
    question = await petras.receive_one()
    assert (question.text, question.buttons) == (
        lt("{number}: how was the answer given?", number=NUMBER),
        ANSWER_BY,
    )
    await petras.click("📞 Telefonu", question)
    await petras.edited()
    prompt = await petras.receive_one()
    assert prompt.text == "\n\n".join(
        [
            lt(
                "{number}: write the answer given {how}, for the case's record. The case is then closed.",
                number=NUMBER,
                how=BY_PHONE,
            ),
            lt("⏳ Waiting for your answer to {number} ({minutes} min).", number=NUMBER, minutes=10),
        ]
    )


async def test_the_closed_card_says_how_the_answer_was_given(
    registered: Registered, answered_by_phone: Received
) -> None:
    assert answered_by_phone.id == registered.card.id
    closed = lt("closed by {name} on {date}", name="Petras", date="2026 m. lapkričio 23 d.")
    assert answered_by_phone.text == card_text(
        "Answered",
        lt("Answer given {how}", how=BY_PHONE),
        responsible=closed,
        deadline="Terminas: 2026 m. gruodžio 21 d.",
    )
    assert answered_by_phone.buttons == [
        "↩️ Atnaujinti nagrinėjimą",
        "🌐 Paviešinti",
    ]  # a report: the clerks may publish it (Open311)


async def test_the_case_is_recorded_as_registered_by_the_clerk_and_answered_by_phone(
    desk: Desk, answered_by_phone: Received, store: Database
) -> None:
    async with store.read() as session:
        case = (await session.execute(select(Case))).scalar_one()
        events = (await session.execute(select(CaseEvent).order_by(col(CaseEvent.id)))).scalars().all()
    assert (case.channel, case.resident_id, case.team_id, case.status, case.answered_via) == (
        "staff",
        None,
        "roads",
        CaseStatus.ANSWERED,
        "phone",
    )
    assert case.contact == {"name": NAME, "answer_by": "phone", "phone": PHONE}
    created, status = events[0], events[-1]
    assert (created.kind, created.actor_id, created.actor_name) == (
        EventKind.CREATED,
        desk.front.user["id"],
        "Ona",
    )
    assert created.data == {"team": "roads", "channel": "staff", "received_by": "phone"}
    assert (status.kind, status.actor_name, status.text) == (EventKind.STATUS, "Petras", ANSWER)
    assert status.data == {"from": "new", "to": "answered", "answered_via": "phone"}


async def test_nothing_goes_to_anybodys_telegram_but_the_teams_group(
    answered_by_phone: Received, store: Database
) -> None:
    async with store.read() as session:
        case = (await session.execute(select(Case))).scalar_one()
        chats = set(
            (
                await session.execute(
                    select(col(OutboxMessage.chat_id)).where(col(OutboxMessage.chat_id) != NO_CHAT)
                )
            ).scalars()
        )  # not the file downloads
    assert (case.feedback_asked, chats) == (
        False,
        {ROADS},
    )  # no survey; only the roads group was ever written to
