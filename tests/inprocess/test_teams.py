"""Teams, one behaviour a test, over the sandbox's teams (`desk`): routing by category and
eldership, a referral with its history and the resident told, a head assigning and a member
refused, a stranger refused, and a pending prompt that a note does not fulfil. (End to end,
tests/e2e/test_teams.py keeps the escalation on a frozen clock and a resident's flood.)"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col

from bot.sandbox.emulator import Emulator
from bot.store.db import Database
from bot.store.models import Case, CaseEvent, CaseStatus, EventKind
from tests.catalog import REOPEN_WITHIN, tr
from tests.support.driver import Person, Received, Telegram
from tests.support.helpers import ROADS, Desk, onboard, submit_case, wait_until

NUMBER = "VRS-2026-000001"
MUNICIPALITY_PL = "Samorząd Rejonu Wileńskiego"
REASON = "Gatvė priklauso seniūnijai"
BACK = "Vis dėlto tai rajoninis kelias"
# The card of a report in a team with a head: "Assign" beside "Take".
CARD_BUTTONS = [
    "🙋 Imuosi",
    "👤 Priskirti",
    "⚙️ Nagrinėjamas",
    "⏳ Pratęsti",
    "✅ Atsakyti ir užbaigti",
    "🔀 Perduoti komandai",
    "↪️ Kitai institucijai",
    "⛔ Atmesti",
    "🌐 Paviešinti",
    "🔗 Kreipimosi dublikatas…",
    "📣 Skelbimas apylinkei",
]


def lt(msgid: str, **values: Any) -> str:
    return tr("lt", msgid, **values)


def to_anna(*paragraphs: str) -> str:
    """A message about the case as Anna reads it (in Polish): the heading, then the paragraphs."""
    return "\n\n".join(
        [
            tr("pl", "<b>{municipality}</b> · case {number}", municipality=MUNICIPALITY_PL, number=NUMBER),
            *paragraphs,
        ]
    )


def status_line(status: str, responsible: str) -> str:
    return lt("Status: {status}", status=lt(status)) + " · " + responsible


def confirmation(locale: str, number: str, kind: str, team: str, received: str, due: str) -> str:
    """What a resident reads when the case is registered, naming the team that handles it."""
    return "\n".join(
        [
            tr(locale, "✅ <b>Your submission has been registered.</b>"),
            "",
            tr(locale, "Case number: <b>{number}</b>", number=number),
            tr(locale, "Kind: {kind}", kind=kind),
            tr(locale, "Handled by: {team}", team=team),
            tr(locale, "Received: {date}", date=received),
            tr(
                locale,
                "Answer due by: <b>{date}</b> ({left})",
                date=due[: due.index(" (")],
                left=due[due.index("(") + 1 : -1],
            ),
            "",
            tr(
                locale,
                "What happens next: a clerk of the municipality will deal with your case and answer you here. "
                "You will get a message whenever its status changes. You can follow it under “My cases”.",
            ),
        ]
    )


def card_text(
    number: str,
    heading: str,
    team: str,
    eldership: str,
    category: str,
    resident: str,
    description: str,
    language: str = "Polski",
) -> str:
    """A new case's card (in ADMIN_LOCALE, Lithuanian), nobody responsible yet."""
    return "\n".join(
        [
            f"{heading.split(' ', 1)[0]} {number} · {heading.split(' ', 1)[1]}",
            status_line("Received", lt("nobody responsible yet")),
            f"Komanda: {team}",
            f"Seniūnija: {eldership}",
            f"Sritis: {category}",
            "Gauta: 2026 m. lapkričio 23 d.",
            "Terminas: 2026 m. gruodžio 21 d. (liko 20 darbo dienų)",
            f"Gyventojas: {resident}",
            f"Kalba: {language}",
            "",
            description,
        ]
    )


@dataclass
class Reported:
    """Anna's report, in Polish, and its card in the team's group."""

    anna: Person
    confirmation: Received
    card: Received


async def report(telegram: Telegram, category: str, description: str) -> tuple[Person, Received]:
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    return anna, await submit_case(anna, "pl", "🚧 Zgłoszenie problemu", category, description)


