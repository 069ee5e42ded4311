"""What a resident writes without being asked (in process): it reaches their case. With one case
being handled, that case (and she is told so); with several, the one she chooses with one tap;
with none, the offer to start one; a reply to a message about a case goes to that case at once.
And "✅ Done" after adding information sends it to the clerks without waiting."""

from sqlalchemy import select
from sqlmodel import col

from bot.app import App
from bot.store.db import Database
from bot.store.models import CaseEvent, EventKind
from tests.catalog import tr
from tests.inprocess.conftest import Submitted
from tests.support.driver import Received, Telegram
from tests.support.helpers import onboard, submit_case

FIRST, SECOND = "VRS-2026-000001", "VRS-2026-000002"


def added_post(number: str, *texts: str) -> str:
    """What the clerks read in the case's topic (in ADMIN_LOCALE, Lithuanian)."""
    return "\n\n".join(
        [tr("lt", "➕ <b>{number}</b>: the resident added information", number=number), *texts]
    )


async def added_to(store: Database) -> list[tuple[int, str | None]]:
    async with store.read() as session:
        rows = await session.execute(
            select(CaseEvent).where(col(CaseEvent.kind) == EventKind.MESSAGE_IN).order_by(col(CaseEvent.id))
        )
        return [(event.case_id, event.text) for event in rows.scalars()]


async def second_case(submitted: Submitted) -> Received:
    """Anna's second case (a request about a certificate): its card."""
    await submit_case(
        submitted.anna,
        "pl",
        "📄 Wniosek",
        "Dokumenty, zaświadczenia",
        "Proszę o zaświadczenie o zamieszkaniu",
    )
    return await submitted.clerks.receive_one()


async def test_text_with_one_case_open_goes_to_that_case(submitted: Submitted, store: Database) -> None:
    anna, clerks = submitted.anna, submitted.clerks
    await anna.send("Dziura jest coraz większa, <b>uwaga</b> & ostrożnie")
    told = await anna.receive_one()
    assert told.text == tr(
        "pl",
        "Added to your case {number}, which is being handled; the clerk handling it will see it. To submit a new case instead, press “📝 New case”.",
        number=FIRST,
    )
    post = await clerks.receive_one()
    assert post.thread_id == submitted.thread
    assert post.text == added_post(
        FIRST, "Dziura jest coraz większa, <b>uwaga</b> & ostrożnie"
    )  # escaped: shown as typed
    assert await added_to(store) == [(1, "Dziura jest coraz większa, <b>uwaga</b> & ostrożnie")]


async def test_text_with_several_cases_open_asks_which_one_with_one_tap(
    submitted: Submitted, store: Database
) -> None:
    anna, clerks = submitted.anna, submitted.clerks
    await second_case(submitted)
    await anna.send("Czy mogę dosłać zdjęcie?")
    question = await anna.receive_one()
    assert question.text == tr(
        "pl", "Which of your cases is this about? It is sent to the clerks once you choose."
    )
    assert question.buttons == [
        f"📄 {SECOND} · Dokumenty, zaświadczenia",
        f"🚧 {FIRST} · Drogi, ulice i transport",
        tr("pl", "✖️ Do not send"),
    ]
    await clerks.nothing_more()  # nothing reaches a team before she chooses
    assert await added_to(store) == []

    await anna.click(f"🚧 {FIRST} · Drogi, ulice i transport", question)
    assert (await anna.edited()).text == tr(
        "pl", "Added to case {number}; the clerk handling it will see it.", number=FIRST
    )
    post = await clerks.receive_one()
    assert (post.thread_id, post.text) == (submitted.thread, added_post(FIRST, "Czy mogę dosłać zdjęcie?"))
    assert await added_to(store) == [(1, "Czy mogę dosłać zdjęcie?")]


async def test_not_sending_an_unsorted_message_stores_nothing(submitted: Submitted, store: Database) -> None:
    anna = submitted.anna
    await second_case(submitted)
    await anna.send("Pomyłka")
    await anna.click(tr("pl", "✖️ Do not send"), await anna.receive_one())
    assert (await anna.edited()).text == tr("pl", "Not sent.")
    await submitted.clerks.nothing_more()
    assert await added_to(store) == []


