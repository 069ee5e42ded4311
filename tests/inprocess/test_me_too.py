""" "Me too", over the sandbox's teams (`desk`): two residents report the same street lamp 50 m
apart; the second is offered the first (without its text unless it is public) and follows it;
the card counts both; the clerk's answer to the public report reaches both, each in their language."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlmodel import col

from bot.app import App
from bot.services.case_commands import Action, Clerk
from bot.store.db import Database
from bot.store.models import Broadcast, Case, Follow, FollowKind, utcnow
from tests.catalog import tr
from tests.support.driver import Person, Received, Telegram
from tests.support.helpers import LABELS, Desk, choose, onboard, submit_case, wait_until

LAMP = {"pl": "Oświetlenie ulic", "lt": "Gatvių apšvietimas"}
REPORT = {"pl": "🚧 Zgłoszenie problemu", "lt": "🚧 Pranešimas apie problemą"}
HERE = (54.70000, 25.30000)
FIFTY_METRES_NORTH = (54.70045, 25.30000)


async def report_up_to_the_place(
    person: Person, locale: str, description: str, place: tuple[float, float]
) -> list[Received]:
    """A report of a broken lamp up to its place: what the bot says after the location."""
    labels = LABELS[locale]
    await person.send(labels["new"])
    await person.receive_one()
    await choose(person, REPORT[locale])
    await choose(person, labels["whole"])
    await choose(person, LAMP[locale])
    await person.send(description)
    await person.receive_one()
    await choose(person, labels["skip"])
    await person.share_location(*place)
    first = await person.receive_one()
    if first.text == tr(locale, "Thank you."):
        return [first, await person.receive_one()]
    return [first]


async def finish(person: Person, locale: str) -> Received:
    await person.send(LABELS[locale]["here"])
    await person.receive(2)
    await person.click(LABELS[locale]["submit"])
    await person.edited()
    return await person.receive_one()


async def first_report(telegram: Telegram, desk: Desk) -> tuple[Person, Received]:
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    after = await report_up_to_the_place(anna, "pl", "Nie świeci latarnia przy szkole, Jan Kowalski", HERE)
    assert len(after) == 1, "nothing open nearby: on to the contact step"
    await finish(anna, "pl")
    card = await desk.member.receive_one()
    await desk.member.receive_one()  # the place, under the card
    return anna, card


async def test_the_second_resident_follows_the_first_report_and_both_get_the_answer(
    desk: Desk, bot: App, telegram: Telegram, store: Database
) -> None:
    anna, card = await first_report(telegram, desk)
    commands = bot.dispatcher["commands"]
    async with store.read() as session:
        case = (await session.execute(select(Case))).scalar_one()
    await commands.act(case.id, Action.PUBLISH, Clerk(1, "Petras"))  # a clerk makes the report public
    await desk.member.edited()

    jonas = await telegram.resident("Jonas", language_code="lt")
    await onboard(jonas, "lt")
    thanks, offer = await report_up_to_the_place(jonas, "lt", "Neveikia žibintas", FIFTY_METRES_NORTH)
    assert (
        tr("lt", "<b>Has this already been reported?</b> These open reports look like yours:") in offer.text
    )
    assert "1. Gatvių apšvietimas · " + tr("lt", "{metres} m away", metres=50) in offer.text
    assert "Nie świeci latarnia przy szkole" in offer.text  # public: its description is shown
    assert offer.buttons == [
        tr("lt", "➕ This affects me too"),
        tr("lt", "Continue with a new case"),
        tr("lt", "✖️ Cancel"),
    ]
    await jonas.click(tr("lt", "➕ This affects me too"), offer)
    await jonas.edited()
    done = await jonas.receive_one()
    assert done.text.startswith(
        tr(
            "lt",
            "✅ You now follow case {number}: we will tell you here when its status changes. No new case was opened. You will find it under “My cases”.",
            number=case.number,
        )[:20]
    )
    async with store.read() as session:
        assert len((await session.execute(select(Case))).scalars().all()) == 1, "no new case"
        follow = (
            await session.execute(select(Follow).where(col(Follow.kind) == FollowKind.CASE))
        ).scalar_one()
        assert follow.target == str(case.id)

    edited = await desk.member.edited()
    assert tr("lt", "👥 Affected residents: {count}", count=2) in edited.text

    await jonas.send(tr("lt", "📂 My cases"))
    listing = await jonas.receive_one()
    assert f"👥 {case.number}" in listing.text and "Nie świeci" not in listing.text

    await commands.act(
        case.id, Action.ANSWER, Clerk(1, "Petras"), text="Latarnia naprawiona / Žibintas pataisytas"
    )
    to_anna = await anna.receive_one()
    assert tr("pl", "Answered") in to_anna.text
    to_jonas = await jonas.receive_one()
    assert to_jonas.text.startswith("🔔 Gatvių apšvietimas · ")
    assert tr("lt", "The municipality's answer:") in to_jonas.text and "Žibintas pataisytas" in to_jonas.text
    await wait_until(lambda: _finished(store), what="the followers' notice sent")


async def _finished(store: Database) -> bool:
    async with store.read() as session:
        broadcast = (await session.execute(select(Broadcast))).scalars().all()
        return bool(broadcast) and all(b.status == "done" for b in broadcast)


async def test_a_report_that_is_not_public_is_offered_without_its_text(
    desk: Desk, bot: App, telegram: Telegram, store: Database
) -> None:
    anna, _card = await first_report(telegram, desk)
    jonas = await telegram.resident("Jonas", language_code="lt")
    await onboard(jonas, "lt")
    _thanks, offer = await report_up_to_the_place(jonas, "lt", "Neveikia žibintas", FIFTY_METRES_NORTH)
    assert "latarnia" not in offer.text and "Kowalski" not in offer.text and "Anna" not in offer.text
    await jonas.click(tr("lt", "Continue with a new case"), offer)
    await jonas.edited()
    contact = "How would you like to receive the answer? We answer here in Telegram. If you wish, you can also share your phone number so that a clerk can call you."
    assert (await jonas.receive_one()).text == tr("lt", contact)
    await finish(jonas, "lt")
    async with store.read() as session:
        assert len((await session.execute(select(Case))).scalars().all()) == 2


async def test_far_away_is_not_offered(desk: Desk, bot: App, telegram: Telegram) -> None:
    await first_report(telegram, desk)
    jonas = await telegram.resident("Jonas", language_code="lt")
    await onboard(jonas, "lt")
    after = await report_up_to_the_place(jonas, "lt", "Neveikia žibintas", (54.70500, 25.30000))  # 550 m
    assert len(after) == 1


# --- duplicates merged by clerks -------------------------------------------------------------

DUPLICATE = "🔗 Kreipimosi dublikatas…"


async def mark_duplicate(clerk: Person, card: Received, number: str) -> Received:
    """ "Duplicate of…" on the card, the original's number in the case's topic: the bot's reply (or None)."""
    await clerk.click(DUPLICATE, card)
    prompt = await clerk.receive_one()
    assert prompt.text.startswith(
        tr(
            "lt",
            "{number}: write the number of the case this one duplicates. This case is closed, and its resident follows that one.",
            number=card.text.split()[1],
        )
    )
    await clerk.send(number, thread_id=card.thread_id)
    return prompt


