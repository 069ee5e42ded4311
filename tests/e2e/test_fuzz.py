"""Thousands of random updates from residents, clerks, the communications staff and strangers:
random text, random commands with random arguments, random media, presses of the buttons the bot
showed and of buttons nobody showed. The bot must answer every button press, log no unhandled
exception, send Telegram nothing it refuses, and leave a consistent store behind.

The walk is reproducible: the seed is printed, and PETENT_FUZZ_SEED replays it."""

from __future__ import annotations

import asyncio
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import col

from bot.sandbox.emulator import Emulator
from bot.store.db import Database
from bot.store.models import Case, CaseEvent, EventKind, OutboxMessage, OutboxStatus
from tests.conftest import ADMIN_CHAT_ID, COMMS_CHAT_ID, DATABASES
from tests.e2e.conftest import BotProcess
from tests.support.driver import Person, Received, Telegram
from tests.support.helpers import PHOTO, onboard, submit_case

RESIDENTS = 60
ACTIONS_PER_RESIDENT = 36
ACTIONS_PER_STAFF = 120
SEED = int(os.environ.get("PETENT_FUZZ_SEED") or random.SystemRandom().randrange(2**32))

RESIDENT_COMMANDS = ["/start", "/new", "/cases", "/news", "/help", "/language", "/cancel", "/case"]
STAFF_COMMANDS = [
    "/case",
    "/history",
    "/note",
    "/open",
    "/overdue",
    "/digest",
    "/mine",
    "/team",
    "/templates",
    "/report",
    "/broadcast",
    "/broadcasts",
    "/poll",
    "/polls",
    "/results",
    "/stop",
    "/close",
    "/news",
    "/help",
    "/cancel",
]
ODD_TEXTS = [
    " ",
    "\u200b\u200c\u200d\ufeff",
    "²³",
    "١٢٣",
    "-1",
    "0",
    "99999999999999999999999999",
    "1e309",
    "NaN",
    "<b>bold</b> & <a href='x'>",
    "&amp;&lt;",
    "=1+2",
    "@everyone",
    "\t\r\n",
    "👍" * 50,
    "ą" * 4096,
    "VRS-2026-000001",
    "VRS-2026-999999999999",
    "2026-13-45",
    "2020-01-01..2030-12-31",
    "!",
    "!" + "x" * 500,
    "\u202eevil",
    "a\u0301\u0301\u0301",
    "\x00",
    "'; DROP TABLE cases; --",
    "${jndi:ldap://x}",
    "%s%s%n",
]


def random_text(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.5:
        return rng.choice(ODD_TEXTS)
    if roll < 0.8:
        alphabet = "abcząęėįšųūž ĄČĘĖĮŠŲŪŽ0123456789.,!?-_/<>&\"'\n😀"
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 300))).strip() or "x"
    return "".join(chr(rng.randint(32, 0x2FFF)) for _ in range(rng.randint(1, 40)))


def random_argument(rng: random.Random) -> str:
    return rng.choice(
        [
            "",
            "1",
            "0",
            "-5",
            "²",
            "abc",
            "9" * 25,
            "VRS-2026-000001",
            "2026-11",
            "2026-01-01 2026-12-31",
            "x y z",
            random_text(rng)[:60],
        ]
    )


def random_callback_data(rng: random.Random) -> str:
    """Up to 64 bytes of anything, as a crafted client can send."""
    data = "".join(
        chr(rng.choice([rng.randint(32, 126), rng.randint(0x80, 0x7FF), ord(":")]))
        for _ in range(rng.randint(1, 40))
    )
    while len(data.encode()) > 64:
        data = data[:-1]
    return data or ":"


