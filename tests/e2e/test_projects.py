"""Projects end to end: the communications staff change a project's status and its 300 followers
are told; the bot is killed (kill -9) amid the fan-out and restarted: nobody is lost, and only
messages in flight at the crash (at most one batch) go twice."""

import asyncio
from collections import Counter
from datetime import date

from sqlalchemy import func, select
from sqlmodel import col

from bot.sandbox.emulator import Emulator
from bot.store.db import Database
from bot.store.models import (
    Delivery,
    DeliveryStatus,
    Follow,
    FollowKind,
    Milestone,
    Project,
    Resident,
    utcnow,
)
from tests.catalog import tr, tr_start
from tests.support.driver import Telegram
from tests.support.helpers import staff

FOLLOWERS = 300
STATUS_CHANGED = "🏗 <b>{name}</b>: the status changed from “{old}” to “{new}” (progress {progress}%)."
BATCH = 30  # the broadcaster's claimed batch: the window a crash can repeat


async def test_a_fan_out_to_300_followers_survives_kill_9(
    emulator: Emulator, telegram: Telegram, settings_env, tmp_path, store: Database
) -> None:
    from bot.store.migrate import upgrade
    from tests.e2e.conftest import BotProcess

    await upgrade(store)
    people = [emulator.add_user(f"F{i}", "pl" if i % 2 else "lt")["id"] for i in range(FOLLOWERS)]
    async with store.write() as session:
        project = Project(
            external_id="VRS-2026-099",
            name_pl="Droga do Rzeszy",
            name_lt="Kelias į Riešę",
            elderships=["riese"],
            team_id="desk",
            status="under_way",
        )
        session.add(project)
        await session.flush()
        session.add(
            Milestone(
                project_id=project.id,
                number=1,
                title_pl="Odbiór",
                title_lt="Priėmimas",
                baseline_due=date(2027, 6, 30),
                current_due=date(2027, 6, 30),
            )
        )
        session.add_all(
            Resident(id=uid, locale="pl" if i % 2 else "lt", display_name="F", consent_at=utcnow())
            for i, uid in enumerate(people)
        )
        await session.flush()
        # Half follow the project, half every project of Riešė: each is told once all the same.
        session.add_all(
            Follow(resident_id=uid, kind=FollowKind.PROJECT, target=str(project.id))
            if i % 2
            else Follow(resident_id=uid, kind=FollowKind.ELDERSHIP_PROJECTS, target="riese")
            for i, uid in enumerate(people)
        )
        session.add(
            Follow(resident_id=people[0], kind=FollowKind.PROJECT, target=str(project.id))
        )  # and one follows both
    # A real clock: a frozen one would restart at the same moment and never see the lease end.
    process = BotProcess(
        emulator,
        {**settings_env, "BROADCAST_LEASE_SECONDS": "1", "PETENT_FROZEN_TIME": ""},
        tmp_path / "bot.log",
    )
    await process.start()
    try:
        rasa = await staff(telegram, emulator)
        await rasa.send("/projects")
        listing = await rasa.receive_one()
        await rasa.click("VRS-2026-099 · Kelias į Riešę", listing)
        card = await rasa.receive_one()
        await rasa.click("🔄 Keisti būseną", card)
        await rasa.click("baigtas", await rasa.receive_one())

        async def sent() -> int:
            async with store.read() as session:
                count = await session.scalar(
                    select(func.count())
                    .select_from(Delivery)
                    .where(col(Delivery.status) == DeliveryStatus.SENT)
                )
                assert count is not None  # COUNT(*) always has a row
                return count

        for _ in range(600):
            if await sent() >= BATCH:
                break
            await asyncio.sleep(0.05)
        await process.kill()
        assert await sent() < FOLLOWERS, "killed amid the fan-out"
        async with store.read() as session:
            in_flight = set(
                (
                    await session.execute(
                        select(col(Delivery.chat_id)).where(col(Delivery.status) == DeliveryStatus.SENDING)
                    )
                ).scalars()
            )
        await asyncio.sleep(1.5)  # the dead sender's lease runs out
        await process.start()
        for _ in range(600):
            if await sent() == FOLLOWERS:
                break
            await asyncio.sleep(0.1)
    finally:
        await process.stop()
    messages = [
        e
        for e in emulator.events
        if e["type"] == "message" and e.get("outgoing") and e["chat_id"] in set(people)
    ]
    counts = Counter(e["chat_id"] for e in messages)
    assert set(people) == set(counts), "every follower was told"
    twice = {chat for chat, n in counts.items() if n > 1}
    assert twice <= in_flight and len(in_flight) <= BATCH, (
        "only the batch in flight at the crash may go twice"
    )
    assert max(counts.values()) <= 2
    texts = {e["chat_id"]: e["message"]["text"] for e in messages}
    for person, locale, name in ((people[1], "pl", "Droga do Rzeszy"), (people[0], "lt", "Kelias į Riešę")):
        changed = tr_start(
            locale,
            STATUS_CHANGED,
            name=name,
            old=tr(locale, "under way"),
            new=tr(locale, "completed"),
            until="progress",
        )
        assert texts[person].startswith(changed), texts[person]
