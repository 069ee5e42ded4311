"""The clerks' desk in a forum group, one behaviour a test, over a shared submitted case: Anna's
report of a pothole, its card in its own topic. (End to end, tests/e2e/test_desk.py keeps what
needs a real process or a group of another kind.)"""

from datetime import date

from sqlalchemy import select
from sqlmodel import col

from bot.sandbox.emulator import Emulator
from bot.store.db import Database
from bot.store.models import Case, CaseEvent, CaseStatus
from tests.catalog import REOPEN_WITHIN, SURVEY, tr
from tests.conftest import ADMIN_CHAT_ID
from tests.inprocess.conftest import Submitted
from tests.support.driver import Received, Telegram
from tests.support.helpers import PHOTO

NUMBER = "VRS-2026-000001"
MUNICIPALITY_PL = "Samorząd Rejonu Wileńskiego"  # its name, from its .toml
# A report of a problem: it can also be made public (Open311), open or closed.
CARD_BUTTONS_NEW = [
    "🙋 Imuosi",
    "⚙️ Nagrinėjamas",
    "⏳ Pratęsti",
    "✅ Atsakyti ir užbaigti",
    "↪️ Kitai institucijai",
    "⛔ Atmesti",
    "🌐 Paviešinti",
    "🔗 Kreipimosi dublikatas…",
    "📣 Skelbimas apylinkei",
]
CARD_BUTTONS_CLOSED = ["↩️ Atnaujinti nagrinėjimą", "🌐 Paviešinti"]


def to_anna(*paragraphs: str) -> str:
    """A message about the case as Anna reads it (in Polish): the heading, then the paragraphs."""
    return "\n\n".join(
        [
            tr("pl", "<b>{municipality}</b> · case {number}", municipality=MUNICIPALITY_PL, number=NUMBER),
            *paragraphs,
        ]
    )


def status_pl(status: str) -> str:
    return tr("pl", "Status: {status}", status=tr("pl", status))


def status_line_lt(status: str, responsible: str) -> str:
    """The card's status line, in ADMIN_LOCALE (Lithuanian)."""
    return tr("lt", "Status: {status}", status=tr("lt", status)) + " · " + responsible


def prompt_lt(msgid: str) -> str:
    """A clerk's prompt in the topic, with how long the bot waits for the answer."""
    return (
        tr("lt", msgid, number=NUMBER)
        + "\n\n"
        + tr("lt", "⏳ Waiting for your answer to {number} ({minutes} min).", number=NUMBER, minutes=10)
    )


def buttons_now(emulator: Emulator, message: Received) -> list[str]:
    markup = emulator.chats[ADMIN_CHAT_ID].messages[message.id].get("reply_markup") or {}
    return [button["text"] for row in markup.get("inline_keyboard", []) for button in row]


async def events(store: Database) -> list[CaseEvent]:
    async with store.read() as session:
        return list((await session.execute(select(CaseEvent).order_by(col(CaseEvent.id)))).scalars())


async def test_a_new_case_gets_its_topic_and_card(submitted: Submitted, telegram: Telegram) -> None:
    [topic] = (await telegram.chat(ADMIN_CHAT_ID))["topics"]
    assert topic["name"] == "VRS-2026-000001 · Keliai ir transportas · visas rajonas"
    assert submitted.card.thread_id == topic["message_thread_id"]
    assert submitted.card.text == "\n".join(
        [
            "🚧 VRS-2026-000001 · Pranešimas apie problemą",
            status_line_lt("Received", tr("lt", "nobody responsible yet")),
            "Komanda: Specialistai",
            "Seniūnija: visas rajonas",
            "Sritis: Keliai ir transportas",
            "Gauta: 2026 m. lapkričio 23 d.",
            "Terminas: 2026 m. gruodžio 21 d. (liko 20 darbo dienų)",
            "Gyventojas: Anna",
            "Kalba: Polski",
            "",
            "Dziura w jezdni przy szkole",
        ]
    )
    assert submitted.card.buttons == CARD_BUTTONS_NEW