@dataclass
class Actor:
    """One person in one chat, remembering what the bot showed them there."""

    person: Person
    commands: list[str]
    seen: dict[int, Received] = field(default_factory=dict)
    keyboard: list[str] = field(default_factory=list)
    threads: set[int] = field(default_factory=set)

    async def look(self) -> None:
        for message in await self.person.drain():
            self.seen[message.id] = message
            if message.keyboard_buttons:
                self.keyboard = message.keyboard_buttons
            if message.thread_id:
                self.threads.add(message.thread_id)
        for old in sorted(self.seen)[:-12]:  # only recent messages are worth pressing
            del self.seen[old]

    async def act(self, rng: random.Random) -> None:
        await self.look()
        with_buttons = [m for m in self.seen.values() if m.buttons]
        where = {"thread_id": rng.choice(sorted(self.threads))} if self.threads and rng.random() < 0.8 else {}
        roll = rng.random()
        if roll < 0.35 and with_buttons:
            # The data of a button as last seen: the bot may have edited it away since (a stale press).
            message = rng.choice(with_buttons)
            rows = message.raw["reply_markup"]["inline_keyboard"]
            data = [button["callback_data"] for row in rows for button in row if "callback_data" in button]
            if data:
                await self.person.forge_button(rng.choice(data), message)
        elif roll < 0.5 and self.keyboard:
            await self.person.send(rng.choice(self.keyboard))
        elif roll < 0.62 and self.seen:
            await self.person.forge_button(random_callback_data(rng), rng.choice(list(self.seen.values())))
        elif roll < 0.77:
            await self.person.send(f"{rng.choice(self.commands)} {random_argument(rng)}".strip(), **where)
        elif roll < 0.87:
            await self._media(rng, where)
        else:
            text = random_text(rng)
            reply = rng.choice(list(self.seen)) if self.seen and rng.random() < 0.3 else None
            await self.person.send(text, reply_to=reply, **where)

    async def _media(self, rng: random.Random, where: dict[str, Any]) -> None:
        kind = rng.choice(["photo", "album", "document", "sticker", "voice", "location", "contact"])
        if kind == "photo":
            await self.person.send_photo(PHOTO, caption=rng.choice([None, random_text(rng)[:1024]]), **where)
        elif kind == "album":
            await self.person.send_album([PHOTO] * rng.randint(2, 4), **where)
        elif kind == "document":
            await self.person.send_document(
                os.urandom(rng.randint(1, 2000)), rng.choice(["a.pdf", "..\\..\\x.exe", "ż.docx", "<b>.txt"])
            )
        elif kind == "sticker":
            await self.person.send_sticker()
        elif kind == "voice":
            await self.person.send_voice()
        elif kind == "location":
            await self.person.share_location(rng.uniform(-90, 90), rng.uniform(-180, 180))
        else:
            await self.person.share_contact(rng.choice(["+37060000000", "x", "+" + "9" * 30, ""]) or "0")


async def walk(actor: Actor, rng: random.Random, actions: int) -> None:
    for _ in range(actions):
        await actor.act(rng)
        await asyncio.sleep(rng.uniform(0.0, 0.25))


async def first_case(person: Person, locale: str) -> None:
    """A real case, so that the clerks have a card to press."""
    await onboard(person, locale)
    kind, category = ("📄 Wniosek", "Inne sprawy") if locale == "pl" else ("📄 Prašymas", "Kiti klausimai")
    await submit_case(person, locale, kind, category, "Proszę o informację — prašau informacijos")


