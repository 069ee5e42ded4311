"""News through the emulator: sending surviving kill -9, an album announcement, and broadcasting
refused outside the communications group. (Subscribing, and an announcement composed in two
languages and sent to a topic's subscribers, one behaviour a test, are in
tests/inprocess/test_news.py.)"""

import asyncio
from collections import Counter

import pytest
from sqlalchemy import func, select

from bot.sandbox.emulator import Emulator
from bot.store.db import Database
from bot.store.models import Delivery, DeliveryStatus, Resident, utcnow
from tests.support.driver import Telegram
from tests.support.helpers import broadcast_to_all, onboard, staff


async def test_only_the_communications_group_broadcasts(bot, telegram: Telegram, emulator: Emulator) -> None:
    anna = await telegram.resident("Anna", language_code="pl")
    offer = await onboard(anna, "pl")
    await anna.forge_button("cm:send:", offer)
    assert (await anna.answer())["text"] == "Niedozwolone w tym miejscu."
    await anna.send("/broadcast")
    assert (await anna.receive_one()).text.startswith("Nie ma polecenia /broadcast")
    assert "broadcast button pressed outside" in bot.log()


@pytest.mark.parametrize("stop", ["kill -9", "SIGTERM"])
async def test_sending_resumes_after_a_stop_without_losses(stop: str, emulator: Emulator, telegram: Telegram, settings_env, tmp_path, store: Database) -> None:
    """Killed mid-announcement, or stopped (SIGTERM): after a restart every resident has it. A
    stop ends the batches in hand and exits by itself, so nobody gets it twice."""
    from bot.store.migrate import upgrade
    from tests.e2e.conftest import BotProcess

    await upgrade(store)
    people = [emulator.add_user(f"R{i}", "lt")["id"] for i in range(150)]
    async with store.write() as session:
        session.add_all(Resident(id=uid, locale="lt", display_name="R", consent_at=utcnow(), news_topics=["general"]) for uid in people)
    # A real clock: a frozen one would restart at the same moment and never see the lease end.
    process = BotProcess(emulator, {**settings_env, "BROADCAST_LEASE_SECONDS": "1", "PETENT_FROZEN_TIME": ""}, tmp_path / "bot.log")
    await process.start()
    try:
        rasa = await staff(telegram, emulator)
        await broadcast_to_all(rasa, "Svarbus pranešimas visiems gyventojams", 150)

        async def sent() -> int:
            async with store.read() as session:
                return await session.scalar(select(func.count()).select_from(Delivery).where(Delivery.status == DeliveryStatus.SENT))

        for _ in range(600):
            if await sent() >= 30:
                break
            await asyncio.sleep(0.05)
        if stop == "kill -9":
            await process.kill()
        else:
            await process.stop()
            assert process.returncode == 0, "the bot ended by itself, not killed when it did not"
        async with store.read() as session:
            in_flight = set((await session.execute(select(Delivery.chat_id).where(Delivery.status == DeliveryStatus.SENDING))).scalars())
        await asyncio.sleep(1.5)  # the dead sender's lease runs out
        await process.start()
        for _ in range(400):
            if await sent() == 150:
                break
            await asyncio.sleep(0.1)
    finally:
        await process.stop()
    counts = Counter(e["chat_id"] for e in emulator.events if e["type"] == "message" and e.get("outgoing") and e["chat_id"] in set(people))
    assert set(people) == set(counts), "every resident got the announcement"
    twice = {chat for chat, n in counts.items() if n > 1}
    assert twice <= in_flight, "only messages in flight at the crash may go twice"
    assert max(counts.values()) <= 2
    if stop == "SIGTERM":
        assert (in_flight, twice) == (set(), set()), "a stop leaves nothing in hand"
        assert "database is locked" not in process.log()


async def test_an_album_announcement_and_stop(bot, telegram: Telegram, emulator: Emulator) -> None:
    from tests.support.helpers import PHOTO

    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    rasa = await staff(telegram, emulator)
    await rasa.send("/broadcast")
    await rasa.click("Polski", await rasa.receive_one())
    await rasa.edited()
    await rasa.send_album([PHOTO, PHOTO], caption="Nowy plac zabaw w Niemenczynie")
    await rasa.click("➡️ Pasirinkti gavėjus", await rasa.receive_one())
    await rasa.edited()
    await rasa.click("👁 Peržiūra")
    await rasa.edited()
    _, *preview, confirm = await rasa.receive(4)
    assert [m.raw.get("caption") for m in preview] == ["Nowy plac zabaw w Niemenczynie", None]
    await rasa.click("✅ Siųsti gavėjams: 1", confirm)
    await rasa.edited()
    await rasa.receive_one()  # the progress message
    album = await anna.receive(2)
    assert len({m.raw["media_group_id"] for m in album}) == 1 and album[0].text == "Nowy plac zabaw w Niemenczynie"

    report = await rasa.edited(timeout=15)
    while not report.text.startswith("📣 Skelbimas #1: išsiųstas"):
        report = await rasa.edited(timeout=15)
    await rasa.send("/stop 1")  # too late: it is done
    assert (await rasa.receive_one()).text == "Skelbimas #1 nebesiunčiamas (baigtas, sustabdytas arba nežinomas)."
