"""The clerks' desk at its edges, in process: a plain group (no topics), forged buttons, canned
answers, a deleted topic, a group moved to a supergroup, albums and a blocked resident. (The
course of a case in its forum topic, one behaviour a test, is in tests/inprocess/test_desk.py;
what needs a real process, a burst of cards at start and the digest at its hour, in
tests/e2e/test_desk.py.)"""

import pytest
from sqlalchemy import select
from sqlmodel import col

from bot.sandbox.emulator import Emulator
from bot.store.db import Database
from bot.store.models import Case, CaseEvent, CaseStatus, EventKind, Resident
from tests.catalog import tr
from tests.conftest import ADMIN_CHAT_ID
from tests.support.driver import Person, Telegram
from tests.support.helpers import PHOTO, onboard, submit_case

NUMBER = "VRS-2026-000001"
MUNICIPALITY = {
    "pl": "Samorząd Rejonu Wileńskiego",
    "lt": "Vilniaus rajono savivaldybė",
}  # its names, from its .toml
NO_TOPICS = (
    "A topic per case cannot be opened here ({reason}). Cards go to this chat; reply to a card to write to the resident. "
    "To have topics, turn on Topics and give the bot the right to manage them."
)
MOVED = "This group became a supergroup with a new id. The bot follows it now; please put {chat_id} in the configuration instead of {old}."


def to_resident(locale: str, *paragraphs: str) -> str:
    """A message about the case as the resident reads it: the heading, then the paragraphs."""
    return "\n\n".join(
        [
            tr(
                locale,
                "<b>{municipality}</b> · case {number}",
                municipality=MUNICIPALITY[locale],
                number=NUMBER,
            ),
            *paragraphs,
        ]
    )


def card_heading(kind_emoji: str, kind: str) -> str:
    """The card's first line, in ADMIN_LOCALE (Lithuanian)."""
    return f"{kind_emoji} {NUMBER} · {tr('lt', kind)}"


async def test_plain_group_routes_by_reply(
    bot, emulator: Emulator, telegram: Telegram, expected_errors: list[str]
) -> None:
    emulator.chats[ADMIN_CHAT_ID].info.pop("is_forum")  # a group without topics
    expected_errors.append("the chat is not a forum")  # the bot tries a topic, once
    clerk = await telegram.person("Petras", language_code="lt")
    emulator.chats[ADMIN_CHAT_ID].members.add(clerk.user["id"])
    clerk = clerk.in_chat(ADMIN_CHAT_ID)
    jonas = await telegram.resident("Jonas", language_code="lt")
    await onboard(jonas, "lt")
    await submit_case(jonas, "lt", "📄 Prašymas", "Kiti klausimai", "Prašau pažymos apie gyvenamąją vietą")
    notice, card = await clerk.receive(2)
    assert notice.text == tr("lt", NO_TOPICS, reason="Bad Request: the chat is not a forum")
    assert card.thread_id is None and card.text.splitlines()[0] == card_heading("📄", "Request")
    await clerk.nothing_more()  # settled: the card's message id is recorded, so a reply to it finds the case
    await clerk.send("Pažymą galite atsiimti seniūnijoje.", reply_to=card.id)
    assert (await jonas.receive_one()).text == to_resident(
        "lt", tr("lt", "Message from the clerk:") + "\nPažymą galite atsiimti seniūnijoje."
    )
    await clerk.send("Kolegos, kas šiandien budi?")  # not a reply: stays among the clerks
    await jonas.nothing_more()


async def test_forged_and_impossible_actions_are_refused(
    bot, telegram: Telegram, store: Database, clerks: Person, caplog: pytest.LogCaptureFixture
) -> None:
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    confirmation = await submit_case(anna, "pl", "📄 Wniosek", "Inne sprawy", "Proszę o informację")
    card = await clerks.receive_one()

    await anna.forge_button("dk:take:1", confirmation)  # from a private chat
    assert (await anna.answer())["text"] == tr("pl", "Not allowed here.")
    await clerks.forge_button("dk:reopen:1", card)  # not closed: cannot be reopened
    assert (await clerks.answer())["text"] == tr("lt", "This cannot be done with the case now.")
    await clerks.forge_button("dk:take:999", card)  # no such case
    assert (await clerks.answer())["text"] == tr("lt", "This cannot be done with the case now.")
    async with store.read() as session:
        case = (await session.execute(select(Case))).scalar_one()
    assert (case.status, case.assignee_id) == (CaseStatus.NEW, None)
    assert "desk button pressed outside a team group" in caplog.text