async def settle(emulator: Emulator, store: Database, quiet: float = 3.0, timeout: float = 120.0) -> None:
    """Until the bot has sent nothing for `quiet` seconds and its outbox holds nothing due."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = len(emulator.requests)
        await asyncio.sleep(quiet)
        async with store.read() as session:
            waiting = await session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(col(OutboxMessage.status) == OutboxStatus.PENDING)
            )
        if len(emulator.requests) == before and not waiting:
            return
    raise AssertionError("the bot did not settle")


@pytest.fixture
def settings_env(settings_env: dict[str, str]) -> dict[str, str]:
    # Telegram's per-chat lanes stay; the overall and group ceilings are raised so the walk ends soon.
    return {**settings_env, "SEND_RATE_PER_SECOND": "300", "GROUP_MESSAGES_PER_MINUTE": "600"}


# On one database (PostgreSQL when the tests have one): the walk is about the bot, not the engine.
@pytest.mark.slow
@pytest.mark.parametrize("database_url", [DATABASES[-1]], indirect=True)
async def test_thousands_of_random_updates(
    emulator: Emulator, telegram: Telegram, settings_env, tmp_path, store: Database
) -> None:
    print(f"fuzz seed {SEED} (PETENT_FUZZ_SEED={SEED} replays it)")
    rng = random.Random(SEED)
    emulator.limits.global_per_second = emulator.limits.global_burst = 300
    emulator.limits.group_per_minute = 600
    emulator.reset_rate_buckets()
    bot = BotProcess(emulator, settings_env, tmp_path / "bot.log")
    bot.expected_errors.append(
        "message is not modified"
    )  # a button pressed twice: Telegram says so, and the bot takes it as done
    await bot.start()
    try:
        first_locales = ["pl", "lt", "pl"]
        languages = first_locales + [rng.choice(["pl", "lt", "en", None]) for _ in range(RESIDENTS - 3)]
        residents = [
            await telegram.resident(f"R{i}", language_code=language) for i, language in enumerate(languages)
        ]
        await asyncio.gather(
            *(first_case(person, locale) for person, locale in zip(residents[:3], first_locales, strict=True))
        )
        clerk, intruder, writer = [await telegram.person(name) for name in ("Ona", "Petras", "Rita")]
        emulator.chats[ADMIN_CHAT_ID].members.update({clerk.user["id"], intruder.user["id"]})
        emulator.chats[COMMS_CHAT_ID].members.add(writer.user["id"])
        actors = [Actor(person, RESIDENT_COMMANDS) for person in residents]
        staff = [
            Actor(clerk.in_chat(ADMIN_CHAT_ID), STAFF_COMMANDS),
            Actor(intruder.in_chat(ADMIN_CHAT_ID), STAFF_COMMANDS),
            Actor(writer.in_chat(COMMS_CHAT_ID), STAFF_COMMANDS),
            Actor(await telegram.person("Stranger"), STAFF_COMMANDS),
        ]
        walks = [walk(a, random.Random(rng.random()), ACTIONS_PER_RESIDENT) for a in actors]
        walks += [walk(a, random.Random(rng.random()), ACTIONS_PER_STAFF) for a in staff]
        started = time.monotonic()
        await asyncio.gather(*walks)
        walked = time.monotonic()
        await settle(emulator, store)
        print(f"walk {walked - started:.0f} s, settling {time.monotonic() - walked:.0f} s")
    finally:
        await bot.stop()
    total = RESIDENTS * ACTIONS_PER_RESIDENT + len(staff) * ACTIONS_PER_STAFF
    print(f"{total} random actions; the bot made {len(emulator.requests)} requests")

    log = bot.log_path.read_text(errors="replace")
    assert "Traceback" not in log, log[log.index("Traceback") - 500 :][:4000]
    assert " ERROR " not in log, "\n".join(line for line in log.splitlines() if " ERROR " in line)[:4000]
    assert not bot.refused_requests(), bot.refused_requests()[:5]
    unanswered = [query for query in emulator.callbacks.values() if not query.get("answered")]
    assert not unanswered, (
        f"{len(unanswered)} of {len(emulator.callbacks)} button presses were never answered"
    )

    async with store.read() as session:
        cases = (await session.execute(select(Case).order_by(col(Case.year), col(Case.seq)))).scalars().all()
        created = set(
            (
                await session.execute(
                    select(col(CaseEvent.case_id)).where(col(CaseEvent.kind) == EventKind.CREATED)
                )
            ).scalars()
        )
        stuck = (
            (
                await session.execute(
                    select(OutboxMessage).where(col(OutboxMessage.status) == OutboxStatus.PENDING)
                )
            )
            .scalars()
            .all()
        )
    assert len(cases) >= 3
    assert [case.seq for case in cases] == list(range(1, len(cases) + 1)), "case numbers have gaps"
    assert all(case.id in created for case in cases), "a case without its first event"
    assert all(case.group_chat_id is not None for case in cases), "a case without its team's group"
    assert not stuck
