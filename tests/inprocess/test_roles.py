"""Roles in every staff group, one behaviour a test: the communications group acts only through
its listed staff and its admins; an anonymous post is asked to come from a person; a group that
lists nobody counts only members who may post; someone refused hears it once an hour (a press,
every time); /report's scope follows the role. (The teams' own refusals: test_teams.py.)"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from bot import clock
from bot.app import App
from bot.sandbox.emulator import Emulator
from bot.settings import DEFAULT_MUNICIPALITY_FILE
from bot.store.db import Database
from bot.store.models import Broadcast, Case, CaseStatus, SatisfactionAnswer
from tests.catalog import tr
from tests.conftest import ADMIN_CHAT_ID, COMMS_CHAT_ID
from tests.inprocess.conftest import Submitted
from tests.support.driver import Person, Received, Telegram
from tests.support.helpers import ROADS, Desk, onboard, submit_case, wait_until

COMMS_ONLY = "Only the communications staff can do this."
POST_AS_YOURSELF = (
    "Please post as yourself, not anonymously or as a channel: the case's history must name a person."
)
TEAM_ONLY = "Only the team handling this case can do this."
LANGUAGE_QUESTION = "<b>New announcement.</b> In which language will you write it?"


def lt(msgid: str, **values: Any) -> str:
    return tr("lt", msgid, **values)


async def broadcasts(store: Database) -> int:
    async with store.read() as session:
        return (await session.execute(select(func.count()).select_from(Broadcast))).scalar_one()


def an_hour_later(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bot's clock (frozen at FROZEN_TIME, running on) a little over an hour ahead."""
    clock.now()
    assert clock._origin is not None
    start, started = clock._origin
    assert start is not None
    monkeypatch.setattr(clock, "_origin", (start + timedelta(hours=1, minutes=1), started))


# --- the communications group ------------------------------------------------------------------


@dataclass
class Comms:
    rasa: Person  # listed in the municipality file's [comms]
    jurgis: Person  # a member of the group, not listed
    dalia: Person  # an administrator of the group, not listed