async def test_a_reply_to_the_clerks_message_goes_to_its_case_without_asking(
    submitted: Submitted, store: Database
) -> None:
    anna, clerks = submitted.anna, submitted.clerks
    await second_case(submitted)
    await clerks.send("Prosimy o dokładny adres.", thread_id=submitted.thread)
    relayed = await anna.receive_one()
    await anna.nothing_more()  # settled: the copy's message id is recorded once Telegram has answered
    await anna.send("ul. Szkolna 5", reply_to=relayed.id)
    assert (await anna.receive_one()).text == tr(
        "pl", "Added to case {number}; the clerk handling it will see it.", number=FIRST
    )
    post = await clerks.receive_one()
    assert (post.thread_id, post.text) == (submitted.thread, added_post(FIRST, "ul. Szkolna 5"))
    assert await added_to(store) == [(1, "ul. Szkolna 5")]


async def test_text_with_no_case_open_offers_to_start_one(
    bot: App, telegram: Telegram, store: Database
) -> None:
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    await anna.send("Na ulicy nie świeci lampa")
    told = await anna.receive_one()
    assert told.text == tr(
        "pl",
        "You have no case being handled, so this message was not sent to anyone. To submit it as a new case, press “📝 New case”.",
    )
    assert tr("pl", "📝 New case") in told.keyboard_buttons
    assert await added_to(store) == []


async def test_done_sends_what_was_added_at_once(submitted: Submitted, bot: App) -> None:
    """Not at the end of the gathering window (here ten minutes): "Done" means done."""
    bot.config.settings.gather_seconds = 600
    anna, clerks = submitted.anna, submitted.clerks
    await anna.send(FIRST)
    await anna.click("➕ Uzupełnij informacje", await anna.receive_one())
    done = await anna.receive_one()
    await anna.send("Zdjęcie zrobię jutro.")
    assert (await anna.receive_one()).text == tr(
        "pl", "Added to case {number}. Send more, or press “Done”.", number=FIRST
    )
    await clerks.nothing_more()  # gathering: more may come
    await anna.click(tr("pl", "✅ Done"), done)
    await anna.receive_one()  # thanks
    post = await clerks.receive_one(timeout=5)
    assert post.text == added_post(FIRST, "Zdjęcie zrobię jutro.")


async def test_a_reply_about_a_closed_case_is_not_sent_and_says_why(
    submitted: Submitted, store: Database
) -> None:
    anna, clerks = submitted.anna, submitted.clerks
    await clerks.click("✅ Atsakyti ir užbaigti", submitted.card)
    await clerks.receive_one()
    await clerks.send("Dziura została załatana.", thread_id=submitted.thread)
    answer, _question = await anna.receive(2)  # the answer (the case is closed), the satisfaction question
    await anna.send("Dziękuję!", reply_to=answer.id)
    told = await anna.receive_one()
    assert told.text == tr(
        "pl", "Case {number} is closed, so this message was not sent.", number=FIRST
    ) + " " + tr("pl", "If the matter is not settled, you can reopen it under “📂 My cases”.")
    assert await added_to(store) == []


async def test_lines_typed_one_after_another_reach_the_clerks_as_one_post_once_she_pauses(
    submitted: Submitted, bot: App, store: Database
) -> None:
    """Joined while they come in quick succession, then sent: not held for the whole gathering
    window (here ten minutes)."""
    bot.config.settings.gather_seconds = 600
    anna, clerks = submitted.anna, submitted.clerks
    await anna.send("Lampa przy szkole też nie świeci.")
    await anna.send("I ta przy przystanku.")
    post = await clerks.receive_one(timeout=10)
    assert post.text == added_post(FIRST, "Lampa przy szkole też nie świeci.", "I ta przy przystanku.")
    await clerks.nothing_more()
    assert await added_to(store) == [(1, "Lampa przy szkole też nie świeci."), (1, "I ta przy przystanku.")]
