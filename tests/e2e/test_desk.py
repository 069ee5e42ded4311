"""The clerks' desk through a real bot process: a burst of cards and the digest on start. (A case's
course in a forum topic, one behaviour a test, is in tests/inprocess/test_desk.py; a plain group,
forged buttons, canned answers, a deleted topic, a moved group, albums and a blocked resident in
tests/inprocess/test_desk_edges.py.)"""

import asyncio
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select
from sqlmodel import col

from bot.sandbox.emulator import Emulator
from bot.store.db import Database
from bot.store.models import Case, CaseEvent, EventKind, Resident
from tests.catalog import tr
from tests.conftest import ADMIN_CHAT_ID
from tests.support.driver import Telegram


async def test_a_burst_of_50_cases_reaches_the_group_within_its_limit(
    emulator: Emulator, telegram: Telegram, settings_env, tmp_path, store: Database
) -> None:
    from bot.services.cases import CaseDraft
    from bot.store.migrate import upgrade
    from tests.e2e.conftest import BotProcess
    from tests.factories import services

    # 50 cases stored while the bot was down; on start they all go to the group at once.
    await upgrade(store)
    async with store.write() as session:
        session.add(Resident(id=4242, locale="lt", display_name="Jonas"))
    commands = services(store).commands
    received = datetime(2026, 11, 23, 7, tzinfo=UTC)
    await asyncio.gather(
        *(
            commands.open(CaseDraft(4242, "lt", "report", "roads", f"Duobė nr. {i}"), received)
            for i in range(50)
        )
    )

    # A faster group lane than Telegram's (240 a minute, enforced by the emulator) keeps the test short.
    emulator.limits.group_per_minute = 240
    emulator.reset_rate_buckets()
    process = BotProcess(emulator, {**settings_env, "GROUP_MESSAGES_PER_MINUTE": "240"}, tmp_path / "bot.log")
    await process.start()
    try:
        clerk = (await telegram.person("Ona")).in_chat(ADMIN_CHAT_ID)
        cards = await clerk.receive(50, timeout=120)
    finally:
        await process.stop()
    assert sorted(c.text.split(" · ")[0][-15:] for c in cards) == [f"VRS-2026-{i:06d}" for i in range(1, 51)]
    chat = await telegram.chat(ADMIN_CHAT_ID)
    assert len(chat["topics"]) == 50
    limited = [r for r in emulator.requests if r["status"] == 429]
    assert len(limited) <= 2, "the bot kept to the group's limit (a stray 429 is retried)"
    async with store.read() as session:
        assert all(c.card_message_id for c in (await session.execute(select(Case))).scalars())


@pytest.mark.parametrize("when", ["2026-12-17T07:59:58+02:00"])
async def test_daily_digest_on_a_frozen_clock(
    when: str, emulator: Emulator, telegram: Telegram, settings_env, tmp_path, store: Database
) -> None:
    from bot.store.migrate import upgrade
    from tests.e2e.conftest import BotProcess

    await upgrade(store)
    async with store.write() as session:
        session.add(Resident(id=4242, locale="lt", display_name="Jonas"))
        await session.flush()
        for seq, (deadline, assignee) in enumerate(
            [(date(2026, 12, 21), "Ona"), (date(2026, 12, 15), None), (date(2027, 1, 20), "Ona")], 1
        ):
            session.add(
                Case(
                    number=f"VRS-2026-{seq:06d}",
                    year=2026,
                    seq=seq,
                    resident_id=4242,
                    locale="lt",
                    kind="request",
                    category_id="other",
                    description="x",
                    received_at=datetime(2026, 11, 20, tzinfo=UTC),
                    deadline=deadline,
                    assignee_name=assignee,
                    card_message_id=1000 + seq,
                )
            )
    process = BotProcess(
        emulator, {**settings_env, "PETENT_FROZEN_TIME": when, "DIGEST_TIME": "08:00"}, tmp_path / "bot.log"
    )
    await process.start()
    try:
        clerk = (await telegram.person("Ona")).in_chat(ADMIN_CHAT_ID)
        received = await clerk.receive(4, timeout=20)
    finally:
        await process.stop()
    digest = next(m for m in received if m.text.startswith("📋"))
    reminders = [m for m in received if m.text.startswith("⏰")]
    [escalation] = [m for m in received if "🚨" in m.text]
    overdue_by = tr("lt", "{count} working day overdue", "{count} working days overdue", n=2, count=2)
    late = f"2026 m. gruodžio 15 d. ({overdue_by})"
    overdue = tr(
        "lt",
        "🚨 {number} of {team} is overdue: the deadline was {due}; responsible: {who}.",
        number="VRS-2026-000002",
        team="Specialistai",
        due=late,
        who=tr("lt", "nobody responsible"),
    )
    assert (
        escalation.text == tr("lt", "the team's head") + ": " + overdue
    )  # the team has no heads named: to all of it
    nobody = tr("lt", "nobody responsible")
    assert digest.text.splitlines() == [
        tr(
            "lt",
            "📋 <b>Daily digest</b> of {team}, {date}",
            team="Specialistai",
            date="2026 m. gruodžio 17 d.",
        ),
        "",
        tr("lt", "Overdue") + " (1)",
        f"👤 {nobody}: VRS-2026-000002 (2026 m. gruodžio 15 d.)",
        "",
        tr("lt", "Due within 3 working days") + " (1)",
        "👤 Ona: VRS-2026-000001 (2026 m. gruodžio 21 d.)",
    ]
    left = tr("lt", "{count} working day left", "{count} working days left", n=2, count=2)
    assert sorted(r.text for r in reminders) == [
        tr(
            "lt",
            "⏰ Reminder: the deadline is {date} ({left}).",
            date="2026 m. gruodžio 15 d.",
            left=overdue_by,
        ),
        tr("lt", "⏰ Reminder: the deadline is {date} ({left}).", date="2026 m. gruodžio 21 d.", left=left),
    ]
    async with store.read() as session:
        assert (
            len(
                (
                    await session.execute(select(CaseEvent).where(col(CaseEvent.kind) == EventKind.REMINDED))
                ).all()
            )
            == 2
        )
