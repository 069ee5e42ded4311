""""Me too", over the sandbox's teams (`desk`): two residents report the same street lamp 50 m
apart; the second is offered the first (without its text unless it is public) and follows it;
the card counts both; the clerk's answer to the public report reaches both, each in their language."""

from __future__ import annotations

from sqlalchemy import select

from bot.app import App
from bot.services.workflow import Action, Clerk
from bot.store.db import Database
from bot.store.models import Broadcast, Case, Follow, FollowKind
from tests.catalog import tr
from tests.e2e.driver import Person, Received, Telegram
from tests.e2e.helpers import LABELS, Desk, choose, onboard, wait_until

LAMP = {"pl": "Oświetlenie ulic", "lt": "Gatvių apšvietimas"}
REPORT = {"pl": "🚧 Zgłoszenie problemu", "lt": "🚧 Pranešimas apie problemą"}
HERE = (54.70000, 25.30000)
FIFTY_METRES_NORTH = (54.70045, 25.30000)


async def report_up_to_the_place(person: Person, locale: str, description: str, place: tuple[float, float]) -> list[Received]:
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
    return anna, await desk.member.receive_one()


async def test_the_second_resident_follows_the_first_report_and_both_get_the_answer(desk: Desk, bot: App, telegram: Telegram, store: Database) -> None:
    anna, card = await first_report(telegram, desk)
    workflow = bot.dispatcher["workflow"]
    async with store.read() as session:
        case = (await session.execute(select(Case))).scalar_one()
    await workflow.act(case.id, Action.PUBLISH, Clerk(1, "Petras"))  # a clerk makes the report public
    await desk.member.edited()

    jonas = await telegram.resident("Jonas", language_code="lt")
    await onboard(jonas, "lt")
    thanks, offer = await report_up_to_the_place(jonas, "lt", "Neveikia žibintas", FIFTY_METRES_NORTH)
    assert tr("lt", "<b>Has this already been reported?</b> These open reports look like yours:") in offer.text
    assert "1. Gatvių apšvietimas · " + tr("lt", "{metres} m away", metres=50) in offer.text
    assert "Nie świeci latarnia przy szkole" in offer.text  # public: its description is shown
    assert offer.buttons == [tr("lt", "➕ This affects me too"), tr("lt", "Continue with a new case"), tr("lt", "✖ Cancel")]
    await jonas.click(tr("lt", "➕ This affects me too"), offer)
    await jonas.edited()
    done = await jonas.receive_one()
    assert done.text.startswith(tr("lt", "✅ You now follow case {number}: we will tell you here when its status changes. No new case was opened. You will find it under “My cases”.", number=case.number)[:20])
    async with store.read() as session:
        assert len((await session.execute(select(Case))).scalars().all()) == 1, "no new case"
        follow = (await session.execute(select(Follow).where(Follow.kind == FollowKind.CASE))).scalar_one()
        assert follow.target == str(case.id)

    edited = await desk.member.edited()
    assert tr("lt", "👥 Affected residents: {count}", count=2) in edited.text

    await jonas.send(tr("lt", "📂 My cases"))
    listing = await jonas.receive_one()
    assert f"👥 {case.number}" in listing.text and "Nie świeci" not in listing.text

    await workflow.act(case.id, Action.ANSWER, Clerk(1, "Petras"), text="Latarnia naprawiona / Žibintas pataisytas")
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


async def test_a_report_that_is_not_public_is_offered_without_its_text(desk: Desk, bot: App, telegram: Telegram, store: Database) -> None:
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
