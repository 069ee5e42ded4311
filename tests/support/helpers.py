"""Conversations several end-to-end tests share."""

import asyncio
import contextlib
import inspect
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.sandbox.control import controlled_emulator
from bot.sandbox.emulator import Emulator, Limits
from bot.sandbox.run import teams_file
from tests.conftest import ADMIN_CHAT_ID, COMMS_CHAT_ID, TOKEN
from tests.support.driver import Person, Received, Telegram

PHOTO = b"\x89PNG\r\n\x1a\n" + b"photo-bytes" * 20

# Labels as residents see them.
LABELS = {
    "pl": {
        "language": "✓ Polski",
        "agree": "✅ Rozumiem",
        "new": "📝 Nowa sprawa",
        "submit": "✅ Wyślij",
        "skip": "⏭ Pomiń",
        "here": "💬 Odpowiedź tutaj, w Telegramie",
        "whole": "🤷 Nie wiem / cały rejon",
    },
    "lt": {
        "language": "✓ Lietuvių",
        "agree": "✅ Susipažinau",
        "new": "📝 Naujas kreipimasis",
        "submit": "✅ Pateikti",
        "skip": "⏭ Praleisti",
        "here": "💬 Atsakymas čia, per „Telegram“",
        "whole": "🤷 Nežinau / visas rajonas",
    },
}


async def choose(person: Person, label: str) -> Received:
    """Press an inline answer: its question is edited to show the choice, and the next one comes."""
    await person.click(label)
    await person.edited()
    return await person.receive_one()


async def onboard(person: Person, locale: str) -> Received:
    """/start, language, consent; returns the offer of news that ends it."""
    labels = LABELS[locale]
    await person.send("/start")
    await person.receive(2)
    await choose(person, labels["language"])
    await person.click(labels["agree"])
    await person.edited()
    _, offer = await person.receive(2)  # the menu, and the offer of news
    return offer


async def fill_in_case(
    person: Person, locale: str, kind: str, category: str, description: str, eldership: str | None = None
) -> Received:
    """The shortest path to the summary (returned): the whole district (or an eldership of the
    first page), no files, no location, answer here."""
    labels = LABELS[locale]
    await person.send(labels["new"])
    await person.receive_one()
    await choose(person, kind)
    await choose(person, eldership or labels["whole"])
    return await fill_in_from_category(person, locale, category, description)


async def fill_in_from_category(person: Person, locale: str, category: str, description: str) -> Received:
    """`fill_in_case` from the category question on: the summary."""
    labels = LABELS[locale]
    await choose(person, category)
    await person.send(description)
    await person.receive_one()
    await choose(person, labels["skip"])
    await person.send(labels["skip"])
    await person.receive_one()
    await person.send(labels["here"])
    _, summary = await person.receive(2)
    return summary


async def submit_case(
    person: Person, locale: str, kind: str, category: str, description: str, eldership: str | None = None
) -> Received:
    """`fill_in_case`, then send: the confirmation."""
    await fill_in_case(person, locale, kind, category, description, eldership)
    await person.click(LABELS[locale]["submit"])
    await person.edited()
    return await person.receive_one()


async def start_adding_information(person: Person, number: str) -> None:
    """A Polish-speaking resident opens their case by its number and presses "➕ Add information":
    the bot waits for what to add."""
    await person.send(number)
    await person.receive_one()
    await person.click("➕ Uzupełnij informacje")
    await person.receive_one()  # "send what you would like to add"


async def staff(telegram: Telegram, emulator: Emulator) -> Person:
    """Rasa, of the communications staff, acting and reading in their group."""
    rasa = await telegram.person("Rasa", language_code="lt")
    emulator.chats[COMMS_CHAT_ID].members.add(rasa.user["id"])
    return rasa.in_chat(COMMS_CHAT_ID)


async def broadcast_to_all(rasa: Person, text: str, recipients: int) -> None:
    """A Lithuanian announcement to every resident: composed, previewed, confirmed."""
    await rasa.send("/broadcast")
    await rasa.click("Lietuvių", await rasa.receive_one())
    await rasa.edited()
    await rasa.send(text)
    await rasa.click("➡️ Pasirinkti gavėjus", await rasa.receive_one())
    await rasa.edited()
    await rasa.click("👁 Peržiūra")
    await rasa.edited()
    *_, confirm = await rasa.receive(3)
    await rasa.click(f"✅ Siųsti gavėjams: {recipients}", confirm)


WEBHOOK_SECRET = "s3cret_token-for-the-webhook"


def free_port() -> int:
    """A port nobody listens on now, for a bot's web server or a proxy."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def wait_until(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "the condition") -> Any:
    """Wait for what the bot did to show (a row in the store, a line in its log): `predicate` (plain
    or async) is polled until it returns something true, which is returned. For what the emulator
    received, `Person.receive`/`edited` or `Emulator.wait_for` wait without polling."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout} s for {what}")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def served_emulator(limits: Limits | None = None) -> AsyncIterator[Emulator]:
    """The emulator on 127.0.0.1 with the clerks' (forum) and communications groups."""
    emulator = controlled_emulator(TOKEN, limits) if limits else controlled_emulator(TOKEN)
    runner = await emulator.serve()
    emulator.add_group("Clerks", forum=True, chat_id=ADMIN_CHAT_ID)
    emulator.add_group("Communications", chat_id=COMMS_CHAT_ID)
    try:
        yield emulator
    finally:
        await runner.cleanup()


ROADS, AVIZIENIAI, DIRECTOR = -1001000000011, -1001000000012, -1001000000013


@dataclass
class Desk:
    """The sandbox's teams (bot/sandbox/run.py `teams_file`), each person reading their team's group."""

    front: Person  # Ona: the front office lists nobody, so its group's members act
    head: Person  # Rimas, head of roads
    member: Person  # Petras, roads
    eldership: Person  # Aldona, Avižieniai eldership
    director: Person  # Vida, the director's office (the escalation team)


async def teams_desk(emulator: Emulator, telegram: Telegram, municipality_file: Path) -> Desk:
    """The teams' groups and people, and the municipality file routing to them (for MUNICIPALITY_FILE)."""
    people = {name: await telegram.person(name) for name in ("Ona", "Rimas", "Petras", "Aldona", "Vida")}
    for chat_id, title, names in (
        (ROADS, "Roads", ["Rimas", "Petras"]),
        (AVIZIENIAI, "Avižieniai", ["Aldona"]),
        (DIRECTOR, "Director", ["Vida"]),
    ):
        emulator.add_group(
            title, forum=chat_id != DIRECTOR, chat_id=chat_id, members=[people[n].user["id"] for n in names]
        )
    emulator.chats[ADMIN_CHAT_ID].members.add(people["Ona"].user["id"])
    ids = {name: person.user["id"] for name, person in people.items()}
    teams_file(
        municipality_file,
        front=ADMIN_CHAT_ID,
        roads=ROADS,
        eldership=AVIZIENIAI,
        director=DIRECTOR,
        roads_heads=[ids["Rimas"]],
        roads_members=[ids["Petras"]],
        eldership_members=[ids["Aldona"]],
        director_heads=[ids["Vida"]],
    )
    return Desk(
        people["Ona"].in_chat(ADMIN_CHAT_ID),
        people["Rimas"].in_chat(ROADS),
        people["Petras"].in_chat(ROADS),
        people["Aldona"].in_chat(AVIZIENIAI),
        people["Vida"].in_chat(DIRECTOR),
    )