@pytest.fixture
async def pothole(desk: Desk, telegram: Telegram) -> Reported:
    """A pothole: roads, by its category."""
    anna, confirmed = await report(telegram, "Drogi, ulice i transport", "Dziura w jezdni")
    return Reported(anna, confirmed, await desk.member.receive_one())


@pytest.fixture
async def lamp(desk: Desk, telegram: Telegram) -> Reported:
    """A street lamp out: roads too (lighting is theirs)."""
    anna, confirmed = await report(telegram, "Oświetlenie ulic", "Nie świeci latarnia")
    return Reported(anna, confirmed, await desk.member.receive_one())


# --- routing ---------------------------------------------------------------------------------


async def test_a_report_on_roads_goes_to_the_roads_department(pothole: Reported) -> None:
    assert pothole.confirmation.text == confirmation(
        "pl",
        NUMBER,
        "Zgłoszenie problemu",
        "Wydział Dróg",
        "23 listopada 2026",
        "21 grudnia 2026 (pozostało 20 dni roboczych)",
    )
    assert pothole.card.text == card_text(
        NUMBER,
        "🚧 Pranešimas apie problemą",
        "Kelių skyrius",
        "visas rajonas",
        "Keliai ir transportas",
        "Anna",
        "Dziura w jezdni",
    )
    assert pothole.card.thread_id is not None


async def test_a_request_about_an_eldership_goes_to_the_eldership(desk: Desk, telegram: Telegram) -> None:
    jonas = await telegram.resident("Jonas", language_code="lt")
    await onboard(jonas, "lt")
    confirmed = await submit_case(
        jonas, "lt", "📄 Prašymas", "Kiti klausimai", "Prašau pažymos", eldership="Avižieniai"
    )
    assert confirmed.text == confirmation(
        "lt",
        NUMBER,
        "Prašymas",
        "Avižienių seniūnija",
        "2026 m. lapkričio 23 d.",
        "2026 m. gruodžio 21 d. (liko 20 darbo dienų)",
    )
    card = await desk.eldership.receive_one()
    assert card.text == card_text(
        NUMBER,
        "📄 Prašymas",
        "Avižienių seniūnija",
        "Avižieniai",
        "Kiti klausimai",
        "Jonas",
        "Prašau pažymos",
        "Lietuvių",
    )


async def test_a_case_no_rule_names_goes_to_the_front_office(desk: Desk, telegram: Telegram) -> None:
    marta = await telegram.resident("Marta", language_code="pl")
    await onboard(marta, "pl")
    confirmed = await submit_case(marta, "pl", "📄 Wniosek", "Inne sprawy", "Proszę o informację")
    assert confirmed.text == confirmation(
        "pl",
        NUMBER,
        "Wniosek",
        "Biuro Obsługi Mieszkańców",
        "23 listopada 2026",
        "21 grudnia 2026 (pozostało 20 dni roboczych)",
    )
    card = await desk.front.receive_one()
    assert card.text == card_text(
        NUMBER,
        "📄 Prašymas",
        "Gyventojų aptarnavimo skyrius",
        "visas rajonas",
        "Kiti klausimai",
        "Marta",
        "Proszę o informację",
    )


# --- a referral ------------------------------------------------------------------------------


@dataclass
class Passed:
    """Anna's pothole passed by roads (Petras) to the eldership, with a note before."""

    reported: Reported
    last_line: Received  # in the roads group's topic
    card: Received  # in the eldership's group
    history: Received


async def pass_to(clerk: Person, card: Received, team: str, reason: str) -> None:
    await clerk.click("🔀 Perduoti komandai", card)
    await clerk.click(team, await clerk.receive_one())
    await clerk.edited()
    await clerk.receive_one()  # the prompt for the reason
    await clerk.send(reason, thread_id=card.thread_id)


@pytest.fixture
async def passed(desk: Desk, pothole: Reported) -> Passed:
    await desk.member.send("!Sprawdzić z seniūnija", thread_id=pothole.card.thread_id)
    await pass_to(desk.member, pothole.card, "Avižienių seniūnija", REASON)
    last_line = await desk.member.receive_one()
    card, history = await desk.eldership.receive(2)
    return Passed(pothole, last_line, card, history)


