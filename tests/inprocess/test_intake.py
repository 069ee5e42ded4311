"""A resident's submission, in process: editing a step from the summary, cancelling, and one's
own cases (their list, details and look-up by number; another's case is not shown)."""

from sqlalchemy import select
from sqlmodel import col

from bot.store.db import Database
from bot.store.models import Case, CaseEvent, EventKind
from tests.catalog import tr
from tests.support.driver import Telegram
from tests.support.helpers import choose, fill_in_case, onboard, start_adding_information, submit_case


async def test_editing_a_step_from_the_summary_and_cancelling(
    bot, telegram: Telegram, store: Database
) -> None:
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    await fill_in_case(anna, "pl", "📄 Wniosek", "Pomoc społeczna", "Proszę o informację o zasiłku")

    await anna.click("✏️ Popraw dane")
    back = tr("pl", "⬅️ Back to the summary")
    assert (await anna.edited()).buttons == [
        "Rodzaj",
        "Starostwo",
        "Kategoria",
        "Opis",
        "Pliki",
        "Lokalizacja",
        "Kontakt",
        back,
    ]
    await anna.click(back)  # nothing to change after all
    assert (await anna.edited()).buttons == ["✅ Wyślij", "✏️ Popraw dane", "✖️ Anuluj"]
    await anna.click("✏️ Popraw dane")
    await anna.edited()
    await anna.click("Opis")
    await anna.edited()
    question = await anna.receive_one()  # the summary comes next, not the files
    assert question.text == tr(
        "pl",
        "Please describe the matter in your own words ({min} to {max} character). The summary follows.",
        "Please describe the matter in your own words ({min} to {max} characters). The summary follows.",
        3000,
        min=10,
        max=3000,
    )
    await anna.send("Proszę o informację o zasiłku celowym na opał")
    _, summary = await anna.receive(2)  # straight back to the summary
    assert (
        summary.text.split("\n\n")[-1] == "Proszę o informację o zasiłku celowym na opał"
    )  # replaced, not added to
    assert summary.buttons == ["✅ Wyślij", "✏️ Popraw dane", "✖️ Anuluj"]

    await anna.click("✖️ Anuluj")
    await anna.edited()
    assert (await anna.receive_one()).text == "Anulowano. Nic nie zostało wysłane."
    async with store.read() as session:
        assert (await session.execute(select(Case))).first() is None


async def test_cancel_command_at_a_step(bot, telegram: Telegram) -> None:
    ona = await telegram.resident("Ona", language_code="lt")
    await onboard(ona, "lt")
    await ona.send("📝 Naujas kreipimasis")
    await ona.receive_one()
    await choose(ona, "📄 Prašymas")
    await ona.send("/cancel")
    assert (await ona.receive_one()).text == "Atšaukta. Niekas nebuvo išsiųsta."
    await ona.send("Labas")  # no longer inside the submission: no case to add it to
    assert (await ona.receive_one()).text == tr(
        "lt",
        "You have no case being handled, so this message was not sent to anyone. To submit it as a new case, press “📝 New case”.",
    )


async def test_my_cases_and_lookup_show_only_ones_own(bot, telegram: Telegram, store: Database) -> None:
    anna = await telegram.resident("Anna", language_code="pl")
    jonas = await telegram.resident("Jonas", language_code="lt")
    await onboard(anna, "pl")
    await onboard(jonas, "lt")
    mine = await submit_case(
        anna, "pl", "📄 Wniosek", "Dokumenty, zaświadczenia", "Proszę o zaświadczenie o zamieszkaniu"
    )
    assert tr("pl", "Case number: <b>{number}</b>", number="VRS-2026-000001") in mine.text.splitlines()
    theirs = await submit_case(
        jonas, "lt", "🚧 Pranešimas apie problemą", "Keliai ir transportas", "Duobė kelyje prie mokyklos"
    )
    assert tr("lt", "Case number: <b>{number}</b>", number="VRS-2026-000002") in theirs.text.splitlines()

    await anna.send("📂 Moje sprawy")
    listing = await anna.receive_one()
    assert listing.html is not None
    assert "<b>Pana/Pani sprawy</b> (1)" in listing.html
    assert listing.buttons == ["VRS-2026-000001"]
    await anna.click("VRS-2026-000001")
    details = await anna.edited()
    received = tr("pl", "Received")
    assert details.text.splitlines() == [
        "📄 VRS-2026-000001 · Wniosek",
        "Dokumenty, zaświadczenia · cały rejon / nie wiem",
        tr("pl", "Status: {status}", status=received),
        "Data wpływu: 23 listopada 2026",
        "Termin odpowiedzi: 21 grudnia 2026 (pozostało 20 dni roboczych)",
        "",
        "Historia",
        f"• 23 listopada 2026: {received}",
    ]
    assert details.buttons == ["➕ Uzupełnij informacje", "⬅️ Moje sprawy"]

    await anna.send("vrs-2026-000002")  # Jonas's case: the same answer as a number that does not exist
    refused = await anna.receive_one()
    await anna.send("VRS-2026-000999")
    missing = await anna.receive_one()
    assert refused.text == "Nie znaleziono sprawy VRS-2026-000002 wśród Pana/Pani spraw."
    assert missing.text == "Nie znaleziono sprawy VRS-2026-000999 wśród Pana/Pani spraw."
    await anna.send("VRS-2026-000001")
    assert (await anna.receive_one()).text == details.text  # the number typed: the same details


async def test_a_menu_button_while_adding_information_leaves_it(
    bot, telegram: Telegram, store: Database
) -> None:
    """The main menu stays on screen while the bot waits for what to add to a case: "📰 News"
    there shows the news and ends the adding; it is not added to the case for the clerks."""
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    await submit_case(
        anna, "pl", "📄 Wniosek", "Dokumenty, zaświadczenia", "Proszę o zaświadczenie o zamieszkaniu"
    )
    await start_adding_information(anna, "VRS-2026-000001")

    await anna.send("📰 Aktualności")
    _, subscriptions = await anna.receive(2)  # the latest news, then the subscriptions
    assert subscriptions.text == tr(
        "pl",
        "<b>News</b>\nTap a topic to subscribe or unsubscribe. Announcements come here, in your language.",
    )
    async with store.read() as session:
        added = (
            (await session.execute(select(CaseEvent).where(col(CaseEvent.kind) == EventKind.MESSAGE_IN)))
            .scalars()
            .all()
        )
    assert added == []  # the button was not taken as information
