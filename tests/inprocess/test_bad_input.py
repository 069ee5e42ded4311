"""Odd input, in process: invisible descriptions, hand-made buttons with Unicode digits, huge or
negative numbers, and commands with bad numbers get an answer, never an exception (a handler's
exception fails the test at the `bot` fixture's teardown; a logged one, here)."""

from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlmodel import col

from bot.sandbox.emulator import Emulator
from bot.store.db import Database
from bot.store.models import Case
from tests.catalog import tr
from tests.support.driver import Telegram
from tests.support.helpers import LABELS, choose, onboard, staff, submit_case

ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"


@pytest.fixture(autouse=True)
def no_traceback(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Nothing the bot logs carries a traceback (end to end: "Traceback" is not in its log)."""
    yield
    logged = [record for record in caplog.records if record.exc_info]
    assert not logged, [record.getMessage() for record in logged]


async def test_a_resident_gets_answers_to_odd_input(
    bot, telegram: Telegram, expected_errors: list[str]
) -> None:
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
    expected_errors.append("message is not modified")
    await anna.forge_button(
        "in:page:9999", elderships
    )  # and again: Telegram refuses an edit that changes nothing; no error
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

    for data in (
        "cs:page:0:-1",
        "cs:open:²:0",
        f"cs:open:{2**70}:0",
        "fb:99999999999999999999:score:5:",
        "pv:²::0:t:0",
        "pv:1::999:t:0",
    ):
        await anna.forge_button(data, elderships)
        assert (await anna.answer())["text"] == tr("pl", "This button is no longer active."), data
    await anna.nothing_more()


async def test_a_nul_character_is_dropped_and_the_case_stored(
    bot, telegram: Telegram, store: Database
) -> None:
    """PostgreSQL's text cannot hold U+0000: it is dropped where Telegram's JSON is read."""
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    confirmation = await submit_case(
        anna,
        "pl",
        "🚧 Zgłoszenie problemu",
        "Drogi, ulice i transport",
        "Dziura\x00 w jezdni\x00\x00 przy szkole",
    )
    assert (
        tr("pl", "Case number: <b>{number}</b>", number="VRS-2026-000001") in confirmation.text.splitlines()
    )
    async with store.read() as session:
        assert (await session.execute(select(col(Case.description)))).scalars().all() == [
            "Dziura w jezdni przy szkole"
        ]


async def test_staff_commands_with_bad_numbers_get_the_usage(
    bot, telegram: Telegram, emulator: Emulator
) -> None:
    rasa = await staff(telegram, emulator)
    stop = tr("lt", "Usage: /stop 12 (the number from /broadcasts)")
    results = tr("lt", "Usage: /results 3 (the number from /polls)")
    close = tr("lt", "Usage: /close 3 (the number from /polls)")
    for command, usage in [
        ("/stop abc", stop),
        ("/stop ²", stop),
        ("/results 99999999999999999999999", results),
        ("/results １", results),
        ("/close -1", close),
    ]:
        await rasa.send(command)
        assert (await rasa.receive_one()).text == usage, command
