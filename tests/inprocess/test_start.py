"""A resident's first minutes with the bot, in Polish, Lithuanian and English: greeting, language,
consent, the menu, help, and answers to what the bot does not expect. In process (fast): none of
this needs a real process; surviving a restart stays in tests/e2e/test_start.py."""

from sqlalchemy import select

from bot.sandbox.driver import Person, Telegram
from bot.store.db import Database
from bot.store.models import Resident


async def onboard(person: Person, language: str, agree: str) -> None:
    await person.send("/start")
    await person.receive(2)
    await person.click(language)
    await person.edited()
    await person.receive_one()
    await person.click(agree)
    await person.edited()
    await person.receive(2)  # the menu, and the offer of news


async def test_start_in_polish(bot, telegram: Telegram, database: Database) -> None:
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

    async with database.read() as session:
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
