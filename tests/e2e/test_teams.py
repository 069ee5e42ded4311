"""Teams through the emulator: routing by category and eldership, a referral with its history and
the resident told, a head assigning and a member refused, a stranger refused, a pending prompt
that a note does not fulfil, escalation on a frozen clock, and a resident's flood."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.sandbox.emulator import Emulator
from bot.sandbox.run import teams_file
from bot.store.db import Database
from bot.store.models import Case, CaseEvent, CaseStatus, EventKind, Resident
from tests.catalog import tr
from tests.conftest import ADMIN_CHAT_ID
from tests.e2e.conftest import BotProcess
from tests.e2e.driver import NothingReceived, Person, Telegram
from tests.e2e.helpers import onboard, submit_case, wait_until

ROADS, AVIZIENIAI, DIRECTOR = -1001000000011, -1001000000012, -1001000000013


@dataclass
class Desk:
    bot: BotProcess
    """The sandbox's teams (bot/sandbox/run.py), each person reading their team's group."""

    front: Person  # Ona: the front office lists nobody, so its group's members act
    head: Person  # Rimas, head of roads
    member: Person  # Petras, roads
    eldership: Person  # Aldona, Avižieniai eldership
    director: Person  # Vida, the director's office (the escalation team)


async def start_desk(emulator: Emulator, telegram: Telegram, settings_env: dict[str, str], tmp_path: Path, **env: str) -> Desk:
    people = {name: await telegram.person(name) for name in ("Ona", "Rimas", "Petras", "Aldona", "Vida")}
    for chat_id, title, names in ((ROADS, "Roads", ["Rimas", "Petras"]), (AVIZIENIAI, "Avižieniai", ["Aldona"]), (DIRECTOR, "Director", ["Vida"])):
        emulator.add_group(title, forum=chat_id != DIRECTOR, chat_id=chat_id, members=[people[n].user["id"] for n in names])
    emulator.chats[ADMIN_CHAT_ID].members.add(people["Ona"].user["id"])
    ids = {name: person.user["id"] for name, person in people.items()}
    path = teams_file(
        tmp_path / "municipality.toml", front=ADMIN_CHAT_ID, roads=ROADS, eldership=AVIZIENIAI, director=DIRECTOR,
        roads_heads=[ids["Rimas"]], roads_members=[ids["Petras"]], eldership_members=[ids["Aldona"]], director_heads=[ids["Vida"]],
    )  # fmt: skip
    bot = BotProcess(emulator, {**settings_env, "MUNICIPALITY_FILE": str(path), **env}, tmp_path / "bot.log")
    await bot.start()
    return Desk(
        bot, people["Ona"].in_chat(ADMIN_CHAT_ID), people["Rimas"].in_chat(ROADS), people["Petras"].in_chat(ROADS),
        people["Aldona"].in_chat(AVIZIENIAI), people["Vida"].in_chat(DIRECTOR),
    )  # fmt: skip


@pytest.fixture
async def desk(emulator: Emulator, telegram: Telegram, settings_env, tmp_path):
    desk = await start_desk(emulator, telegram, settings_env, tmp_path)
    yield desk
    await desk.bot.stop()
    assert not desk.bot.refused_requests(), "the bot sent a request Telegram refuses"


async def test_routing_by_category_and_eldership_and_a_referral(desk: Desk, telegram: Telegram, store: Database) -> None:
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    confirmation = await submit_case(anna, "pl", "🚧 Zgłoszenie problemu", "Drogi, ulice i transport", "Dziura w jezdni")
    assert "Sprawę prowadzi: Wydział Dróg" in confirmation.text
    card = await desk.member.receive_one()
    assert card.text.startswith("🚧 VRS-2026-000001") and card.thread_id is not None

    jonas = await telegram.resident("Jonas", language_code="lt")
    await onboard(jonas, "lt")
    confirmation = await submit_case(jonas, "lt", "📄 Prašymas", "Kiti klausimai", "Prašau pažymos", eldership="Avižieniai")
    assert "Nagrinėja: Avižienių seniūnija" in confirmation.text
    assert (await desk.eldership.receive_one()).text.startswith("📄 VRS-2026-000002")

    marta = await telegram.resident("Marta", language_code="pl")
    await onboard(marta, "pl")
    confirmation = await submit_case(marta, "pl", "📄 Wniosek", "Inne sprawy", "Proszę o informację")
    assert "Sprawę prowadzi: Biuro Obsługi Mieszkańców" in confirmation.text
    assert (await desk.front.receive_one()).text.startswith("📄 VRS-2026-000003")

    # Roads passes Anna's case to the eldership, with a reason.
    await desk.member.send("!Sprawdzić z seniūnija", thread_id=card.thread_id)
    await desk.member.click("🔀 Perduoti komandai", card)
    choice = await desk.member.receive_one()
    assert choice.text == "VRS-2026-000001: kuriai komandai?"
    assert choice.buttons == ["Gyventojų aptarnavimo skyrius", "Avižienių seniūnija", "Direktoriaus kabinetas", "✖ Atšaukti"]
    await desk.member.click("Avižienių seniūnija", choice)
    await desk.member.edited()
    await desk.member.receive_one()  # the prompt for the reason
    await desk.member.send("Gatvė priklauso seniūnijai", thread_id=card.thread_id)

    last_line = await desk.member.receive_one()
    passed = "🔀 {name} passed {number} to {team}: {reason}\nThe case continues there; this topic is closed."
    assert last_line.text == tr("lt", passed, name="Petras", number="VRS-2026-000001", team="Avižienių seniūnija", reason="Gatvė priklauso seniūnijai")
    new_card, history = await desk.eldership.receive(2)
    assert new_card.text.splitlines()[0] == "🚧 VRS-2026-000001 · Pranešimas apie problemą" and new_card.thread_id is not None
    assert history.thread_id == new_card.thread_id
    head, trail = history.text.split("\n\n")
    assert head == tr("lt", "🔀 Passed on by {team}: {reason}", team="Kelių skyrius", reason="Gatvė priklauso seniūnijai")
    assert [line.split(" · ", 2)[2] for line in trail.splitlines()[1:]] == [
        tr("lt", "case received"),
        tr("lt", "note: {text}", text="Sprawdzić z seniūnija"),  # the note travels with the case
        tr("lt", "passed from {source} to {target} ({reason})", source="Kelių skyrius", target="Avižienių seniūnija", reason="Gatvė priklauso seniūnijai"),
    ]
    told = await anna.receive_one()
    heading = tr("pl", "<b>{municipality}</b> · case {number}", municipality="Samorząd Rejonu Wileńskiego", number="VRS-2026-000001")
    moved = tr(
        "pl",
        "Your case is now handled by: {team}. The deadline for the answer stays {due}.",
        team="Starostwo Awiżenie",
        due="21 grudnia 2026 (pozostało 20 dni roboczych)",
    )
    assert told.text == heading + "\n\n" + moved

    async def old_topic_closed() -> bool:
        return (await telegram.chat(ROADS))["topics"][0].get("is_closed") is True

    await wait_until(old_topic_closed, what="the roads group's topic to be closed")

    # The eldership passes it back: a new topic in the roads group.
    await desk.eldership.click("🔀 Perduoti komandai", new_card)
    await desk.eldership.click("Kelių skyrius", await desk.eldership.receive_one())
    await desk.eldership.edited()
    await desk.eldership.receive_one()
    await desk.eldership.send("Vis dėlto tai rajoninis kelias", thread_id=new_card.thread_id)
    back, _history = await desk.member.receive(2)
    assert back.text.startswith("🚧 VRS-2026-000001") and back.thread_id not in (card.thread_id, None)

    async with store.read() as session:
        case = (await session.execute(select(Case).where(Case.number == "VRS-2026-000001"))).scalar_one()
        passes = (await session.execute(select(CaseEvent).where(CaseEvent.kind == EventKind.PASSED).order_by(CaseEvent.id))).scalars().all()
    assert (case.team_id, case.group_chat_id, case.deadline) == ("roads", ROADS, date(2026, 12, 21))
    assert [(p.data["from"], p.data["to"], p.actor_name, p.text) for p in passes] == [
        ("roads", "avizieniai", "Petras", "Gatvė priklauso seniūnijai"),
        ("avizieniai", "roads", "Aldona", "Vis dėlto tai rajoninis kelias"),
    ]


async def test_who_may_act_and_a_prompt_a_note_does_not_fulfil(desk: Desk, telegram: Telegram, store: Database) -> None:
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    await submit_case(anna, "pl", "🚧 Zgłoszenie problemu", "Oświetlenie ulic", "Nie świeci latarnia")
    card = await desk.member.receive_one()
    assert "👤 Priskirti" in card.buttons  # the team has a head

    # A member may not assign; a stranger may not even take.
    await desk.member.click("👤 Priskirti", card)
    assert (await desk.member.answer())["text"] == "Tai gali padaryti tik komandos vadovas."
    stranger = desk.front.in_chat(ROADS)
    await stranger.forge_button("dk:take:1", card)
    assert (await stranger.answer())["text"] == "Tai gali padaryti tik šį kreipimąsi nagrinėjanti komanda."
    assert "desk action refused" in desk.bot.log()

    # The head assigns the member.
    await desk.head.click("👤 Priskirti", card)
    people = await desk.member.receive_one()  # everybody in the group sees the question; the head answers it
    assert people.text == "VRS-2026-000001: kas bus atsakingas už kreipimąsi?" and people.buttons == ["Rimas", "Petras", "✖ Atšaukti"]
    await desk.head.click("Petras", people)
    assigned = await desk.member.receive_one()
    assert assigned.text == "👤 Rimas paskyrė atsakingą už kreipimąsi VRS-2026-000001 asmenį: Petras."
    edits = {edit.id: edit for edit in [await desk.member.edited(), await desk.member.edited()]}
    assert (edits[people.id].text, edits[people.id].buttons) == (people.text, [])  # the question loses its buttons
    received = tr("lt", "Status: {status}", status=tr("lt", "Received")) + " · " + tr("lt", "nobody responsible yet")
    assigned_to = tr("lt", "Status: {status}", status=tr("lt", "Assigned to a clerk")) + " · " + tr("lt", "responsible: {name}", name="Petras")
    assert edits[card.id].text == card.text.replace(received, assigned_to)  # the card: only its status line changes
    heading = tr("pl", "<b>{municipality}</b> · case {number}", municipality="Samorząd Rejonu Wileńskiego", number="VRS-2026-000001")
    assert (await anna.receive_one()).text == heading + "\n\n" + tr("pl", "Status: {status}", status=tr("pl", "Assigned to a clerk"))
    await desk.member.send("/mine")
    mine = await desk.member.receive_one()
    line = " · ".join(["🚧 VRS-2026-000001", tr("lt", "Assigned to a clerk"), "2026 m. gruodžio 21 d. (liko 20 darbo dienų)", "Petras"])
    assert mine.text == tr("lt", "<b>Your open cases</b>:") + "\n" + line
    await desk.head.send("/team")
    load = await desk.member.receive_one()
    assert load.text == "Kelių skyrius: nebaigtų nagrinėti kreipimųsi – 1\n👤 Petras: nebaigtų nagrinėti – 1, pavėluotų – 0"

    # "Answer and close", then a note: the note stays inside, the case stays open.
    await desk.member.click("✅ Atsakyti ir užbaigti", card)
    await desk.member.receive_one()  # the prompt
    await desk.member.send("!paklausti rangovo", thread_id=card.thread_id)
    await desk.head.send("Rangovas atvyks rytoj.", thread_id=card.thread_id)  # another clerk: a message, not the answer
    message = await anna.receive_one()
    assert message.text.endswith("Rangovas atvyks rytoj.")
    await anna.nothing_more(1.0)
    async with store.read() as session:
        assert (await session.execute(select(Case))).scalar_one().status == CaseStatus.ASSIGNED
    await desk.member.send("Latarnia naprawiona.", thread_id=card.thread_id)
    answer, closed, _question = await anna.receive(3)
    assert answer.text.endswith("Latarnia naprawiona.") and "Status: Udzielono odpowiedzi" in closed.text
    async with store.read() as session:
        case = (await session.execute(select(Case))).scalar_one()
        notes = (await session.execute(select(CaseEvent.text).where(CaseEvent.kind == EventKind.NOTE))).scalars().all()
    assert (case.status, case.assignee_name) == (CaseStatus.ANSWERED, "Petras")
    assert notes == ["paklausti rangovo"]


async def test_escalation_on_a_frozen_clock_once_a_day(emulator: Emulator, telegram: Telegram, settings_env, tmp_path, store: Database) -> None:
    from bot.store.migrate import upgrade

    await upgrade(store)
    async with store.write() as session:
        session.add(Resident(id=4242, locale="lt", display_name="Jonas"))
        await session.flush()
        # Thursday 17 December: overdue and nobody responsible; due Monday, nobody; due Monday, Petras.
        for seq, (deadline, assignee) in enumerate([(date(2026, 12, 15), None), (date(2026, 12, 21), None), (date(2026, 12, 21), "Petras")], 1):
            session.add(Case(
                number=f"VRS-2026-{seq:06d}", year=2026, seq=seq, resident_id=4242, locale="lt", kind="report", category_id="roads",
                description="x", received_at=datetime(2026, 11, 20, tzinfo=UTC), deadline=deadline, assignee_name=assignee,
                assignee_id=7 if assignee else None, team_id="roads", group_chat_id=ROADS,
            ))  # fmt: skip
    desk = await start_desk(emulator, telegram, settings_env, tmp_path, PETENT_FROZEN_TIME="2026-12-17T07:59:58+02:00", DIGEST_TIME="08:00")
    try:
        received = await desk.head.receive(6, timeout=20)  # the digest, three reminders, two escalations
        director_digest, to_director = sorted(await desk.director.receive(2), key=lambda m: not m.text.startswith("📋"))
        assert "Direktoriaus kabinetas" in director_digest.text  # every team gets its digest
        overdue, unattended = (
            [m.text for m in received if m.text.startswith(start)] for start in ("vadovas: 🚨", "vadovas: ⚠️")
        )  # fmt: skip
        assert len(overdue) == 1 and overdue[0].startswith("vadovas: 🚨 Kreipimasis VRS-2026-000001 (Kelių skyrius) pavėluotas")
        assert len(unattended) == 1 and unattended[0].startswith("vadovas: ⚠️ Kreipimosi VRS-2026-000002 terminas")
        assert "VRS-2026-000001" in to_director.text and "VRS-2026-000002" not in to_director.text

        # The digest again the same day: no second escalation.
        await desk.head.send("/digest")
        again = await desk.head.receive(4, timeout=20)  # the digest and three reminders
        assert not any(m.text.startswith("vadovas:") for m in again)
        await desk.director.nothing_more(1.5)
    finally:
        await desk.bot.stop()
    async with store.read() as session:
        escalated = (await session.execute(select(CaseEvent.case_id).where(CaseEvent.kind == EventKind.ESCALATED))).scalars().all()
    assert sorted(escalated) == [1, 2]


async def test_a_flood_from_one_resident_does_not_hold_up_the_team(emulator: Emulator, telegram: Telegram, settings_env, tmp_path, store: Database) -> None:
    desk = await start_desk(emulator, telegram, {**settings_env, "GATHER_SECONDS": "20"}, tmp_path)
    try:
        anna = await telegram.resident("Anna", language_code="pl")
        await onboard(anna, "pl")
        await submit_case(anna, "pl", "🚧 Zgłoszenie problemu", "Drogi, ulice i transport", "Dziura w jezdni")
        await desk.member.receive_one()
        await anna.send("VRS-2026-000001")
        await anna.receive_one()
        await anna.click("➕ Uzupełnij informacje")
        await anna.receive_one()
        for number in range(100):
            await anna.send(f"Jeszcze jedno zdjęcie opisuję słowami, nr {number}")

        jonas = await telegram.resident("Jonas", language_code="lt")
        await onboard(jonas, "lt")
        submitted = time.monotonic()
        await submit_case(jonas, "lt", "🚧 Pranešimas apie problemą", "Keliai ir transportas", "Nuvirtęs ženklas")
        while True:
            [message] = await desk.member.receive(1, timeout=30)
            if message.text.startswith("🚧 VRS-2026-000002"):
                break
        assert time.monotonic() - submitted < 30
        await asyncio.sleep(21)  # the point: what Anna added is posted once per GATHER_SECONDS (20) window; count the posts after it
        posts = [m for m in [message, *await _all(desk.member)] if "VRS-2026-000001" in m.text or "nr " in m.text]
    finally:
        await desk.bot.stop()
    assert 1 <= len(posts) <= 4, "a flood costs a handful of group messages"
    async with store.read() as session:
        added = (await session.execute(select(CaseEvent).where(CaseEvent.kind == EventKind.MESSAGE_IN))).scalars().all()
    # Stored in order, none lost in between, none twice, until the throttle (30 messages in 10 s,
    # counting the ones that opened the case) stops reading the rest.
    stored = [event.text for event in added]
    assert 0 < len(stored) <= 30 and stored == [f"Jeszcze jedno zdjęcie opisuję słowami, nr {number}" for number in range(len(stored))]


async def _all(person: Person) -> list:
    """Whatever has reached `person` by now."""
    messages = []
    while True:
        try:
            messages += await person.receive(1, timeout=0.5)
        except NothingReceived:
            return messages