async def test_canned_answer_in_the_residents_language(
    bot, telegram: Telegram, clerks: Person, store: Database
) -> None:
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    await submit_case(anna, "pl", "🚧 Zgłoszenie problemu", "Oświetlenie ulic", "Nie świeci latarnia")
    card = await clerks.receive_one()
    await clerks.send("/templates", thread_id=card.thread_id)
    menu = await clerks.receive_one()
    # The templates' names, from the .toml; then Cancel.
    assert menu.buttons == [
        "Gauta, nagrinėjama",
        "Papildyti informaciją",
        "Problema išspręsta",
        "Ne savivaldybės kompetencija",
        tr("lt", "✖️ Cancel"),
    ]
    await clerks.click("Problema išspręsta", menu)
    preview = await clerks.edited()
    canned = "Zgłoszony problem został usunięty. Dziękujemy, że pomaga Pan/Pani dbać o nasz rejon."  # the template's text, from the .toml
    assert preview.text == tr("lt", "Preview ({language}):", language="pl") + "\n\n" + canned
    assert preview.buttons == [tr("lt", "📨 Send to the resident"), tr("lt", "✖️ Cancel")]
    await clerks.click(tr("lt", "📨 Send to the resident"), preview)
    assert (await anna.receive_one()).text == to_resident(
        "pl", tr("pl", "Message from the clerk:"), canned
    )  # a paragraph apart, unlike a relayed line
    async with store.read() as session:
        sent = (
            await session.execute(select(CaseEvent).where(col(CaseEvent.kind) == EventKind.MESSAGE_OUT))
        ).scalar_one()
    assert (sent.actor_name, sent.text) == ("Ona", canned)


async def test_a_deleted_topic_is_replaced(
    bot, telegram: Telegram, emulator: Emulator, clerks: Person, store: Database, expected_errors: list[str]
) -> None:
    jonas = await telegram.resident("Jonas", language_code="lt")
    await onboard(jonas, "lt")
    await submit_case(jonas, "lt", "📄 Prašymas", "Kiti klausimai", "Prašau informacijos")
    card = await clerks.receive_one()
    assert card.thread_id is not None
    emulator.chats[ADMIN_CHAT_ID].topics.pop(card.thread_id)  # a clerk deleted the topic
    expected_errors.append("message thread not found")

    await jonas.send(NUMBER)
    await jonas.receive_one()
    await jonas.click(tr("lt", "➕ Add information"))
    await jonas.receive_one()
    await jonas.send("Dar vienas klausimas dėl pažymos")
    new_card, notice, added = await clerks.receive(3)
    assert new_card.thread_id != card.thread_id and new_card.text.splitlines()[0] == card_heading(
        "📄", "Request"
    )
    assert notice.text == tr("lt", "The previous topic of this case was deleted; the case continues here.")
    assert added.thread_id == new_card.thread_id
    assert (
        added.text
        == tr("lt", "➕ <b>{number}</b>: the resident added information", number=NUMBER)
        + "\n\nDar vienas klausimas dėl pažymos"
    )
    async with store.read() as session:
        assert (await session.execute(select(Case))).scalar_one().topic_id == new_card.thread_id


async def test_the_group_upgraded_to_a_supergroup_is_followed(
    bot, telegram: Telegram, emulator: Emulator, expected_errors: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    new_id = -1009999999999
    emulator.migrate(ADMIN_CHAT_ID, new_id)
    expected_errors.append("upgraded to a supergroup")
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    await submit_case(anna, "pl", "📄 Wniosek", "Inne sprawy", "Proszę o informację")
    reader = (await telegram.person("Ona")).in_chat(new_id)
    notice, card = await reader.receive(2)
    assert notice.text == tr("lt", MOVED, chat_id=new_id, old=ADMIN_CHAT_ID)
    assert card.text.splitlines()[0] == card_heading("📄", "Request")
    assert "a team group moved" in caplog.text


async def test_albums_relay_together_and_a_blocked_resident_is_reported(
    bot, telegram: Telegram, clerks: Person, store: Database, expected_errors: list[str]
) -> None:
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    await submit_case(anna, "pl", "📄 Wniosek", "Inne sprawy", "Proszę o kopie dokumentów")
    card = await clerks.receive_one()
    await clerks.send_album([PHOTO, PHOTO], caption="Kopie", thread_id=card.thread_id)
    header, *album = await anna.receive(3)
    assert header.text == to_resident("pl", tr("pl", "Message from the clerk:"))
    assert [m.text for m in album] == ["Kopie", ""] and len({m.raw["media_group_id"] for m in album}) == 1

    await clerks.send("/open")
    listing = await clerks.receive_one()
    left = tr("lt", "{count} working day left", "{count} working days left", n=20, count=20)
    case_line = " · ".join(
        [f"📄 {NUMBER}", tr("lt", "Received"), f"2026 m. gruodžio 21 d. ({left})", tr("lt", "nobody")]
    )
    assert listing.text == tr("lt", "<b>Open cases</b>, nearest deadline first:") + "\n" + case_line

    await anna.block_bot()
    expected_errors.append("blocked by the user")
    await clerks.send("Czy dokumenty dotarły?", thread_id=card.thread_id)
    warning = await clerks.receive_one()
    assert warning.text == tr("lt", "⚠️ Not delivered: the resident has blocked the bot.")
    async with store.read() as session:
        resident = await session.get(Resident, anna.user["id"])
        assert resident is not None and resident.blocked_at is not None