def no_such_case(number: str) -> str:
    again = tr(
        "lt",
        "Press “{button}” on the card again to write the original's number, e.g. {number}.",
        button=DUPLICATE,
        number=number,
    )
    return tr("lt", "There is no such case: nothing was changed.") + " " + again


async def test_a_clerk_merges_a_duplicate_and_its_resident_follows_the_original(
    desk: Desk, bot: App, telegram: Telegram, store: Database
) -> None:
    anna, first_card = await first_report(telegram, desk)
    marta = await telegram.resident("Marta", language_code="pl")
    await onboard(marta, "pl")
    await submit_case(marta, "pl", REPORT["pl"], LAMP["pl"], "Ciemno na ulicy")  # no place: nothing offered
    second = await desk.member.receive_one()
    assert second.text.split()[1] == "VRS-2026-000002" and DUPLICATE in second.buttons
    commands = bot.dispatcher["commands"]
    await commands.act(2, Action.PUBLISH, Clerk(1, "Petras"))  # shown in the Open311 listing
    await desk.member.edited()

    await mark_duplicate(desk.member, second, "VRS-2026-000002")
    assert (await desk.member.receive_one()).text == tr("lt", "A case cannot be a duplicate of itself.")
    await mark_duplicate(desk.member, second, "VRS-2026-000099")
    assert (await desk.member.receive_one()).text == no_such_case("VRS-2026-000002")
    async with store.read() as session:
        second_case = await session.get(Case, 2)
        assert second_case is not None
        assert second_case.status == "new"

    await mark_duplicate(desk.member, second, "vrs-2026-000001")
    told = await marta.receive_one()
    assert (
        tr(
            "pl",
            "Your case reports the same problem as case {number}, so the two were merged: yours is closed, and we will tell you here when the status of {number} changes.",
            number="VRS-2026-000001",
        )
        in told.text
    )
    async with store.read() as session:
        duplicate = await session.get(Case, 2)
        assert duplicate is not None
        assert duplicate.status == "duplicate" and duplicate.duplicate_of == 1
        follow = (
            await session.execute(select(Follow).where(col(Follow.kind) == FollowKind.CASE))
        ).scalar_one()
        assert (follow.resident_id, follow.target) == (marta.user["id"], "1")
    cards: dict[int, str] = {}
    while first_card.id not in cards or second.id not in cards:  # both cards (the prompt is edited too)
        edited = await desk.member.edited()
        cards[edited.id] = edited.text
    assert tr("lt", "🔗 Duplicates: {numbers}", numbers="VRS-2026-000002") in cards[first_card.id]
    assert tr("lt", "👥 Affected residents: {count}", count=2) in cards[first_card.id]
    assert tr("lt", "🔗 Duplicate of {number}", number="VRS-2026-000001") in cards[second.id]
    assert tr("lt", "Status: {status}", status=tr("lt", "Merged with another case")) in cards[second.id]

    with bot.i18n.context(), bot.i18n.use_locale("en"):
        listed = (await bot.open311.request("VRS-2026-000002", "en"))[0]
    assert listed["status"] == "closed" and listed["status_notes"] == "Duplicate of VRS-2026-000001"

    # Another team's case, by a member of that team: refused (only a head of roads may merge into its case).
    jonas = await telegram.resident("Jonas", language_code="lt")
    await onboard(jonas, "lt")
    await submit_case(jonas, "lt", "📄 Prašymas", "Kiti klausimai", "Prašau pažymos", eldership="Avižieniai")
    elsewhere = await desk.eldership.receive_one()
    await mark_duplicate(desk.eldership, elsewhere, "VRS-2026-000001")
    refusal = (await desk.eldership.receive_one()).text
    assert refusal == tr(
        "lt",
        "{number} is handled by {team}: only a head of that team can merge a case into it.",
        number="VRS-2026-000001",
        team="Kelių skyrius",
    )
    async with store.read() as session:
        third_case = await session.get(Case, 3)
        assert third_case is not None
        assert third_case.status == "new"