async def test_taking_a_case_names_the_clerk_on_the_card_and_tells_the_resident(
    submitted: Submitted, store: Database
) -> None:
    card, clerks = submitted.card, submitted.clerks
    await clerks.click("🙋 Imuosi", card)
    taken = await clerks.edited()
    new = status_line_lt("Received", tr("lt", "nobody responsible yet"))
    assert taken.text == card.text.replace(
        new, status_line_lt("Assigned to a clerk", tr("lt", "responsible: {name}", name="Ona"))
    )
    assert taken.buttons == CARD_BUTTONS_NEW  # "Take" stays: another clerk may take it over
    assert (await submitted.anna.receive_one()).text == to_anna(status_pl("Assigned to a clerk"))
    assert [(e.kind, e.actor_name, (e.data or {}).get("to")) for e in await events(store)] == [
        ("created", None, None),
        ("status", "Ona", "assigned"),
    ]


async def test_writing_in_the_topic_reaches_the_resident_under_the_municipalitys_name(
    submitted: Submitted,
) -> None:
    await submitted.clerks.send(
        "Dzień dobry, sprawdzimy to jutro <rano> & odpiszemy.", thread_id=submitted.thread
    )
    relayed = await submitted.anna.receive_one()
    assert relayed.text == to_anna(
        tr("pl", "Message from the clerk:") + "\nDzień dobry, sprawdzimy to jutro <rano> & odpiszemy."
    )  # not Ona's name
    await submitted.clerks.send_photo(PHOTO, caption="Zdjęcie z miejsca", thread_id=submitted.thread)
    photo = await submitted.anna.receive_one()
    assert photo.raw["photo"] and photo.text == to_anna("Zdjęcie z miejsca")  # the caption, under the heading


async def test_a_note_stays_among_the_clerks(submitted: Submitted, store: Database) -> None:
    await submitted.clerks.send("!Kelių tarnyba atsakys iki penktadienio", thread_id=submitted.thread)
    await submitted.anna.nothing_more()  # the point: nothing reaches Anna meanwhile
    assert [(e.kind, e.text) for e in await events(store)][1:] == [
        ("note", "Kelių tarnyba atsakys iki penktadienio")
    ]


async def test_extending_the_deadline_tells_the_resident_why(submitted: Submitted, store: Database) -> None:
    clerks = submitted.clerks
    await clerks.click("⏳ Pratęsti", submitted.card)
    days = await clerks.receive_one()
    assert days.buttons == ["1", "5", "10", tr("lt", "✖️ Cancel")]
    await clerks.click("10", days)
    await clerks.edited()
    reason = await clerks.receive_one()
    assert reason.text == prompt_lt("{number}: write the reason for the extension. The resident will see it.")
    assert reason.buttons == [tr("lt", "✖️ Cancel")]
    await clerks.send("Reikia kelių tarnybos išvados", thread_id=submitted.thread)
    assert (await submitted.anna.receive_one()).text == to_anna(
        tr(
            "pl",
            "The deadline for the answer has been extended to {due}.",
            due="7 stycznia 2027 (pozostało 30 dni roboczych)",
        ),
        tr("pl", "Reason: {reason}", reason="Reikia kelių tarnybos išvados"),
    )
    async with store.read() as session:
        case = (await session.execute(select(Case))).scalar_one()
    assert (case.extension_days, case.extended_until) == (10, date(2027, 1, 7))


async def test_an_answered_prompt_loses_its_cancel_and_cancelling_it_later_undoes_nothing(
    submitted: Submitted,
) -> None:
    clerks = submitted.clerks
    await clerks.click("⏳ Pratęsti", submitted.card)
    await clerks.click("10", await clerks.receive_one())
    await clerks.edited()
    prompt = await clerks.receive_one()
    await clerks.send("Reikia kelių tarnybos išvados", thread_id=submitted.thread)
    answered = await clerks.edited()
    assert (answered.id, answered.buttons) == (prompt.id, [])
    await clerks.forge_button("dq:1", prompt)  # "Cancel", pressed from a screen that still showed it
    assert (await clerks.answer())["text"] == tr(
        "lt", "Nothing to cancel: this question no longer waits for your answer."
    )


async def test_cancelling_a_waiting_prompt_says_so(submitted: Submitted) -> None:
    clerks = submitted.clerks
    await clerks.click("✅ Atsakyti ir užbaigti", submitted.card)
    prompt = await clerks.receive_one()
    await clerks.click(tr("lt", "✖️ Cancel"), prompt)
    assert (await clerks.answer())["text"] == tr("lt", "Cancelled.")
    await clerks.send(
        "Dabar tai tik žinutė gyventojui.", thread_id=submitted.thread
    )  # no longer the final answer
    relayed = await submitted.anna.receive_one()
    assert relayed.text == to_anna(tr("pl", "Message from the clerk:") + "\nDabar tai tik žinutė gyventojui.")


