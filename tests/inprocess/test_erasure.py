"""Nothing left behind by a case passed between teams, in process over the sandbox's teams: /forget
blanks the card the case left in the first team's group as well as its current one, and retention
deletes the topics it had in both groups. (The store's side, pending webhooks and conversations,
is in tests/unit/test_erasure.py.)"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest

from bot import clock
from bot.app import App
from bot.sandbox.emulator import Emulator
from tests.catalog import tr
from tests.support.driver import Person, Received, Telegram
from tests.support.helpers import AVIZIENIAI, ROADS, Desk, onboard, submit_case

NUMBER = "VRS-2026-000001"
REASON = "Gatvė priklauso seniūnijai"


@dataclass
class Passed:
    anna: Person
    old_card: Received  # in the roads group's topic
    card: Received  # in the eldership's group


@pytest.fixture
async def passed(desk: Desk, telegram: Telegram) -> Passed:
    """Anna's pothole (roads), passed by Petras to the Avižieniai eldership."""
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    await submit_case(anna, "pl", "🚧 Zgłoszenie problemu", "Drogi, ulice i transport", "Dziura w jezdni")
    old_card = await desk.member.receive_one()
    await desk.member.click("🔀 Perduoti komandai", old_card)
    await desk.member.click("Avižienių seniūnija", await desk.member.receive_one())
    await desk.member.edited()
    await desk.member.receive_one()  # the prompt for the reason
    await desk.member.send(REASON, thread_id=old_card.thread_id)
    await desk.member.receive_one()  # the old topic's last line
    while (
        await desk.member.edited()
    ).id != old_card.id:  # the prompt loses its button; then the old card says where the case went
        pass
    card, _history = await desk.eldership.receive(2)
    await anna.receive_one()  # who handles the case now
    return Passed(anna, old_card, card)


def _edits(emulator: Emulator) -> set[tuple[int, int]]:
    return {
        (int(r["params"]["chat_id"]), int(r["params"]["message_id"]))
        for r in emulator.requests
        if r["method"] == "editMessageText" and r["status"] == 200
    }


async def test_forget_after_a_pass_blanks_both_cards(desk: Desk, passed: Passed, emulator: Emulator) -> None:
    anna = passed.anna
    await anna.send("/forget")
    await anna.click("🗑 Usuń mój profil", await anna.receive_one())
    await anna.edited()
    await anna.receive_one()  # the farewell
    await desk.eldership.receive_one()  # the open case's team is told
    new_card = await desk.eldership.edited()
    old_card = await desk.member.edited()

    assert _edits(emulator) >= {(ROADS, passed.old_card.id), (AVIZIENIAI, passed.card.id)}
    assert old_card.id == passed.old_card.id
    assert old_card.text == tr(
        "lt", "🧹 {number}: the content of this card was erased at the resident's request.", number=NUMBER
    )
    assert old_card.buttons == []  # nothing to press on a card the case has left
    assert (
        "Anna" in passed.old_card.text and "Dziura w jezdni" in passed.old_card.text
    )  # what was there before
    assert (
        new_card.id == passed.card.id and "Anna" not in new_card.text
    )  # the case is still handled here, without her name
    assert (
        tr("lt", "Resident: erased their profile; answer only about this case, in this topic")
        in new_card.text.splitlines()
    )


async def test_retention_deletes_the_topics_of_both_teams(
    desk: Desk, passed: Passed, bot: App, emulator: Emulator
) -> None:
    await desk.eldership.click("✅ Atsakyti ir užbaigti", passed.card)
    await desk.eldership.receive_one()  # "write the answer"
    await desk.eldership.send("Užtaisyta.", thread_id=passed.card.thread_id)
    await passed.anna.receive(2)  # the answer with the case closed, the satisfaction question
    await desk.eldership.edited()  # the card shows it closed

    purged = await bot.dispatcher["rights"].purge_expired(
        clock.now() + timedelta(days=3 * 366)
    )  # reports are kept 2 years
    assert purged.cases == 1

    def deleted() -> set[tuple[int, int]]:
        return {
            (int(r["params"]["chat_id"]), int(r["params"]["message_thread_id"]))
            for r in emulator.requests
            if r["method"] == "deleteForumTopic"
        }

    await emulator.wait_for(lambda: len(deleted()) == 2, 10)
    assert deleted() == {(ROADS, passed.old_card.thread_id), (AVIZIENIAI, passed.card.thread_id)}
    assert passed.old_card.thread_id not in emulator.chats[ROADS].topics
    assert passed.card.thread_id not in emulator.chats[AVIZIENIAI].topics