async def test_without_a_place_the_same_eldership_is_offered_and_a_hidden_answer_stays_hidden(
    desk: Desk, bot: App, telegram: Telegram, store: Database
) -> None:
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    await submit_case(
        anna, "pl", REPORT["pl"], LAMP["pl"], "Latarnia nie świeci od tygodnia", eldership="Awiżenie"
    )
    jonas = await telegram.resident("Jonas", language_code="lt")
    await onboard(jonas, "lt")
    labels = LABELS["lt"]
    await jonas.send(labels["new"])
    await jonas.receive_one()
    await choose(jonas, REPORT["lt"])
    await choose(jonas, "Avižieniai")
    await choose(jonas, LAMP["lt"])
    await jonas.send("Neveikia žibintas")
    await jonas.receive_one()
    await choose(jonas, labels["skip"])
    await jonas.send(labels["skip"])  # no place: the same eldership
    _thanks, offer = await jonas.receive(2)
    assert tr("lt", "in the same eldership") in offer.text and "Latarnia" not in offer.text
    await jonas.click(tr("lt", "➕ This affects me too"), offer)
    await jonas.edited()
    await jonas.receive_one()

    commands = bot.dispatcher["commands"]
    await commands.act(1, Action.ANSWER, Clerk(1, "Petras"), text="Wymieniono żarówkę, p. Anna")
    await anna.receive_one()
    told = await jonas.receive_one()
    assert tr("lt", "The problem has been dealt with: the case is resolved.") in told.text
    assert "Anna" not in told.text and "żarówkę" not in told.text  # not public: the answer to Anna stays hers


