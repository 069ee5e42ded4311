"""Residents' improvement proposals, in process: an anonymous one reaches the quality group (here
the clerks' group: no team is marked) and leaves no trace of the resident in the store; one to be
answered becomes a case of its own; too short a text is asked again and stores nothing."""

from __future__ import annotations

from sqlalchemy import func, select, text

from bot.app import App
from bot.store.db import Database
from bot.store.models import Case, Proposal
from tests.catalog import tr
from tests.support.driver import Person, Telegram
from tests.support.helpers import onboard

PROPOSAL = "Proszę wydłużyć godziny pracy <biura> w soboty & niedziele"


async def start_proposal(telegram: Telegram) -> Person:
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    await anna.send("💡 Zaproponuj usprawnienie")
    assert (await anna.receive_one()).text == tr(
        "pl",
        "💡 What could the municipality do better? Please write your proposal ({min} to {max} character).",
        "💡 What could the municipality do better? Please write your proposal ({min} to {max} characters).",
        3000,
        min=10,
        max=3000,
    )
    return anna


async def test_an_anonymous_proposal_reaches_the_quality_group_with_no_trace_of_the_resident(
    bot: App, telegram: Telegram, clerks: Person, store: Database
) -> None:
    anna = await start_proposal(telegram)
    await anna.send("Za krótko")
    assert (await anna.receive_one()).text == tr(
        "pl",
        "Please write {min} to {max} character.",
        "Please write {min} to {max} characters.",
        3000,
        min=10,
        max=3000,
    )
    await anna.send(PROPOSAL)
    how = await anna.receive_one()
    assert how.buttons == ["🕶 Wyślij anonimowo", "✉️ Proszę o odpowiedź", "✖️ Anuluj"]
    await anna.click("🕶 Wyślij anonimowo", how)
    assert (await anna.receive_one()).text == tr(
        "pl", "Thank you! Your proposal has been passed on anonymously."
    )

    post = await clerks.receive_one()
    assert (
        post.text
        == tr("lt", "💡 <b>A resident's proposal</b> (anonymous, {language}):", language="Polski")
        + "\n\n"
        + PROPOSAL
    )
    async with store.read() as session:
        rows = [tuple(row) for row in (await session.execute(text("SELECT * FROM proposals"))).all()]
        cases = (await session.execute(select(func.count()).select_from(Case))).scalar_one()
    assert len(rows) == 1 and cases == 0
    stored = " ".join(str(value) for value in rows[0])
    assert (
        PROPOSAL in stored and str(anna.user["id"]) not in stored and "Anna" not in stored
    )  # the text, the day, the language: nothing else
    assert set(Proposal.model_fields) == {"id", "submitted_on", "locale", "text"}


async def test_a_proposal_to_be_answered_is_a_case_of_its_own(
    bot: App, telegram: Telegram, clerks: Person, store: Database
) -> None:
    anna = await start_proposal(telegram)
    await anna.send(PROPOSAL)
    await anna.click("✉️ Proszę o odpowiedź", await anna.receive_one())
    assert (await anna.receive_one()).text == tr(
        "pl",
        "Thank you! Your proposal is registered as case {number}; we will answer you here.",
        number="VRS-2026-000001",
    )
    async with store.read() as session:
        case = (await session.execute(select(Case))).scalar_one()
        proposals = (await session.execute(select(func.count()).select_from(Proposal))).scalar_one()
    assert (case.kind, case.category_id, case.description, case.resident_id, proposals) == (
        "request",
        "other",
        PROPOSAL,
        anna.user["id"],
        0,
    )
    posts = [
        m.text for m in await clerks.receive(2)
    ]  # the case's card and the quality group's line, in either order
    assert (
        tr("lt", "💡 A resident's proposal, to be answered, is case {number}.", number="VRS-2026-000001")
        in posts
    )