@pytest.fixture
async def comms_people(
    emulator: Emulator, telegram: Telegram, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Comms:
    """The communications group's people, and a municipality file listing Rasa (read by `bot`)."""
    people = [await telegram.person(name) for name in ("Rasa", "Jurgis", "Dalia")]
    for person in people:
        await telegram.standing(COMMS_CHAT_ID, person, "member")
    await telegram.standing(COMMS_CHAT_ID, people[2], "administrator")
    path = tmp_path / "municipality.toml"
    path.write_text(
        DEFAULT_MUNICIPALITY_FILE.read_text(encoding="utf-8")
        + f"\n[comms]\nmembers = [{people[0].user['id']}]\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("MUNICIPALITY_FILE", str(path))
    return Comms(*(person.in_chat(COMMS_CHAT_ID) for person in people))


@pytest.fixture
async def comms(comms_people: Comms, bot: App) -> Comms:
    return comms_people


async def test_someone_not_listed_may_not_broadcast_and_nothing_is_queued(
    comms: Comms, store: Database, caplog: pytest.LogCaptureFixture
) -> None:
    await comms.jurgis.send("/broadcast")
    assert (await comms.jurgis.receive_one()).text == lt(COMMS_ONLY)
    assert await broadcasts(store) == 0
    refused = [r for r in caplog.records if r.getMessage() == "staff action refused"]
    assert [(r.user_id, r.chat_id, r.action) for r in refused] == [  # type: ignore[attr-defined]  # extra=
        (comms.jurgis.user["id"], COMMS_CHAT_ID, "/broadcast")
    ]
    await comms.rasa.send("/broadcast")  # the listed staff go on as before
    assert (await comms.jurgis.receive_one()).text == lt(LANGUAGE_QUESTION)  # everyone in the group reads it


async def test_an_admin_of_the_group_acts_without_being_listed(comms: Comms) -> None:
    await comms.dalia.send("/broadcast")
    assert (await comms.dalia.receive_one()).text == lt(LANGUAGE_QUESTION)


async def test_an_anonymous_admin_is_asked_to_post_as_themselves(comms: Comms, store: Database) -> None:
    await comms.dalia.send_anonymously("/broadcast")
    assert (await comms.dalia.receive_one()).text == lt(POST_AS_YOURSELF)
    assert await broadcasts(store) == 0


async def test_a_refusal_is_said_once_an_hour_a_press_is_answered_every_time(
    comms: Comms, store: Database, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO, logger="flows.staff")
    await comms.jurgis.send("/broadcast")
    assert (await comms.jurgis.receive_one()).text == lt(COMMS_ONLY)
    await comms.rasa.send("/broadcast")
    question = await comms.jurgis.receive_one()

    def unsaid() -> int:
        return sum(1 for r in caplog.records if r.getMessage() == "refusal not repeated within the hour")

    await comms.jurgis.send("/stop 1")
    await comms.jurgis.send("/close 1")
    await wait_until(lambda: unsaid() == 2, what="both refusals logged, not said")
    await comms.jurgis.nothing_more()
    for _ in range(2):  # a press has its own answer, outside the group's lane: always
        await comms.jurgis.click("✖️ Atšaukti", question)
        assert (await comms.jurgis.answer())["text"] == lt(COMMS_ONLY)

    an_hour_later(monkeypatch)
    await comms.jurgis.send("/broadcasts")
    assert (await comms.jurgis.receive_one()).text == lt(COMMS_ONLY)
    assert await broadcasts(store) == 0


# --- a group that lists nobody (the shipped municipality file) ---------------------------------


async def take(person: Person, card: Received) -> str:
    await person.click("🙋 Imuosi", card)
    return str((await person.answer())["text"])


async def case_taken_by(store: Database) -> tuple[str, str | None]:
    async with store.read() as session:
        case = (await session.execute(select(Case))).scalar_one()
    return case.status, case.assignee_name


async def test_a_restricted_member_who_may_not_post_is_refused_a_member_acts(
    submitted: Submitted, telegram: Telegram, store: Database
) -> None:
    muted = await telegram.person("Marius")
    await telegram.standing(ADMIN_CHAT_ID, muted, "restricted", can_send_messages=False)
    assert await take(muted.in_chat(ADMIN_CHAT_ID), submitted.card) == lt(TEAM_ONLY)
    assert await case_taken_by(store) == (CaseStatus.NEW, None)

    assert await take(submitted.clerks, submitted.card) == "🙋 Imuosi"
    assert await case_taken_by(store) == (CaseStatus.ASSIGNED, "Ona")


async def test_a_restricted_member_who_may_post_acts_one_who_left_does_not(
    submitted: Submitted, telegram: Telegram, store: Database
) -> None:
    jonas = await telegram.person("Jonas")
    await telegram.standing(ADMIN_CHAT_ID, jonas, "member")
    await telegram.standing(ADMIN_CHAT_ID, jonas, "left")
    gone = jonas.in_chat(ADMIN_CHAT_ID)
    await gone.forge_button("dk:take:1", submitted.card)  # a card he saw before he left
    assert (await gone.answer())["text"] == lt(TEAM_ONLY)

    lina = await telegram.person("Lina")
    await telegram.standing(ADMIN_CHAT_ID, lina, "restricted", can_send_messages=True)
    assert await take(lina.in_chat(ADMIN_CHAT_ID), submitted.card) == "🙋 Imuosi"
    assert await case_taken_by(store) == (CaseStatus.ASSIGNED, "Lina")


def test_start_up_says_which_groups_list_nobody(bot: App, caplog: pytest.LogCaptureFixture) -> None:
    bot.say_who_acts()
    said = [r for r in caplog.records if r.getMessage().startswith("nobody is listed")]
    assert len(said) == 1
    assert said[0].groups == f"desk ({ADMIN_CHAT_ID}), comms ({COMMS_CHAT_ID})"  # type: ignore[attr-defined]


# --- the quality report's scope ----------------------------------------------------------------

COMMENT = "Dziękuję, naprawione w dwa dni"


@pytest.fixture
async def two_cases(desk: Desk, telegram: Telegram, store: Database) -> Desk:
    """A pothole (roads) and a request to the front office, received today; a satisfaction comment."""
    for category, description in (
        ("Drogi, ulice i transport", "Dziura w jezdni"),
        ("Inne sprawy", "Proszę o informację"),
    ):
        anna = await telegram.resident("Anna", language_code="pl")
        await onboard(anna, "pl")
        await submit_case(anna, "pl", "📄 Wniosek", category, description)
    await desk.member.receive_one()  # the pothole's card
    await desk.front.receive_one()
    async with store.write() as session:
        session.add(
            SatisfactionAnswer(
                answered_on=date(2026, 11, 23),
                locale="pl",
                kind="request",
                category_id="roads",
                score=5,
                resolved="yes",
                comment=COMMENT,
            )
        )
    return desk


async def report(
    person: Person, emulator: Emulator, reader: Person | None = None
) -> tuple[str, list[tuple[str, ...]]]:
    """/report for November, as `person`: the message, and the comments of the XLSX file (as
    `reader`, in the same group, reads them)."""
    await person.send("/report 2026-11")
    message, _chart, workbook = await (reader or person).receive(3, timeout=30)
    async with httpx.AsyncClient(base_url=emulator.url) as http:
        data = (
            await http.get(
                f"/_emu/files/{workbook.raw['document']['file_id']}", params={"token": emulator.control_token}
            )
        ).content
    book = load_workbook(io.BytesIO(data))
    return message.text, list(book[lt("Comments")].iter_rows(min_row=2, values_only=True))


def received(count: int) -> str:
    return lt("Received: <b>{received}</b> · closed: <b>{closed}</b>", received=count, closed=0)


async def test_a_member_gets_the_teams_figures_a_head_the_whole_municipality(
    two_cases: Desk, emulator: Emulator
) -> None:
    text, comments = await report(two_cases.member, emulator)
    assert lt("Scope: {scope}", scope="Kelių skyrius") in text
    assert received(1) in text
    assert COMMENT not in text and comments == []
    assert (
        lt(
            "These are only your team's figures. Satisfaction answers and comments are not tied to a team: "
            "they are in the whole municipality's report, for team heads and the quality staff."
        )
        in text
    )

    text, comments = await report(two_cases.head, emulator, reader=two_cases.member)
    assert lt("Scope: {scope}", scope=lt("the whole municipality")) in text
    assert received(2) in text
    assert comments == [(COMMENT,)]


async def test_an_admin_of_the_default_group_is_quality_staff(
    two_cases: Desk, telegram: Telegram, emulator: Emulator
) -> None:
    text, comments = await report(
        two_cases.front, emulator
    )  # a member of the front office, which lists nobody
    assert lt("Scope: {scope}", scope="Gyventojų aptarnavimo skyrius") in text and comments == []

    quality = await telegram.person("Irena")
    await telegram.standing(ADMIN_CHAT_ID, quality, "administrator")
    text, comments = await report(quality.in_chat(ADMIN_CHAT_ID), emulator, reader=two_cases.front)
    assert lt("Scope: {scope}", scope=lt("the whole municipality")) in text and received(2) in text
    assert comments == [(COMMENT,)]


async def test_a_stranger_writing_in_a_case_topic_is_told_once_and_nothing_reaches_the_resident(
    desk: Desk, telegram: Telegram, store: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="flows.staff")
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    await submit_case(anna, "pl", "🚧 Zgłoszenie problemu", "Drogi, ulice i transport", "Dziura w jezdni")
    card = await desk.member.receive_one()
    tomas = await telegram.person("Tomas")
    await telegram.standing(ROADS, tomas, "member")  # in the roads group, but roads lists its people: not him
    for text in ("Dzień dobry", "Czy ktoś to widzi?", "Halo"):
        await tomas.in_chat(ROADS).send(text, thread_id=card.thread_id)
    assert (await desk.member.receive_one()).text == lt(TEAM_ONLY)
    await wait_until(
        lambda: sum(r.getMessage() == "refusal not repeated within the hour" for r in caplog.records) == 2,
        what="the rest logged",
    )
    await desk.member.nothing_more()
    await anna.nothing_more()
    refused = [r for r in caplog.records if r.getMessage() == "staff action refused"]
    assert {r.user_id for r in refused} == {tomas.user["id"]} and len(refused) == 3  # type: ignore[attr-defined]