async def test_a_wrong_number_ends_the_merge_prompt_and_changes_nothing(
    desk: Desk, bot: App, telegram: Telegram, store: Database
) -> None:
    await first_report(telegram, desk)
    marta = await telegram.resident("Marta", language_code="pl")
    await onboard(marta, "pl")
    await submit_case(marta, "pl", REPORT["pl"], LAMP["pl"], "Ciemno na ulicy")
    second = await desk.member.receive_one()
    for typed in (
        "ta sama latarnia co wczoraj",
        "VRS-2026-000099",
        "7",
    ):  # words, an unknown number, too short for a number
        prompt = await mark_duplicate(desk.member, second, typed)
        assert (await desk.member.receive_one()).text == no_such_case("VRS-2026-000002")
        retired = await desk.member.edited()
        assert (retired.id, retired.buttons) == (prompt.id, []), "the prompt no longer waits"
    async with store.read() as session:
        case = await session.get(Case, 2)
        assert case is not None
        assert (case.status, case.duplicate_of) == ("new", None)
        assert (await session.execute(select(Follow))).first() is None
    # The prompt has ended: what the clerk writes next in the topic is a message to the resident, as always.
    await desk.member.send("Sprawdzimy jutro", thread_id=second.thread_id)
    assert "Sprawdzimy jutro" in (await marta.receive_one()).text


async def test_a_case_closed_longer_ago_than_the_reopen_window_takes_no_duplicates(
    desk: Desk, bot: App, telegram: Telegram, store: Database
) -> None:
    await first_report(telegram, desk)
    commands = bot.dispatcher["commands"]
    await commands.act(1, Action.ANSWER, Clerk(1, "Petras"), text="Latarnia naprawiona")
    window = timedelta(days=bot.config.settings.reopen_days)
    async with store.write() as session:
        (await session.get_one(Case, 1)).closed_at = utcnow() - window - timedelta(hours=1)
    marta = await telegram.resident("Marta", language_code="pl")
    await onboard(marta, "pl")
    await submit_case(marta, "pl", REPORT["pl"], LAMP["pl"], "Ciemno na ulicy")
    second = await desk.member.receive_one()
    while second.text.split()[1:2] != ["VRS-2026-000002"]:  # the first case's answer in its topic came before
        second = await desk.member.receive_one()

    await mark_duplicate(desk.member, second, "VRS-2026-000001")
    refusal = "{number} was closed too long ago to be reopened; it cannot take duplicates."
    assert (await desk.member.receive_one()).text == tr("lt", refusal, number="VRS-2026-000001")
    async with store.read() as session:
        assert (await session.get_one(Case, 2)).status == "new"
        assert (await session.execute(select(Follow))).first() is None

    # Within the window it may: the same case, closed an hour less than the window ago.
    async with store.write() as session:
        (await session.get_one(Case, 1)).closed_at = utcnow() - window + timedelta(hours=1)
    await mark_duplicate(desk.member, second, "VRS-2026-000001")
    await wait_until(lambda: _status(store, 2, "duplicate"), what="the merge")


async def _status(store: Database, case_id: int, status: str) -> bool:
    async with store.read() as session:
        return (await session.get_one(Case, case_id)).status == status
