"""A resident's first minutes with the bot, in Polish and in Lithuanian, through a restart."""

import asyncio

import pytest
from sqlalchemy import select

from bot.store.db import Database
from bot.store.models import Resident
from tests.conftest import TEST_REDIS_URL
from tests.e2e.driver import Person, Telegram


async def onboard(person: Person, language: str, agree: str) -> None:
    await person.send("/start")
    await person.receive(2)
    await person.click(language)
    await person.edited()
    await person.receive_one()
    await person.click(agree)
    await person.edited()
    await person.receive(2)  # the menu, and the offer of news


async def test_start_in_polish(bot, telegram: Telegram, store: Database) -> None:
    anna = await telegram.resident("Anna", language_code="pl")
    await anna.send("/start")
    hello, picker = await anna.receive(2)
    assert "Dzień dobry!" in hello.text and "Samorząd Rejonu Wileńskiego" in hello.text
    assert picker.buttons == ["✓ Polski", "Lietuvių", "English"]  # preselected from Telegram's language
    assert picker.text.splitlines()[0] == "Proszę wybrać język."

    await anna.click("✓ Polski")
    assert (await anna.edited()).text == "Język: Polski"
    notice = await anna.receive_one()
    assert notice.text.startswith("Informacja o ochronie danych osobowych")
    assert "<b>Informacja o ochronie danych osobowych</b>" in notice.html
    assert notice.buttons == ["✅ Rozumiem"]

    await anna.click("✅ Rozumiem")
    assert (await anna.edited()).buttons == []  # the consent button is gone
    menu = await anna.receive_one()
    assert menu.text.startswith("Dziękujemy.")
    assert menu.keyboard_buttons == ["📝 Nowa sprawa", "📂 Moje sprawy", "📰 Aktualności", "🌐 Język", "❓ Pomoc"]
    offer = await anna.receive_one()
    assert offer.text.startswith("Czy chce Pan/Pani otrzymywać aktualności z samorządu?")
    assert offer.buttons[:4] == ["➕ Aktualności ogólne", "➕ Projekty i inwestycje", "➕ Drogi i transport", "➕ Sytuacje nadzwyczajne"]

    async with store.read() as session:
        resident = (await session.execute(select(Resident))).scalar_one()
    assert (resident.id, resident.locale, resident.display_name) == (anna.user["id"], "pl", "Anna")
    assert resident.consent_at is not None

    await anna.send("/start")
    assert (await anna.receive_one()).text.startswith("Witamy ponownie!")


async def test_start_in_lithuanian_with_help_and_cancel(bot, telegram: Telegram) -> None:
    jonas = await telegram.resident("Jonas", language_code="lt")
    await jonas.send("/start")
    hello, picker = await jonas.receive(2)
    assert hello.text.startswith("Sveiki!") and "Vilniaus rajono savivaldybė" in hello.text
    assert picker.buttons == ["Polski", "✓ Lietuvių", "English"]
    await jonas.click("✓ Lietuvių")
    await jonas.edited()
    assert (await jonas.receive_one()).buttons == ["✅ Susipažinau"]
    await jonas.click("✅ Susipažinau")
    await jonas.edited()
    assert (await jonas.receive_one()).keyboard_buttons == ["📝 Naujas kreipimasis", "📂 Mano kreipimaisi", "📰 Naujienos", "🌐 Kalba", "❓ Pagalba"]
    await jonas.receive_one()  # the offer of news

    await jonas.send("❓ Pagalba")
    assert "Elektroninis aptarnavimo langelis" in (await jonas.receive_one()).text
    await jonas.send("/cancel")
    assert (await jonas.receive_one()).text == "Nėra ko atšaukti."


async def test_unknown_language_code_is_offered_english_and_commands_are_per_language(bot, telegram: Telegram) -> None:
    hans = await telegram.resident("Hans", language_code="de")
    await hans.send("/start")
    _, picker = await hans.receive(2)
    assert picker.buttons == ["Polski", "Lietuvių", "✓ English"]

    menus = {(row["language_code"], row["scope"]): [c["description"] for c in row["commands"]] for row in await telegram.commands()}
    private = '{"type": "all_private_chats"}'
    assert menus[("pl", private)][0] == "Menu główne"
    assert menus[("lt", private)][0] == "Pagrindinis meniu"
    assert menus[("en", private)][0] == "Main menu"
    assert menus[("", private)][0] == "Menu główne"  # DEFAULT_LOCALE for everyone else


async def test_language_change_switches_texts_menu_and_commands(bot, telegram: Telegram) -> None:
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "✓ Polski", "✅ Rozumiem")

    await anna.send("🌐 Język")
    picker = await anna.receive_one()
    assert picker.buttons == ["✓ Polski", "Lietuvių", "English"]  # the current choice
    await anna.click("English")
    assert (await anna.edited()).text == "Language: English"
    done = await anna.receive_one()
    assert done.text == "Done. We will write to you in English from now on."
    assert done.keyboard_buttons == ["📝 New case", "📂 My cases", "📰 News", "🌐 Language", "❓ Help"]

    await anna.send("/help")
    assert "E-service desk" in (await anna.receive_one()).text
    chat_scope = f'{{"chat_id": {anna.user["id"]}, "type": "chat"}}'
    personal = [row for row in await telegram.commands() if row["scope"] == chat_scope]
    assert personal[-1]["commands"][0]["description"] == "Main menu"


async def test_unexpected_messages_get_a_helpful_answer(bot, telegram: Telegram) -> None:
    ona = await telegram.resident("Ona", language_code="lt")
    await ona.send_sticker()
    answer = await ona.receive_one()
    assert "nesupratome" in answer.text and "/start" in answer.text  # not yet onboarded

    await onboard(ona, "✓ Lietuvių", "✅ Susipažinau")
    await ona.send_voice()
    assert "nesupratome" in (await ona.receive_one()).text
    await ona.send("/frobnicate&<b>")
    answer = await ona.receive_one()
    assert answer.text.startswith("Komandos /frobnicate&<b> nėra.")  # escaped, shown as typed
    await ona.send("Labas, kaip sekasi?")
    assert (await ona.receive_one()).keyboard_buttons == ["📝 Naujas kreipimasis", "📂 Mano kreipimaisi", "📰 Naujienos", "🌐 Kalba", "❓ Pagalba"]


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
    assert (await jonas.receive_one()).keyboard_buttons == ["📝 Naujas kreipimasis", "📂 Mano kreipimaisi", "📰 Naujienos", "🌐 Kalba", "❓ Pagalba"]


@pytest.mark.skipif(not TEST_REDIS_URL, reason="needs TEST_REDIS_URL")
async def test_conversation_survives_restart_with_redis(emulator, telegram: Telegram, settings_env, tmp_path) -> None:
    from tests.e2e.conftest import BotProcess

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
