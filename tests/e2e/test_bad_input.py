"""Odd input through the real bot: invisible descriptions, hand-made buttons with Unicode digits,
huge or negative numbers, and commands with bad numbers get an answer, never an exception."""

from sqlalchemy import select

from bot.sandbox.emulator import Emulator
from bot.store.db import Database
from bot.store.models import Case
from tests.catalog import tr
from tests.conftest import COMMS_CHAT_ID
from tests.support.driver import Person, Telegram
from tests.support.helpers import LABELS, choose, onboard, submit_case

ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"


async def test_a_resident_gets_answers_to_odd_input(bot, telegram: Telegram) -> None:
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    await anna.send(LABELS["pl"]["new"])
    await anna.receive_one()
    elderships = await choose(anna, "📄 Wniosek")

    for data in ("in:page:²", "in:page:-1", "in:page:" + "9" * 30):  # not buttons the bot made
        await anna.forge_button(data, elderships)
        assert (await anna.answer())["text"] == tr("pl", "This button is no longer active.")
    await anna.forge_button("in:page:9999", elderships)  # beyond the last page: the last page
    assert "Zujuny" in (await anna.edited()).buttons
    bot.expected_errors.append("message is not modified")
    await anna.forge_button("in:page:9999", elderships)  # and again: Telegram refuses an edit that changes nothing; no error
    await anna.answer()

    await anna.click(LABELS["pl"]["whole"], elderships)
    await anna.edited()
    categories = await anna.receive_one()
    await choose(anna, categories.buttons[0])
    too_short = tr(
        "pl",
        "This is too short to act on. Please describe the matter in at least {min} character.",
        "This is too short to act on. Please describe the matter in at least {min} characters.",
        10,
        min=10,
    )
    await anna.send(ZERO_WIDTH * 4 + " \u200b " * 5)
    assert (await anna.receive_one()).text == too_short
    await anna.send("\u200bDziura\u200b\u200b\u200b\u200b")  # six letters that show
    assert (await anna.receive_one()).text == too_short

    for data in ("cs:page:0:-1", "cs:open:²:0", f"cs:open:{2**70}:0", "fb:99999999999999999999:score:5:", "pv:²::0:t:0", "pv:1::999:t:0"):
        await anna.forge_button(data, elderships)
        assert (await anna.answer())["text"] == tr("pl", "This button is no longer active."), data
    await anna.nothing_more()
    assert "Traceback" not in bot.log_path.read_text(errors="replace")


async def test_a_nul_character_is_dropped_and_the_case_stored(bot, telegram: Telegram, store: Database) -> None:
    """PostgreSQL's text cannot hold U+0000: it is dropped where Telegram's JSON is read."""
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    confirmation = await submit_case(anna, "pl", "🚧 Zgłoszenie problemu", "Drogi, ulice i transport", "Dziura\x00 w jezdni\x00\x00 przy szkole")
    assert "VRS-" in confirmation.text
    async with store.read() as session:
        assert (await session.execute(select(Case.description))).scalars().all() == ["Dziura w jezdni przy szkole"]
    assert "Traceback" not in bot.log_path.read_text(errors="replace")


async def test_staff_commands_with_bad_numbers_get_the_usage(bot, telegram: Telegram, emulator: Emulator) -> None:
    rasa: Person = await telegram.person("Rasa", language_code="lt")
    emulator.chats[COMMS_CHAT_ID].members.add(rasa.user["id"])
    rasa = rasa.in_chat(COMMS_CHAT_ID)
    for command, usage in [
        ("/stop abc", "Naudojimas: /stop 12"),
        ("/stop ²", "Naudojimas: /stop 12"),
        ("/results 99999999999999999999999", "Naudojimas: /results 3"),
        ("/results １", "Naudojimas: /results 3"),
        ("/close -1", "Naudojimas: /close 3"),
    ]:
        await rasa.send(command)
        assert (await rasa.receive_one()).text.startswith(usage), command
    assert "Traceback" not in bot.log_path.read_text(errors="replace")