async def test_passing_offers_the_other_teams_then_asks_why(desk: Desk, pothole: Reported) -> None:
    await desk.member.click("🔀 Perduoti komandai", pothole.card)
    choice = await desk.member.receive_one()
    assert choice.text == lt("{number}: to which team?", number=NUMBER)
    assert choice.buttons == [
        "Gyventojų aptarnavimo skyrius",
        "Avižienių seniūnija",
        "Direktoriaus kabinetas",
        "✖️ Atšaukti",
    ]
    await desk.member.click("Avižienių seniūnija", choice)
    await desk.member.edited()
    assert (await desk.member.receive_one()).text == "\n\n".join(
        [
            lt(
                "{number}: write why the case goes to {team}. The team and the resident will see it.",
                number=NUMBER,
                team="Avižienių seniūnija",
            ),
            lt("⏳ Waiting for your answer to {number} ({minutes} min).", number=NUMBER, minutes=10),
        ]
    )


async def test_the_old_topic_gets_a_last_line_and_is_closed(passed: Passed, telegram: Telegram) -> None:
    passed_on = (
        "🔀 {name} passed {number} to {team}: {reason}\nThe case continues there; this topic is closed."
    )
    assert passed.last_line.text == lt(
        passed_on, name="Petras", number=NUMBER, team="Avižienių seniūnija", reason=REASON
    )
    assert passed.last_line.thread_id == passed.reported.card.thread_id

    async def old_topic_closed() -> bool:
        return (await telegram.chat(ROADS))["topics"][0].get("is_closed") is True

    await wait_until(old_topic_closed, what="the roads group's topic to be closed")


async def test_the_new_team_gets_the_card_and_the_history_with_the_notes(passed: Passed) -> None:
    assert passed.card.text == card_text(
        NUMBER,
        "🚧 Pranešimas apie problemą",
        "Avižienių seniūnija",
        "visas rajonas",
        "Keliai ir transportas",
        "Anna",
        "Dziura w jezdni",
    )
    assert passed.card.thread_id is not None and passed.history.thread_id == passed.card.thread_id
    head, trail = passed.history.text.split("\n\n")
    assert head == lt("🔀 Passed on by {team}: {reason}", team="Kelių skyrius", reason=REASON)
    assert [line.split(" · ", 2)[2] for line in trail.splitlines()[1:]] == [
        lt("case received"),
        lt("note: {text}", text="Sprawdzić z seniūnija"),  # the note travels with the case
        lt(
            "passed from {source} to {target} ({reason})",
            source="Kelių skyrius",
            target="Avižienių seniūnija",
            reason=REASON,
        ),
    ]


async def test_the_resident_is_told_who_handles_the_case_now_why_and_that_the_deadline_stays(
    passed: Passed,
) -> None:
    """The clerk was told that the resident sees the reason: she does."""
    moved = "Your case is now handled by: {team}. The deadline for the answer stays {due}."
    assert (await passed.reported.anna.receive_one()).text == to_anna(
        tr("pl", moved, team="Starostwo Awiżenie", due="21 grudnia 2026 (pozostało 20 dni roboczych)"),
        tr("pl", "Reason: {reason}", reason=REASON),
    )


def moved_away() -> str:
    return lt(
        "{number} was passed on to {team} and is handled in its group now; nothing was done or sent from here.",
        number=NUMBER,
        team="Avižienių seniūnija",
    )


async def test_the_old_card_loses_its_buttons_and_says_where_the_case_went(
    passed: Passed, emulator: Emulator
) -> None:
    old = passed.reported.card

    def old_card_now() -> dict[str, Any]:
        return emulator.chats[ROADS].messages[old.id]

    await wait_until(lambda: "reply_markup" not in old_card_now(), what="the old card's buttons to go")
    assert old_card_now()["text"].split("\n\n")[0] == lt(
        "🔀 Passed on to {team}: the case is handled in its group now.", team="Avižienių seniūnija"
    )
    assert lt("Team: {team}", team="Avižienių seniūnija") in old_card_now()["text"]


async def test_an_old_cards_button_says_where_the_case_is_now(
    desk: Desk, passed: Passed, store: Database
) -> None:
    await desk.member.forge_button(
        "dk:take:1", passed.reported.card
    )  # pressed before the card lost its buttons
    assert (await desk.member.answer())["text"] == moved_away()
    async with store.read() as session:
        case = (await session.execute(select(Case))).scalar_one()
    assert (case.status, case.assignee_name) == (CaseStatus.NEW, None)


