"""What people read when the case commands refuse (bot.services.case_commands): the handlers render
the refusal and change nothing. Over the shared submitted case: Anna's report of a pothole."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from bot import clock
from bot.store.db import Database
from bot.store.models import Case, CaseStatus
from tests.catalog import tr
from tests.inprocess.conftest import Submitted

NUMBER = "VRS-2026-000001"


def clock_ahead(monkeypatch: pytest.MonkeyPatch, by: timedelta) -> None:
    """The bot's clock (frozen at FROZEN_TIME, running on) moved ahead."""
    clock.now()
    assert clock._origin is not None
    start, started = clock._origin
    assert start is not None
    monkeypatch.setattr(clock, "_origin", (start + by, started))


async def status(store: Database) -> CaseStatus:
    async with store.read() as session:
        return CaseStatus((await session.execute(select(Case))).scalar_one().status)


async def test_an_answer_to_an_expired_prompt_is_not_sent(
    submitted: Submitted, monkeypatch: pytest.MonkeyPatch, store: Database
) -> None:
    clerks = submitted.clerks
    await clerks.click("⛔ Atmesti", submitted.card)
    await clerks.receive_one()  # the prompt, waiting PROMPT_MINUTES (10)
    clock_ahead(monkeypatch, timedelta(minutes=11))
    await clerks.send("Ne savivaldybės kompetencija", thread_id=submitted.thread)
    reply = await clerks.receive_one()
    assert reply.text == tr(
        "lt",
        "The prompt for {number} has expired, so this message was not sent. Press the button on the card again.",
        number=NUMBER,
    )
    assert await status(store) == CaseStatus.NEW
    await submitted.anna.nothing_more()


@pytest.fixture
def one_case_a_day(monkeypatch: pytest.MonkeyPatch) -> int:
    """MAX_CASES_PER_DAY=1, before the bot reads its settings (request it before `submitted`)."""
    monkeypatch.setenv("MAX_CASES_PER_DAY", "1")
    return 1


async def test_a_new_case_over_the_days_limit_is_not_started(
    one_case_a_day: int, submitted: Submitted
) -> None:
    anna = submitted.anna
    await anna.send("/new")
    refused = await anna.receive_one()
    assert refused.text == tr(
        "pl",
        "You have already submitted {count} case today, the most we accept in one day. Please write again tomorrow; you can add information to an open case under “My cases”.",
        "You have already submitted {count} cases today, the most we accept in one day. Please write again tomorrow; you can add information to an open case under “My cases”.",
        n=one_case_a_day,
        count=one_case_a_day,
    )
    await anna.nothing_more()  # no first question of a new case


async def test_the_resident_cannot_reopen_once_the_reopen_days_are_over(
    submitted: Submitted, monkeypatch: pytest.MonkeyPatch, store: Database
) -> None:
    anna, clerks = submitted.anna, submitted.clerks
    await clerks.click("⛔ Atmesti", submitted.card)
    await clerks.receive_one()
    await clerks.send("Ne savivaldybės kompetencija", thread_id=submitted.thread)
    await anna.receive(2)  # the rejection, the satisfaction question
    await anna.send(NUMBER)
    shown = await anna.receive_one()
    reopen = tr("pl", "↩️ Reopen the case")
    assert reopen in shown.buttons
    clock_ahead(monkeypatch, timedelta(days=15))  # REOPEN_DAYS is 14
    await anna.click(reopen, shown)
    days = 14
    expected = tr(
        "pl",
        "A case can be reopened within {days} day of closing.",
        "A case can be reopened within {days} days of closing.",
        n=days,
        days=days,
    )
    assert (await anna.answer())["text"] == expected
    assert await status(store) == CaseStatus.REJECTED