async def test_answering_closes_the_case_and_the_clerk_can_reopen_it(
    submitted: Submitted, emulator: Emulator, store: Database
) -> None:
    anna, clerks = submitted.anna, submitted.clerks
    await clerks.click("✅ Atsakyti ir užbaigti", submitted.card)
    prompt = await clerks.receive_one()
    assert prompt.text == prompt_lt(
        "{number}: write the final answer. It goes to the resident, and the case is closed."
    )
    await clerks.send("Dziura zostanie załatana do 5 grudnia.", thread_id=submitted.thread)
    answer, question = await anna.receive(2)  # one message says it is the answer and that the case is closed
    assert answer.text == to_anna(
        tr("pl", "The answer to your case:") + "\nDziura zostanie załatana do 5 grudnia.",
        tr("pl", *REOPEN_WITHIN, n=14, days=14),
    )
    assert question.text == tr("pl", SURVEY, number=NUMBER)
    await emulator.wait_for(lambda: buttons_now(emulator, submitted.card) == CARD_BUTTONS_CLOSED, 10)
    assert buttons_now(emulator, submitted.card) == CARD_BUTTONS_CLOSED

    await clerks.click("↩️ Atnaujinti nagrinėjimą", submitted.card)
    assert (await anna.receive_one()).text == to_anna(status_pl("Reopened"))
    async with store.read() as session:
        assert (await session.execute(select(Case))).scalar_one().status == CaseStatus.REOPENED


async def test_history_lists_every_event_in_order(submitted: Submitted) -> None:
    clerks = submitted.clerks
    await clerks.click("🙋 Imuosi", submitted.card)
    await submitted.anna.receive_one()
    await clerks.send("Sprawdzimy jutro.", thread_id=submitted.thread)
    await submitted.anna.receive_one()
    await clerks.send("!Kelių tarnyba atsakys iki penktadienio", thread_id=submitted.thread)
    await clerks.click("⏳ Pratęsti", submitted.card)
    await clerks.click("10", await clerks.receive_one())
    await clerks.receive_one()  # the prompt for the reason
    await clerks.send("Reikia kelių tarnybos išvados", thread_id=submitted.thread)
    await submitted.anna.receive_one()
    await clerks.send("/history VRS-2026-000001", thread_id=submitted.thread)
    history = (await clerks.receive_one()).text.splitlines()
    assert history[0] == tr("lt", "<b>History of {number}</b>", number=NUMBER)
    lines = [line.split(" · ", 1) for line in history[1:]]
    assert {when[:11] for when, _ in lines} == {
        "2026-11-23 "
    }  # on the frozen day; the minute depends on the machine's speed
    assert [line for _, line in lines] == [
        tr("lt", "resident") + " · " + tr("lt", "case received"),
        "Ona · " + tr("lt", "status: {status}", status=tr("lt", "Assigned to a clerk")),
        "Ona · " + tr("lt", "to the resident: {text}", text="Sprawdzimy jutro."),
        "Ona · " + tr("lt", "note: {text}", text="Kelių tarnyba atsakys iki penktadienio"),
        "Ona · "
        + tr("lt", "deadline extended to {date}", date="2027-01-07")
        + " (Reikia kelių tarnybos išvados)",
    ]


async def test_a_group_administrator_listed_in_no_team_acts_on_a_case(
    submitted: Submitted, telegram: Telegram, emulator: Emulator
) -> None:
    """The default team lists nobody: the group's administrators act, as its members do (their
    getChatMember answer carries the fields of the Bot API that the locked aiogram speaks)."""
    jonas = await telegram.person("Jonas", language_code="lt")
    emulator.chats[ADMIN_CHAT_ID].admins.add(jonas.user["id"])
    await jonas.in_chat(ADMIN_CHAT_ID).click("🙋 Imuosi", submitted.card)
    taken = await submitted.clerks.edited()
    assert status_line_lt("Assigned to a clerk", tr("lt", "responsible: {name}", name="Jonas")) in taken.text
    assert (await submitted.anna.receive_one()).text == to_anna(status_pl("Assigned to a clerk"))
