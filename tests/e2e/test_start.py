"""A resident's conversation and language through a restart: kill -9, and with Redis. (The first
minutes themselves, which need no real process, are in tests/inprocess/test_start.py.)"""

import asyncio

import pytest

from tests.conftest import TEST_REDIS_URL
from tests.support.driver import Telegram


async def test_conversation_and_language_survive_kill_9(bot, telegram: Telegram) -> None:
    jonas = await telegram.resident("Jonas", language_code="pl")
    await jonas.send("/start")
    await jonas.receive(2)
    await jonas.click("Lietuvių")  # chooses Lithuanian although Telegram says Polish
    await jonas.edited()
    await jonas.receive_one()  # the privacy notice: now waiting for consent

    await bot.kill()
    await jonas.send("Ar galiu tęsti?")  # arrives while the bot is down
    await bot.start()

    hint, notice = await jonas.receive(2)
    assert hint.text == "Norėdami tęsti, perskaitykite informaciją ir paspauskite „Susipažinau“."
    assert notice.buttons == ["✅ Susipažinau"]
    await jonas.click("✅ Susipažinau")
    await jonas.edited()
    assert (await jonas.receive_one()).keyboard_buttons == [
        "📝 Naujas kreipimasis",
        "📂 Mano kreipimaisi",
        "📰 Naujienos",
        "🏗 Projektai",
        "🌐 Kalba",
        "❓ Pagalba",
        "💡 Pasiūlyti patobulinimą",
    ]


@pytest.mark.skipif(not TEST_REDIS_URL, reason="needs TEST_REDIS_URL")
async def test_conversation_survives_restart_with_redis(
    emulator, telegram: Telegram, settings_env, tmp_path
) -> None:
    from tests.e2e.conftest import BotProcess

    assert TEST_REDIS_URL is not None  # the skipif above
    if "sqlite" not in settings_env["DATABASE_URL"]:
        pytest.skip("runs once, with SQLite for cases and Redis for conversations")
    process = BotProcess(emulator, {**settings_env, "REDIS_URL": TEST_REDIS_URL}, tmp_path / "bot.log")
    await process.start()
    try:
        ona = await telegram.resident("Ona", language_code="lt")
        await ona.send("/start")
        await ona.receive(2)
        await ona.send("labas")  # waiting for a language: the state is in Redis
        assert (await ona.receive(2))[0].text == "Pasirinkite kalbą vienu iš mygtukų."
        # The handler releases the person's Redis lock just after replying; a kill in between
        # would leave the lock for its 60 s timeout. Kill once both updates are done.
        for _ in range(50):
            if process.log().count("is handled") >= 2:
                break
            await asyncio.sleep(0.1)
        await process.kill()
        await process.start()
        await ona.send("labas")
        assert (await ona.receive(2))[0].text == "Pasirinkite kalbą vienu iš mygtukų."
    finally:
        await process.stop()