async def test_writing_in_the_closed_topic_says_where_the_case_is_and_sends_nothing(
    desk: Desk, passed: Passed, store: Database
) -> None:
    anna = passed.reported.anna
    await anna.receive_one()  # told who handles it now
    await desk.member.send("Ar jau sutvarkyta?", thread_id=passed.reported.card.thread_id)
    told = await desk.member.receive_one()  # in the group's main chat: the bot cannot write in a closed topic
    text = "{name}: {number} was passed on to {team} and is handled in its group now; your message in its old topic was not sent to anyone."
    assert (told.text, told.thread_id) == (
        lt(text, name="Petras", number=NUMBER, team="Avižienių seniūnija"),
        None,
    )
    await anna.nothing_more()  # the point: nothing reaches Anna
    async with store.read() as session:
        sent = (
            (await session.execute(select(CaseEvent).where(col(CaseEvent.kind) == EventKind.MESSAGE_OUT)))
            .scalars()
            .all()
        )
    assert sent == []


async def test_passed_back_the_case_opens_a_new_topic_and_keeps_its_deadline(
    desk: Desk, passed: Passed, store: Database
) -> None:
    await pass_to(desk.eldership, passed.card, "Kelių skyrius", BACK)
    back, _history = await desk.member.receive(2)
    assert back.text == passed.reported.card.text  # the same card, in a new topic
    assert back.thread_id not in (passed.reported.card.thread_id, None)
    async with store.read() as session:
        case = (await session.execute(select(Case).where(col(Case.number) == NUMBER))).scalar_one()
        passes = (
            (
                await session.execute(
                    select(CaseEvent)
                    .where(col(CaseEvent.kind) == EventKind.PASSED)
                    .order_by(col(CaseEvent.id))
                )
            )
            .scalars()
            .all()
        )
    assert (case.team_id, case.group_chat_id, case.deadline) == ("roads", ROADS, date(2026, 12, 21))
    assert all(p.data is not None for p in passes)
    assert [(p.data["from"], p.data["to"], p.actor_name, p.text) for p in passes if p.data is not None] == [
        ("roads", "avizieniai", "Petras", REASON),
        ("avizieniai", "roads", "Aldona", BACK),
    ]


# --- who may act -----------------------------------------------------------------------------


async def test_a_team_with_a_head_has_assign_on_its_cards(lamp: Reported) -> None:
    assert lamp.card.buttons == CARD_BUTTONS


async def test_a_member_may_not_assign(desk: Desk, lamp: Reported) -> None:
    await desk.member.click("👤 Priskirti", lamp.card)
    assert (await desk.member.answer())["text"] == lt("Only the team's head can do this.")


async def test_a_clerk_of_another_team_may_not_even_take(
    desk: Desk, lamp: Reported, caplog: pytest.LogCaptureFixture
) -> None:
    stranger = desk.front.in_chat(ROADS)
    await stranger.forge_button("dk:take:1", lamp.card)
    assert (await stranger.answer())["text"] == lt("Only the team handling this case can do this.")
    refusals = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [(r.getMessage(), getattr(r, "user_id", None)) for r in refusals] == [
        ("staff action refused", stranger.user["id"])
    ]


@dataclass
class Assigned:
    reported: Reported
    question: Received  # "who is responsible?", in the group
    assigned: Received  # the group told


@pytest.fixture
async def assigned(desk: Desk, lamp: Reported) -> Assigned:
    """Rimas, the head, makes Petras responsible."""
    await desk.head.click("👤 Priskirti", lamp.card)
    question = (
        await desk.member.receive_one()
    )  # everybody in the group sees the question; the head answers it
    await desk.head.click("Petras", question)
    return Assigned(lamp, question, await desk.member.receive_one())


