"""News, in process, one behaviour a test: subscribing from the offer after onboarding, and an
announcement composed in the communications group in two languages, sent to the subscribers of a
topic. Shared fixtures: the residents (two subscribers, one without subscriptions, one who
blocked the bot) and the announcement at each step. (End to end, tests/e2e/test_news.py keeps
sending across a kill -9, an album, and the refusal outside the communications group.)

The sending is the bot's own: `Announcements.start` runs it in a task of the dispatcher's process,
as in the real one; nothing else is started here."""

from dataclasses import dataclass

import pytest

from bot.sandbox.emulator import Emulator
from bot.store.db import Database
from bot.store.models import Resident
from tests.catalog import tr
from tests.conftest import COMMS_CHAT_ID
from tests.support.driver import Person, Received, Telegram
from tests.support.helpers import onboard, staff, wait_until

POLISH = "Remont drogi w Rzeszy od 1 grudnia & objazd przez <Mickuny>."  # as typed: escaped, not interpreted
LITHUANIAN = "Kelio remontas Riešėje nuo gruodžio 1 d."


def recipients_now(count: int) -> str:
    return tr(
        "lt",
        "<b>Who should get it?</b>\nRecipients now: <b>{count}</b> (residents who blocked the bot are not counted).",
        count=count,
    )


def progress(title: str, sent: int, pending: int) -> str:
    """The announcement's progress message in the communications group (Lithuanian)."""
    figures = tr(
        "lt",
        "sent {sent} · pending {pending} · blocked {blocked} · failed {failed} · of {total}",
        sent=sent,
        pending=pending,
        blocked=0,
        failed=0,
        total=2,
    )
    return tr("lt", title, id=1) + "\n" + figures


@dataclass
class Residents:
    anna: Person  # Polish, subscribed to roads
    jonas: Person  # Lithuanian, subscribed to roads
    ona: Person  # Lithuanian, no subscriptions
    petras: Person  # Polish, subscribed to roads, then blocked the bot


@pytest.fixture
async def residents(bot, telegram: Telegram, store: Database) -> Residents:
    anna = await telegram.resident("Anna", language_code="pl")
    jonas = await telegram.resident("Jonas", language_code="lt")
    ona = await telegram.resident("Ona", language_code="lt")
    petras = await telegram.resident("Petras", language_code="pl")
    await anna.click("➕ Drogi i transport", await onboard(anna, "pl"))
    await anna.edited()
    await jonas.click("➕ Keliai ir transportas", await onboard(jonas, "lt"))
    await jonas.edited()
    await onboard(ona, "lt")
    await petras.click("➕ Drogi i transport", await onboard(petras, "pl"))
    await petras.edited()
    await petras.block_bot()  # leaves: Telegram tells the bot (my_chat_member: kicked)

    async def petras_blocked() -> bool:
        async with store.read() as session:
            petras_row = await session.get(Resident, petras.user["id"])
            assert petras_row is not None
            return petras_row.blocked_at is not None

    await wait_until(petras_blocked, what="Petras marked as having blocked the bot")
    return Residents(anna, jonas, ona, petras)


@pytest.fixture
async def rasa(telegram: Telegram, emulator: Emulator) -> Person:
    return await staff(telegram, emulator)


@pytest.fixture
async def audience(residents: Residents, rasa: Person) -> Received:
    """/broadcast, the Polish version, a Lithuanian one: the choice of recipients."""
    await rasa.send("/broadcast")
    await rasa.click("Polski", await rasa.receive_one())
    await rasa.edited()
    await rasa.send(POLISH)
    await rasa.click("➕ Versija: Lietuvių", await rasa.receive_one())
    await rasa.edited()
    await rasa.send(LITHUANIAN)
    await rasa.click("➡️ Pasirinkti gavėjus", await rasa.receive_one())
    return await rasa.edited()


@pytest.fixture
async def previews(audience: Received, rasa: Person) -> list[Received]:
    """To the subscribers of roads and transport: the preview, in each language, and the confirmation."""
    await rasa.click("Keliai ir transportas", audience)
    await rasa.edited()
    await rasa.click("👁 Peržiūra")
    await rasa.edited()
    return await rasa.receive(5)


@pytest.fixture
async def sent(previews: list[Received], rasa: Person) -> Received:
    """Confirmed: the progress message."""
    await rasa.click("✅ Siųsti gavėjams: 2", previews[-1])
    await rasa.edited()
    return await rasa.receive_one()


