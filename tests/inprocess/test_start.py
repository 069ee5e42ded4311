"""A resident's first minutes with the bot, in Polish, Lithuanian and English: greeting, language,
consent, the menu, help, and answers to what the bot does not expect. In process (fast): none of
this needs a real process; surviving a restart stays in tests/e2e/test_start.py."""

from sqlalchemy import select

from bot.store.db import Database
from bot.store.models import Resident
from tests.catalog import tr
from tests.support.driver import Telegram
from tests.support.helpers import onboard

MUNICIPALITY = {
    "pl": "Samorząd Rejonu Wileńskiego",
    "lt": "Vilniaus rajono savivaldybė",
    "en": "Vilnius District Municipality",
}  # from its .toml
HELLO = "Hello! This is the e-service desk of {municipality}."
NOT_UNDERSTOOD = "Sorry, we did not understand that. Please use the menu buttons, or type /help."
NO_SUCH_COMMAND = "There is no command {command}. Available: /new, /cases, /news, /language, /privacy, /help, /cancel, /start."
HELP = (
    "<b>E-service desk of {municipality}</b>\n\n"
    "Here you can contact the municipality without queues, in Polish, Lithuanian or English: "
    "submit a request, a complaint or a report of a problem, with photos, documents and a location. "
    "You get a case number and the date by which the law requires an answer (20 working days), "
    "and the clerk's answer arrives here.\n\n"
    "/new: submit a request, complaint or report\n"
    "/cases: my cases and their status (or type a case number)\n"
    "/news: announcements and news subscriptions\n"
    "/language: change the language\n"
    "/cancel: leave the current step\n"
    "/start: main menu"
)
YOUR_DATA = "Your data: /privacy shows the privacy notice, /mydata sends you everything we keep about you, /forget erases your profile."


def help_text(locale: str) -> str:
    return tr(locale, HELP, municipality=MUNICIPALITY[locale]) + "\n\n" + tr(locale, YOUR_DATA)


async def test_start_in_polish(bot, telegram: Telegram, database: Database) -> None:
    anna = await telegram.resident("Anna", language_code="pl")
    await anna.send("/start")
    hello, picker = await anna.receive(2)
    assert hello.text == tr("pl", HELLO, municipality=MUNICIPALITY["pl"])
    assert picker.buttons == ["✓ Polski", "Lietuvių", "English"]  # preselected from Telegram's language
    assert picker.text.splitlines()[0] == "Proszę wybrać język."

    await anna.click("✓ Polski")
    assert (await anna.edited()).text == "Język: Polski"
    notice = await anna.receive_one()
    assert notice.html is not None
    assert notice.html.startswith(
        "<b>Informacja o ochronie danych osobowych</b>"
    )  # the notice's own wording: bot/privacy_notice
    assert notice.text.endswith("\n\n" + tr("pl", "Press “Noted” to continue."))
    assert notice.buttons == ["✅ Rozumiem"]

    await anna.click("✅ Rozumiem")
    assert (await anna.edited()).buttons == []  # the consent button is gone
    menu = await anna.receive_one()
    assert menu.text == tr(
        "pl", "Thank you. You can now use the menu below. Type /help at any time to see how we can help."
    )
    assert menu.keyboard_buttons == [
        "📝 Nowa sprawa",
        "📂 Moje sprawy",
        "📰 Aktualności",
        "🏗 Projekty",
        "🌐 Język",
        "❓ Pomoc",
        "💡 Zaproponuj usprawnienie",
    ]
    offer = await anna.receive_one()
    assert offer.text == tr(
        "pl",
        "Would you like news from the municipality? Choose topics (you can change them any time under “📰 News”).",
    )
    assert offer.buttons == [
        "➕ Aktualności ogólne",
        "➕ Projekty i inwestycje",
        "➕ Drogi i transport",
        "➕ Sytuacje nadzwyczajne",  # the topics, from the .toml
        "🏘 Wybierz moje starostwo",
        "🗞 Najnowsze ogłoszenia",
    ]

    async with database.read() as session:
        resident = (await session.execute(select(Resident))).scalar_one()
    assert (resident.id, resident.locale, resident.display_name) == (anna.user["id"], "pl", "Anna")
    assert resident.consent_at is not None

    await anna.send("/start")
    assert (await anna.receive_one()).text == tr(
        "pl", "Welcome back! How can we help you? Choose from the menu below."
    )


async def test_start_in_lithuanian_with_help_and_cancel(bot, telegram: Telegram) -> None:
    jonas = await telegram.resident("Jonas", language_code="lt")
    await jonas.send("/start")
    hello, picker = await jonas.receive(2)
    assert hello.text == tr("lt", HELLO, municipality=MUNICIPALITY["lt"])
    assert picker.buttons == ["Polski", "✓ Lietuvių", "English"]
    await jonas.click("✓ Lietuvių")
    await jonas.edited()
    assert (await jonas.receive_one()).buttons == ["✅ Susipažinau"]
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
    await jonas.receive_one()  # the offer of news

    await jonas.send("❓ Pagalba")
    assert (await jonas.receive_one()).text == help_text("lt")
    await jonas.send("/cancel")
    assert (await jonas.receive_one()).text == "Nėra ko atšaukti."