async def test_the_head_assigns_a_member_and_the_group_is_told(desk: Desk, assigned: Assigned) -> None:
    question = assigned.question
    assert (question.text, question.buttons) == (
        lt("{number}: who is responsible?", number=NUMBER),
        ["Rimas", "Petras", "✖️ Atšaukti"],
    )
    assert assigned.assigned.text == lt(
        "👤 {head} made {name} responsible for {number}.", head="Rimas", name="Petras", number=NUMBER
    )
    edits = {edit.id: edit for edit in [await desk.member.edited(), await desk.member.edited()]}
    assert (edits[question.id].text, edits[question.id].buttons) == (
        question.text,
        [],
    )  # the question loses its buttons
    card = assigned.reported.card
    received = status_line("Received", lt("nobody responsible yet"))
    assert edits[card.id].text == card.text.replace(
        received, status_line("Assigned to a clerk", lt("responsible: {name}", name="Petras"))
    )


async def test_the_resident_is_told_a_clerk_has_the_case(assigned: Assigned) -> None:
    assert (await assigned.reported.anna.receive_one()).text == to_anna(
        tr("pl", "Status: {status}", status=tr("pl", "Assigned to a clerk"))
    )


async def test_mine_lists_the_cases_a_clerk_is_responsible_for(desk: Desk, assigned: Assigned) -> None:
    await desk.member.send("/mine")
    mine = await desk.member.receive_one()
    line = " · ".join(
        [
            "🚧 VRS-2026-000001",
            lt("Assigned to a clerk"),
            "2026 m. gruodžio 21 d. (liko 20 darbo dienų)",
            "Petras",
        ]
    )
    assert mine.text == lt("<b>Your open cases</b>:") + "\n" + line


async def test_team_shows_each_members_load(desk: Desk, assigned: Assigned) -> None:
    await desk.head.send("/team")
    load = await desk.member.receive_one()
    assert load.text == "\n".join(
        [
            lt("<b>{team}</b>: {count} open", team="Kelių skyrius", count=1),
            lt("👤 {name}: {count} open, {overdue} overdue", name="Petras", count=1, overdue=0),
        ]
    )


# --- a pending prompt ------------------------------------------------------------------------


@pytest.fixture
async def prompted(desk: Desk, assigned: Assigned) -> Assigned:
    """Petras pressed "Answer and close": the bot waits for his answer."""
    await desk.member.click("✅ Atsakyti ir užbaigti", assigned.reported.card)
    await desk.member.receive_one()  # the prompt
    await assigned.reported.anna.receive_one()  # told of the assignment
    return assigned


async def status(store: Database) -> str:
    async with store.read() as session:
        return (await session.execute(select(Case))).scalar_one().status


async def test_a_note_does_not_fulfil_the_prompt(desk: Desk, prompted: Assigned, store: Database) -> None:
    await desk.member.send("!paklausti rangovo", thread_id=prompted.reported.card.thread_id)
    await prompted.reported.anna.nothing_more()  # the point: nothing reaches Anna meanwhile
    assert await status(store) == CaseStatus.ASSIGNED


async def test_another_clerks_message_is_a_message_not_the_answer(
    desk: Desk, prompted: Assigned, store: Database
) -> None:
    await desk.head.send("Rangovas atvyks rytoj.", thread_id=prompted.reported.card.thread_id)
    message = await prompted.reported.anna.receive_one()
    assert message.text == to_anna(tr("pl", "Message from the clerk:") + "\nRangovas atvyks rytoj.")
    await prompted.reported.anna.nothing_more()  # the point: the case is not closed
    assert await status(store) == CaseStatus.ASSIGNED


async def test_after_a_note_the_prompted_answer_closes_the_case(
    desk: Desk, prompted: Assigned, store: Database
) -> None:
    anna, thread = prompted.reported.anna, prompted.reported.card.thread_id
    await desk.member.send("!paklausti rangovo", thread_id=thread)
    await desk.member.send("Latarnia naprawiona.", thread_id=thread)
    answer, _question = await anna.receive(2)
    assert answer.text == to_anna(
        tr("pl", "The answer to your case:") + "\nLatarnia naprawiona.",
        tr("pl", *REOPEN_WITHIN, n=14, days=14),
    )
    async with store.read() as session:
        case = (await session.execute(select(Case))).scalar_one()
        notes = (
            (await session.execute(select(col(CaseEvent.text)).where(col(CaseEvent.kind) == EventKind.NOTE)))
            .scalars()
            .all()
        )
    assert (case.status, case.assignee_name) == (CaseStatus.ANSWERED, "Petras")
    assert notes == ["paklausti rangovo"]
