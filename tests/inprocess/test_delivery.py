"""When Telegram fails or delivers again, in process: a submit press delivered again makes no
second case (also while Telegram fails the answer), a confirmation it failed to deliver comes
through the outbox. (Moved from tests/e2e/test_intake.py. A question it failed to deliver stays
there: the handler's error ends in the process's log, which in process fails the test.)"""

from sqlalchemy import select

from bot.store.db import Database
from bot.store.models import Case
from tests.catalog import tr
from tests.support.driver import Telegram
from tests.support.helpers import fill_in_case, onboard


async def test_a_submit_press_delivered_again_makes_no_second_case(
    bot, telegram: Telegram, store: Database, expected_errors: list[str]
) -> None:
    """Telegram delivers the confirming update again (the bot "crashed" before confirming it):
    the same confirmation, one case. (The steps of a submission: tests/inprocess/test_submission.py.)"""
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    await fill_in_case(
        anna,
        "pl",
        "🚧 Zgłoszenie problemu",
        "Oświetlenie ulic",
        "Nie świeci latarnia przy szkole",
        eldership="Awiżenie",
    )
    submit_update = await anna.click("✅ Wyślij")
    await anna.edited()
    confirmation = await anna.receive_one()
    assert (
        tr("pl", "Case number: <b>{number}</b>", number="VRS-2026-000001") in confirmation.text.splitlines()
    )

    # The button press was answered the first time, so Telegram refuses a second answer.
    expected_errors.append("query is too old")
    await telegram.redeliver(submit_update)
    assert (await anna.receive_one()).text == confirmation.text
    async with store.read() as session:
        assert len((await session.execute(select(Case))).scalars().all()) == 1


async def test_a_submit_press_delivered_again_while_telegram_fails_still_confirms(
    bot, telegram: Telegram, store: Database, expected_errors: list[str]
) -> None:
    """The confirming update comes again while Telegram answers 502 to every try of the answer:
    the confirmation goes through the outbox all the same, once, and there is one case."""
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    await fill_in_case(anna, "pl", "📄 Wniosek", "Pomoc społeczna", "Proszę o informację o zasiłku celowym")
    submit_update = await anna.click("✅ Wyślij")
    await anna.edited()
    confirmation = await anna.receive_one()

    expected_errors.append("query is too old")
    await telegram.fault(
        "error", code=502, chat_id=anna.user["id"], method="sendMessage", count=4
    )  # every direct try
    await telegram.redeliver(submit_update)
    again = await anna.receive_one(timeout=30)
    assert (again.text, again.keyboard_buttons) == (confirmation.text, confirmation.keyboard_buttons)
    await anna.nothing_more()
    async with store.read() as session:
        assert len((await session.execute(select(Case))).scalars().all()) == 1


async def test_a_confirmation_telegram_failed_to_deliver_comes_through_the_outbox(
    bot, telegram: Telegram, store: Database
) -> None:
    """Telegram answered 502 to every try of the confirmation: the case is stored, and its number
    and deadline still reach Anna, once, with the main menu, as soon as Telegram takes them."""
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    await fill_in_case(anna, "pl", "📄 Wniosek", "Pomoc społeczna", "Proszę o informację o zasiłku celowym")
    await telegram.fault(
        "error", code=502, chat_id=anna.user["id"], method="sendMessage", count=4
    )  # every direct try
    await anna.click("✅ Wyślij")
    await anna.edited()
    confirmation = await anna.receive_one(timeout=30)
    assert (
        tr("pl", "Case number: <b>{number}</b>", number="VRS-2026-000001") in confirmation.text.splitlines()
    )
    assert "📝 Nowa sprawa" in confirmation.keyboard_buttons
    await anna.nothing_more()  # once
    async with store.read() as session:
        assert len((await session.execute(select(Case))).scalars().all()) == 1
