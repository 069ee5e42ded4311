"""Teams through the real bot process: escalation on a frozen clock (the schedule's digest at its
hour), and a resident's flood (the throttle and the group's pacing). Routing, referrals, who may
act and a prompt a note does not fulfil are in process: tests/inprocess/test_teams.py."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import select
from sqlmodel import col

from bot.sandbox.emulator import Emulator
from bot.store.db import Database
from bot.store.models import Case, CaseEvent, EventKind, Resident
from tests.catalog import tr, tr_start
from tests.e2e.conftest import BotProcess
from tests.support.driver import NothingReceived, Person, Received, Telegram
from tests.support.helpers import ROADS, Desk, onboard, submit_case, teams_desk

OVERDUE = "🚨 {number} of {team} is overdue: the deadline was {due}; responsible: {who}."
UNATTENDED = "⚠️ {number} is due {due} and nobody is responsible for it."


async def start_desk(
    emulator: Emulator, telegram: Telegram, settings_env: dict[str, str], tmp_path: Path, **env: str
) -> tuple[BotProcess, Desk]:
    """The teams' desk (tests/support/helpers.py `teams_desk`) served by a bot process of its own."""
    desk = await teams_desk(emulator, telegram, tmp_path / "municipality.toml")
    bot = BotProcess(
        emulator,
        {**settings_env, "MUNICIPALITY_FILE": str(tmp_path / "municipality.toml"), **env},
        tmp_path / "bot.log",
    )
    await bot.start()
    return bot, desk


async def test_escalation_on_a_frozen_clock_once_a_day(
    emulator: Emulator, telegram: Telegram, settings_env, tmp_path, store: Database
) -> None:
    from bot.store.migrate import upgrade

    await upgrade(store)
    async with store.write() as session:
        session.add(Resident(id=4242, locale="lt", display_name="Jonas"))
        await session.flush()
        # Thursday 17 December: overdue and nobody responsible; due Monday, nobody; due Monday, Petras.
        for seq, (deadline, assignee) in enumerate(
            [(date(2026, 12, 15), None), (date(2026, 12, 21), None), (date(2026, 12, 21), "Petras")], 1
        ):
            session.add(
                Case(
                    number=f"VRS-2026-{seq:06d}",
                    year=2026,
                    seq=seq,
                    resident_id=4242,
                    locale="lt",
                    kind="report",
                    category_id="roads",
                    description="x",
                    received_at=datetime(2026, 11, 20, tzinfo=UTC),
                    deadline=deadline,
                    assignee_name=assignee,
                    assignee_id=7 if assignee else None,
                    team_id="roads",
                    group_chat_id=ROADS,
                )
            )
    process, desk = await start_desk(
        emulator,
        telegram,
        settings_env,
        tmp_path,
        PETENT_FROZEN_TIME="2026-12-17T07:59:58+02:00",
        DIGEST_TIME="08:00",
    )
    try:
        received = await desk.head.receive(6, timeout=20)  # the digest, three reminders, two escalations
        director_digest, to_director = sorted(
            await desk.director.receive(2), key=lambda m: not m.text.startswith("📋")
        )
        assert "Direktoriaus kabinetas" in director_digest.text  # every team gets its digest
        head = tr("lt", "head") + ": "  # to the team's heads, by their role
        overdue, unattended = (
            [m.text for m in received if m.text.startswith(head + start)] for start in ("🚨", "⚠️")
        )
        assert len(overdue) == 1 and overdue[0].startswith(
            head + tr_start("lt", OVERDUE, number="VRS-2026-000001", team="Kelių skyrius", until="due")
        )
        assert len(unattended) == 1 and unattended[0].startswith(
            head + tr_start("lt", UNATTENDED, number="VRS-2026-000002", until="due")
        )
        assert "VRS-2026-000001" in to_director.text and "VRS-2026-000002" not in to_director.text

        # The digest again the same day: no second escalation.
        await desk.head.send("/digest")
        again = await desk.head.receive(4, timeout=20)  # the digest and three reminders
        assert not any(m.text.startswith(tr("lt", "head") + ":") for m in again)
        await desk.director.nothing_more(1.5)
    finally:
        await process.stop()
    async with store.read() as session:
        escalated = (
            (
                await session.execute(
                    select(col(CaseEvent.case_id)).where(col(CaseEvent.kind) == EventKind.ESCALATED)
                )
            )
            .scalars()
            .all()
        )
    assert sorted(escalated) == [1, 2]


async def test_a_flood_from_one_resident_does_not_hold_up_the_team(
    emulator: Emulator, telegram: Telegram, settings_env, tmp_path, store: Database
) -> None:
    process, desk = await start_desk(emulator, telegram, {**settings_env, "GATHER_SECONDS": "20"}, tmp_path)
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
        await submit_case(
            jonas, "lt", "🚧 Pranešimas apie problemą", "Keliai ir transportas", "Nuvirtęs ženklas"
        )
        seen = []
        while True:
            [message] = await desk.member.receive(1, timeout=30)
            seen.append(message)
            if message.text.startswith("🚧 VRS-2026-000002"):
                break
        assert time.monotonic() - submitted < 30
        # What Anna added goes in posts of what came in quick succession, at most one per
        # GATHER_SECONDS (20) window: count every post of it, before Jonas's card or after.
        await asyncio.sleep(21)
        posts = [
            m for m in [*seen, *await _all(desk.member)] if "VRS-2026-000001" in m.text or "nr " in m.text
        ]
    finally:
        await process.stop()
    assert 1 <= len(posts) <= 4, "a flood costs a handful of group messages"
    async with store.read() as session:
        added = (
            (await session.execute(select(CaseEvent).where(col(CaseEvent.kind) == EventKind.MESSAGE_IN)))
            .scalars()
            .all()
        )
    # Stored in order, none lost in between, none twice, until the throttle (30 messages in 10 s,
    # counting the ones that opened the case) stops reading the rest.
    stored = [event.text for event in added]
    assert 0 < len(stored) <= 30 and stored == [
        f"Jeszcze jedno zdjęcie opisuję słowami, nr {number}" for number in range(len(stored))
    ]


async def _all(person: Person) -> list[Received]:
    """Whatever has reached `person` by now."""
    messages: list[Received] = []
    while True:
        try:
            messages += await person.receive(1, timeout=0.5)
        except NothingReceived:
            return messages