async def test_unknown_language_code_is_offered_english_and_commands_are_per_language(
    bot, telegram: Telegram
) -> None:
    hans = await telegram.resident("Hans", language_code="de")
    await hans.send("/start")
    _, picker = await hans.receive(2)
    assert picker.buttons == ["Polski", "Lietuvių", "✓ English"]

    menus = {
        (row["language_code"], row["scope"]): [c["description"] for c in row["commands"]]
        for row in await telegram.commands()
    }
    private = '{"type": "all_private_chats"}'
    assert menus[("pl", private)][0] == "Menu główne"
    assert menus[("lt", private)][0] == "Pagrindinis meniu"
    assert menus[("en", private)][0] == "Main menu"
    assert menus[("", private)][0] == "Menu główne"  # DEFAULT_LOCALE for everyone else


async def test_language_change_switches_texts_menu_and_commands(bot, telegram: Telegram) -> None:
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")

    await anna.send("🌐 Język")
    picker = await anna.receive_one()
    assert picker.buttons == ["✓ Polski", "Lietuvių", "English"]  # the current choice
    await anna.click("English")
    assert (await anna.edited()).text == "Language: English"
    done = await anna.receive_one()
    assert done.text == "Done. We will write to you in English from now on."
    assert done.keyboard_buttons == [
        "📝 New case",
        "📂 My cases",
        "📰 News",
        "🏗 Projects",
        "🌐 Language",
        "❓ Help",
        "💡 Suggest an improvement",
    ]

    await anna.send("/help")
    assert (await anna.receive_one()).text == help_text("en")
    chat_scope = f'{{"chat_id": {anna.user["id"]}, "type": "chat"}}'
    personal = [row for row in await telegram.commands() if row["scope"] == chat_scope]
    assert personal[-1]["commands"][0]["description"] == "Main menu"


async def test_unexpected_messages_get_a_helpful_answer(bot, telegram: Telegram) -> None:
    ona = await telegram.resident("Ona", language_code="lt")
    await ona.send_sticker()
    answer = await ona.receive_one()
    assert answer.text == tr("lt", NOT_UNDERSTOOD) + "\n" + tr(
        "lt", "Send /start to begin."
    )  # not yet onboarded

    await onboard(ona, "lt")
    await ona.send_voice()
    assert (await ona.receive_one()).text == tr("lt", NOT_UNDERSTOOD)
    await ona.send("/frobnicate&<b>")
    answer = await ona.receive_one()
    assert answer.text == tr("lt", NO_SUCH_COMMAND, command="/frobnicate&<b>")  # escaped, shown as typed
    await ona.send("Labas, kaip sekasi?")
    assert (await ona.receive_one()).keyboard_buttons == [
        "📝 Naujas kreipimasis",
        "📂 Mano kreipimaisi",
        "📰 Naujienos",
        "🏗 Projektai",
        "🌐 Kalba",
        "❓ Pagalba",
        "💡 Pasiūlyti patobulinimą",
    ]


async def test_without_onboarding_every_resident_entry_and_old_button_gets_one_answer(
    bot, telegram: Telegram
) -> None:
    """After /forget (as before the privacy notice is acknowledged) the menu's entries, the
    residents' commands and the buttons of old messages all answer alike: start with /start."""
    jonas = await telegram.resident("Jonas", language_code="lt")
    offer = await onboard(jonas, "lt")  # the offer of news, with its buttons
    await jonas.send("/forget")
    await jonas.receive_one()
    await jonas.click(tr("lt", "🗑 Erase my profile"))
    await jonas.edited()
    await jonas.receive_one()

    start_first = tr("lt", "Please start with /start: choose your language and accept the privacy notice.")
    for typed in (
        "/new",
        tr("lt", "📝 New case"),
        "/cases",
        tr("lt", "📂 My cases"),
        "/news",
        "/projects",
        tr("lt", "💡 Suggest an improvement"),
    ):
        await jonas.send(typed)
        assert (await jonas.receive_one()).text == start_first, typed
    await jonas.click(offer.buttons[0], offer)  # a news topic, from before /forget
    assert (await jonas.answer())["text"] == start_first
    await jonas.forge_button("in:submit:", offer)  # a submission's old "Submit"
    assert (await jonas.answer())["text"] == start_first
    await jonas.send("Labas")  # not a place to go: the usual answer, which says how to begin
    assert (await jonas.receive_one()).text == tr("lt", NOT_UNDERSTOOD) + "\n" + tr(
        "lt", "Send /start to begin."
    )