async def test_subscribing_from_the_offer_ticks_the_topic(bot, telegram: Telegram, store: Database) -> None:
    anna = await telegram.resident("Anna", language_code="pl")
    offer = await onboard(anna, "pl")
    await anna.click("➕ Drogi i transport", offer)
    ticked = await anna.edited()
    assert ticked.buttons == [
        b.replace("➕ Drogi i transport", "✅ Drogi i transport") for b in offer.buttons
    ]
    assert (await anna.answer())["text"] == tr("pl", "Subscribed.")
    async with store.read() as session:
        anna_row = await session.get(Resident, anna.user["id"])
        assert anna_row is not None
        assert anna_row.news_topics == ["roads"]


async def test_a_resident_who_blocked_the_bot_is_not_counted(audience: Received) -> None:
    assert audience.text == recipients_now(3)  # Anna, Jonas, Ona: Petras blocked the bot


async def test_text_at_the_choice_of_recipients_brings_it_again_and_cancel_ends_it(
    audience: Received, rasa: Person
) -> None:
    """Rasa writes instead of pressing (the choice may be far up, or never arrived): a hint and
    the choice again, with its buttons; /cancel ends the announcement, and nothing is sent."""
    await rasa.send("Kam siųsti?")
    hint, again = await rasa.receive(2)
    assert hint.text == tr("lt", "Please answer with the buttons of the question below, or “✖️ Cancel”.")
    assert (again.text, again.buttons) == (audience.text, audience.buttons)
    await rasa.send("/cancel")
    assert (await rasa.receive_one()).text == tr("lt", "Cancelled.")
    await rasa.send("Ar išsiųsta?")  # no longer writing one: the group's talk is left alone
    await rasa.nothing_more()


async def test_choosing_a_topic_counts_only_its_subscribers(audience: Received, rasa: Person) -> None:
    await rasa.click("Keliai ir transportas", audience)
    assert (await rasa.edited()).text == recipients_now(2)  # Anna and Jonas


async def test_the_preview_shows_each_language_as_typed(previews: list[Received]) -> None:
    assert [p.text for p in previews] == [
        tr("lt", "Preview, {language}:", language="Polski"),
        POLISH,
        tr("lt", "Preview, {language}:", language="Lietuvių"),
        LITHUANIAN,
        tr("lt", "This is exactly what residents will see. Send it?"),
    ]
    assert previews[-1].buttons == ["✅ Siųsti gavėjams: 2", "✖️ Atšaukti"]


async def test_each_subscriber_gets_it_in_their_language_and_nobody_else(
    sent: Received, residents: Residents, emulator: Emulator
) -> None:
    assert sent.text == progress("📣 Announcement #{id}: sending…", sent=0, pending=2)
    assert (await residents.anna.receive_one()).text == POLISH
    assert (await residents.jonas.receive_one()).text == LITHUANIAN
    await emulator.wait_for(
        lambda: (
            emulator.chats[COMMS_CHAT_ID]
            .messages[sent.id]["text"]
            .startswith(tr("lt", "📣 Announcement #{id}: done", id=1))
        ),
        10,
    )
    await residents.ona.nothing_more()  # not subscribed
    petras = emulator.chats[residents.petras.user["id"]].messages.values()
    assert [
        m["text"] for m in petras if m["from"].get("is_bot") and m.get("text") in (POLISH, LITHUANIAN)
    ] == []  # blocked the bot


async def test_the_progress_message_ends_with_the_figures(sent: Received, emulator: Emulator) -> None:
    done = progress("📣 Announcement #{id}: done", sent=2, pending=0)
    await emulator.wait_for(lambda: emulator.chats[COMMS_CHAT_ID].messages[sent.id]["text"] == done, 10)
    assert emulator.chats[COMMS_CHAT_ID].messages[sent.id]["text"] == done


async def test_broadcasts_lists_it_with_its_figures(sent: Received, rasa: Person, emulator: Emulator) -> None:
    done = progress("📣 Announcement #{id}: done", sent=2, pending=0)
    await emulator.wait_for(lambda: emulator.chats[COMMS_CHAT_ID].messages[sent.id]["text"] == done, 10)
    await rasa.send("/broadcasts")
    assert (await rasa.receive_one()).text == "\n".join(
        [
            tr("lt", "<b>Recent announcements</b>"),
            "#1 · 2026 m. lapkričio 23 d. · done · "
            + tr(
                "lt",
                "sent {sent} of {total}, blocked {blocked}, failed {failed}",
                sent=2,
                total=2,
                blocked=0,
                failed=0,
            ),
        ]
    )


async def test_news_shows_a_subscriber_the_latest_announcement(sent: Received, residents: Residents) -> None:
    anna = residents.anna
    await anna.receive_one()  # the announcement
    await anna.send("/news")
    latest = await anna.receive_one()
    assert latest.text == tr("pl", "<b>Latest announcements</b>") + "\n\n🗓 23 listopada 2026\n" + POLISH
