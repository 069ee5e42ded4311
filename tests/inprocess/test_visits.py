"""The visit survey, in process (bot.services.visits): a scanned poster's deep link opens the
survey for people who never used the bot, in their language; one answer per person, place and
day; the store holds nothing that names anyone; the poster's QR code decodes to the link; only
the place's team or the quality group prints it. (End to end, tests/e2e/test_visits.py scans
through the real bot process.)"""

from __future__ import annotations

import io
from datetime import date, timedelta

import pypdfium2  # type: ignore[import-untyped]  # ships neither stubs nor py.typed
import pytest
import zxingcpp
from PIL import Image
from sqlalchemy import select, text

from bot import clock
from bot.app import App
from bot.sandbox.emulator import Emulator
from bot.store.db import Database
from bot.store.models import Resident, VisitAnswer, VisitReceipt
from tests.catalog import tr
from tests.conftest import ADMIN_CHAT_ID
from tests.support.driver import Person, Received, Telegram
from tests.support.helpers import AVIZIENIAI, Desk

PLACE_PL = "Biuro Obsługi Mieszkańców, stanowisko 1"
PLACE_LT = "Gyventojų aptarnavimo skyrius, 1 langelis"
LINK = "https://t.me/petent_bot?start=v_front-desk-1"
TODAY = date(2026, 11, 23)
PROPOSAL = "Więcej <b>krzeseł</b> & stołów w poczekalni"
ANONYMITY = (
    "🔒 Anonymous: we store the place, the day and your answers, never who you are. Privacy notice: /privacy"
)
FIRST_QUESTION = (
    "How satisfied are you with the service today? Tap a score from 1 (very poor) to 5 (very good)."
)
THANKS = "Thank you! Your answers have been recorded anonymously. They help us serve you better."
ALREADY = (
    "You have already answered about {place} today. Thank you! You can answer again after your next visit."
)
UNKNOWN = "This survey link does not lead to any of our offices (the place may have been removed). Thank you for wanting to tell us what you think!"


def step(locale: str, place: str, number: int, question: str) -> str:
    progress = tr(locale, "Question {number} of {total}, optional.", number=number, total=5)
    return "\n\n".join([place, progress, tr(locale, question)])


async def answers(store: Database) -> list[VisitAnswer]:
    async with store.read() as session:
        return list((await session.execute(select(VisitAnswer))).scalars())


async def scan(person: Person, place: str = "front-desk-1") -> Received:
    await person.send(f"/start v_{place}")
    return await person.receive_one()


async def test_a_new_person_scans_and_answers_everything_in_polish(
    bot: App, telegram: Telegram, clerks: Person, store: Database
) -> None:
    anna = await telegram.resident("Anna", language_code="pl")  # never used the bot
    survey = await scan(anna)
    assert survey.text == "\n\n".join([PLACE_PL, tr("pl", FIRST_QUESTION), tr("pl", ANONYMITY)])
    assert survey.buttons == ["1", "2", "3", "4", "5", "✓ Polski", "Lietuvių", "English"]

    await anna.click("4", survey)
    waiting = await anna.edited()
    assert waiting.text == step("pl", PLACE_PL, 2, "How long did you wait to be served?")
    assert waiting.buttons == [
        "poniżej 5 min",
        "5–15 min",
        "15–30 min",
        "ponad 30 min",
        "⏭ Pomiń",
        "📨 Wyślij",
    ]
    await anna.click("5–15 min", waiting)
    settled = await anna.edited()
    assert settled.text == step("pl", PLACE_PL, 3, "Was your matter settled?")
    await anna.click("Częściowo", settled)
    courtesy = await anna.edited()
    assert courtesy.text == step(
        "pl", PLACE_PL, 4, "How courteous was the clerk? From 1 (not at all) to 5 (very)."
    )
    await anna.click("5", courtesy)
    proposal = await anna.edited()
    assert proposal.buttons == ["📨 Wyślij bez propozycji"]
    await anna.send(PROPOSAL)
    assert (await anna.receive_one()).text == tr("pl", THANKS)

    posted = await clerks.receive_one()  # the default team's group is the quality group here
    assert (
        posted.text
        == tr("lt", "💡 A visitor's proposal about {place} (visit survey, anonymous):", place=PLACE_LT)
        + "\n\n"
        + PROPOSAL
    )
    assert "&lt;b&gt;krzeseł&lt;/b&gt; &amp; stołów" in (posted.html or "")  # escaped, shown as typed
    [row] = await answers(store)
    assert (
        row.place_id,
        row.answered_on,
        row.score,
        row.waited,
        row.settled,
        row.courtesy,
        row.proposal,
    ) == (
        "front-desk-1",
        TODAY,
        4,
        "5-15",
        "partly",
        5,
        PROPOSAL,
    )
    async with store.read() as session:
        assert (
            await session.get(Resident, anna.user["id"]) is None
        )  # no profile, no consent asked: nothing about her


async def test_a_second_person_answers_in_lithuanian_and_sends_after_the_score(
    bot: App, telegram: Telegram, store: Database
) -> None:
    jonas = await telegram.resident("Jonas", language_code="lt")
    survey = await scan(jonas)
    assert survey.text == "\n\n".join([PLACE_LT, tr("lt", FIRST_QUESTION), tr("lt", ANONYMITY)])
    await jonas.click("5", survey)
    waiting = await jonas.edited()
    assert waiting.text == step("lt", PLACE_LT, 2, "How long did you wait to be served?")
    await jonas.click("📨 Siųsti", waiting)
    assert (await jonas.edited()).text == tr("lt", THANKS)
    [row] = await answers(store)
    assert (row.score, row.waited, row.settled, row.courtesy, row.proposal) == (5, None, None, None, None)


async def test_the_language_changes_with_one_tap_and_skipped_steps_stay_empty(
    bot: App, telegram: Telegram, store: Database
) -> None:
    anna = await telegram.resident("Anna", language_code="pl")
    survey = await scan(anna)
    await anna.click("✓ Polski", survey)  # the language shown: nothing changes
    await anna.answer()
    await anna.click("Lietuvių", survey)
    switched = await anna.edited()
    assert switched.text == "\n\n".join([PLACE_LT, tr("lt", FIRST_QUESTION), tr("lt", ANONYMITY)])
    assert switched.buttons[5:] == ["Polski", "✓ Lietuvių", "English"]
    await anna.click("2", switched)
    await anna.click("⏭ Praleisti", await anna.edited())
    await anna.click("Ne", await anna.edited())
    await anna.click("⏭ Praleisti", await anna.edited())
    await anna.click("📨 Siųsti be pasiūlymo", await anna.edited())
    assert (await anna.edited()).text == tr("lt", THANKS)
    [row] = await answers(store)
    assert (row.score, row.waited, row.settled, row.courtesy, row.proposal) == (2, None, "no", None, None)


async def test_the_same_person_again_the_same_day_is_thanked_and_not_counted_twice(
    bot: App, telegram: Telegram, store: Database
) -> None:
    anna = await telegram.resident("Anna", language_code="pl")
    first, second = await scan(anna), await scan(anna)  # two scans before answering: two survey messages
    await anna.click("3", first)
    await anna.click("📨 Wyślij", await anna.edited())
    assert (await anna.edited()).text == tr("pl", THANKS)
    assert (await scan(anna)).text == tr("pl", ALREADY, place=PLACE_PL)
    await anna.click("5", second)  # the other survey message, answered too
    assert (await anna.edited()).text == tr("pl", ALREADY, place=PLACE_PL)
    await anna.forge_button(
        "vs:front-desk-1:pl:5:s:", second
    )  # "Send" straight away, as a crafted client could
    assert (await anna.answer())["text"] == tr("pl", ALREADY, place=PLACE_PL)
    assert [row.score for row in await answers(store)] == [3]
    # Another place the same day is another answer.
    other = await scan(anna, "rudamina-office")
    await anna.click("5", other)
    await anna.click("📨 Wyślij", await anna.edited())
    assert (await anna.edited()).text == tr("pl", THANKS)
    assert sorted((row.place_id, row.score) for row in await answers(store)) == [
        ("front-desk-1", 3),
        ("rudamina-office", 5),
    ]


async def test_the_next_day_counts_again(
    bot: App, telegram: Telegram, store: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    anna = await telegram.resident("Anna", language_code="pl")
    survey = await scan(anna)
    await anna.click("3", survey)
    await anna.click("📨 Wyślij", await anna.edited())
    await anna.edited()
    monkeypatch.setenv("PETENT_FROZEN_TIME", "2026-11-24T09:00:00+02:00")
    monkeypatch.setattr(clock, "_origin", None)  # the clock reads the next morning
    again = await scan(anna)
    assert again.text.startswith(PLACE_PL)
    await anna.click("4", again)
    await anna.click("📨 Wyślij", await anna.edited())
    assert (await anna.edited()).text == tr("pl", THANKS)
    assert sorted((row.answered_on, row.score) for row in await answers(store)) == [
        (TODAY, 3),
        (TODAY + timedelta(days=1), 4),
    ]
    async with store.read() as session:
        receipts = list((await session.execute(select(VisitReceipt))).scalars())
    assert [receipt.day for receipt in receipts] == [TODAY + timedelta(days=1)]  # yesterday's receipt is gone


@pytest.mark.parametrize(
    "payload", ["v_nowhere", "v_" + "a" * 60, "v_front-desk-1'--", "v_FRONT-DESK-1", "v_"]
)
async def test_an_unknown_or_forged_place_gets_a_friendly_answer_and_the_menu(
    bot: App, telegram: Telegram, store: Database, payload: str
) -> None:
    anna = await telegram.resident("Anna", language_code="pl")
    await anna.send(f"/start {payload}")
    reply = await anna.receive_one()
    assert reply.text == tr("pl", UNKNOWN)
    assert reply.keyboard_buttons == [
        "📝 Nowa sprawa",
        "📂 Moje sprawy",
        "📰 Aktualności",
        "🏗 Projekty",
        "🌐 Język",
        "❓ Pomoc",
        "💡 Zaproponuj usprawnienie",
    ]
    assert await answers(store) == []


async def test_a_forged_button_changes_nothing(bot: App, telegram: Telegram, store: Database) -> None:
    anna = await telegram.resident("Anna", language_code="pl")
    survey = await scan(anna)
    for data in (
        "vs:front-desk-1:pl:9:s:",
        "vs:nowhere:pl:5:s:",
        "vs:front-desk-1:xx:5:s:",
        "vs:front-desk-1:pl:5:a:7",
        "vs:front-desk-1:pl::s:",
    ):
        await anna.forge_button(data, survey)
        assert (await anna.answer())["text"] == tr("pl", "This cannot be done now.")
    assert await answers(store) == []


async def test_no_visit_survey_table_holds_a_user_id(bot: App, telegram: Telegram, store: Database) -> None:
    people = [
        await telegram.resident(name, language_code=code)
        for name, code in (("Anna", "pl"), ("Jonas", "lt"), ("Rasa", "lt"))
    ]
    for person in people:
        survey = await scan(person)
        await person.click("4", survey)
        await person.click(tr(person.user["language_code"], "5–15 min"), await person.edited())
        await person.click(tr(person.user["language_code"], "📨 Send"), await person.edited())
        await person.edited()
    async with store.read() as session:
        columns = {
            table: list((await session.execute(text(f"SELECT * FROM {table}"))).keys())
            for table in ("visit_answers", "visit_receipts")
        }
        values = [
            str(v)
            for table in columns
            for row in (await session.execute(text(f"SELECT * FROM {table}"))).all()
            for v in row
        ]
    assert columns == {
        "visit_answers": [
            "id",
            "place_id",
            "answered_on",
            "score",
            "waited",
            "settled",
            "courtesy",
            "proposal",
        ],
        "visit_receipts": ["digest", "day"],
    }
    assert len(values) == 3 * 8 + 3 * 2
    ids = [str(person.user["id"]) for person in people]
    assert not [value for value in values if any(user_id in value for user_id in ids)]
    async with store.read() as session:  # the day as the database holds it: a date, no time of day
        assert {
            str(day)
            for day in (await session.execute(text("SELECT answered_on FROM visit_answers"))).scalars()
        } == {"2026-11-23"}


def decoded(image: Image.Image) -> list[str]:
    return [result.text for result in zxingcpp.read_barcodes(image)]


async def posters(person: Person, emulator: Emulator) -> tuple[Received, bytes, bytes]:
    pdf, png = await person.receive(
        2, timeout=90
    )  # drawing an A4 page takes seconds of CPU on a busy machine
    return (
        pdf,
        emulator.files[pdf.raw["document"]["file_id"]].data,
        emulator.files[png.raw["document"]["file_id"]].data,
    )


async def test_the_posters_pdf_and_png_hold_a_qr_code_of_the_survey_link(
    bot: App, clerks: Person, emulator: Emulator
) -> None:
    await clerks.send("/qr front-desk-1")
    message, pdf, png = await posters(clerks, emulator)
    assert message.raw["document"]["file_name"] == "poster-front-desk-1.pdf"
    assert message.text == tr(
        "lt",
        "Visit survey poster for {place} (A4, Polish and Lithuanian). The code opens {link}",
        place=PLACE_LT,
        link=LINK,
    )
    assert decoded(Image.open(io.BytesIO(png))) == [LINK]
    page = pypdfium2.PdfDocument(pdf)[0]
    assert [round(side) for side in page.get_size()] == [595, 842]  # A4 in points
    assert decoded(page.render(scale=2).to_pil()) == [LINK]
    assert pdf[:5] == b"%PDF-"


async def test_qr_without_a_place_lists_the_places(bot: App, clerks: Person) -> None:
    await clerks.send("/qr")
    reply = await clerks.receive_one()
    assert reply.text.startswith(tr("lt", "Usage: /qr PLACE, e.g. /qr {example}.", example="front-desk-1"))
    assert "rudamina-office: Rudaminos seniūnija" in reply.text


async def test_a_place_team_prints_its_poster_and_a_non_member_is_refused(
    desk: Desk, bot: App, telegram: Telegram, emulator: Emulator
) -> None:
    stranger = await telegram.person("Tomas")
    emulator.chats[AVIZIENIAI].members.add(stranger.user["id"])  # in the group, but not listed in the team
    await stranger.in_chat(AVIZIENIAI).send("/qr avizieniai-office")
    refusal = await desk.eldership.receive_one()
    assert refusal.text == tr(
        "lt",
        "Only the members of {team} (in its group) or of the quality group can print the poster of {place}.",
        team="Avižienių seniūnija",
        place="Avižienių seniūnija",
    )
    await desk.member.send("/qr avizieniai-office")  # Petras, in the roads group: not the place's team
    assert (await desk.member.receive_one()).text == refusal.text
    await desk.eldership.send("/qr avizieniai-office")  # Aldona, a listed member
    _message, _pdf, png = await posters(desk.eldership, emulator)
    assert decoded(Image.open(io.BytesIO(png))) == ["https://t.me/petent_bot?start=v_avizieniai-office"]


async def test_the_public_page_is_served_only_when_the_setting_is_on(bot: App) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from bot.web import build_web_app

    for setting, status in ((False, 404), (True, 200)):
        bot.config.settings.public_service_quality = setting
        async with TestClient(TestServer(build_web_app(bot, webhook=False))) as client:
            response = await client.get("/service-quality", headers={"Accept-Language": "lt-LT,lt;q=0.9"})
            assert response.status == status
            if setting:
                page = await response.text()
                assert response.headers["Content-Language"] == "lt" and response.content_type == "text/html"
                assert f"<h2>{PLACE_LT}</h2><p>" in page  # no answers yet: fewer than 5


async def test_the_main_menu_while_a_proposal_is_asked_for_is_not_taken_as_the_proposal(
    bot: App, telegram: Telegram, clerks: Person, store: Database
) -> None:
    anna = await telegram.resident("Anna", language_code="pl")
    survey = await scan(anna)
    await anna.click("4", survey)
    for _step in range(3):
        await anna.click("⏭ Pomiń", await anna.edited())
    await anna.edited()  # the proposal is asked for
    await anna.send("❓ Pomoc")
    help_text = (await anna.receive_one()).text
    assert "/new" in help_text and "/mydata" in help_text  # the help, not the thanks
    await anna.send("Nie to miałam na myśli")  # no longer a proposal: the fallback's answer
    await anna.receive_one()
    assert await answers(store) == []
    await clerks.nothing_more()


async def test_report_in_the_group_gives_the_places_and_their_chart(
    bot: App, clerks: Person, store: Database, emulator: Emulator
) -> None:
    emulator.chats[ADMIN_CHAT_ID].admins.add(
        clerks.user["id"]
    )  # the quality staff get the whole municipality's report (docs/roles.md)
    async with store.write() as session:
        for score in (5, 4, 4, 3, 5):
            session.add(
                VisitAnswer(
                    place_id="front-desk-1", answered_on=TODAY, score=score, waited="lt5", settled="yes"
                )
            )
        session.add(VisitAnswer(place_id="rudamina-office", answered_on=TODAY, score=1))
    await clerks.send("/report")
    message, chart, visits, workbook = await clerks.receive(4, timeout=90)
    assert (
        tr(
            "lt",
            "{place}: fewer than {min} answer",
            "{place}: fewer than {min} answers",
            5,
            place="Rudaminos seniūnija",
            min=5,
        )
        in message.text
    )
    assert "Gyventojų aptarnavimo skyrius, 1 langelis: atsakymų: 5, vidurkis 4,2 iš 5" in message.text
    assert chart.raw["photo"] and visits.raw["photo"]
    assert visits.text.startswith(tr("lt", "Visit surveys per place, {start} – {end}").split("{")[0])
    assert workbook.raw["document"]["file_name"].endswith(".xlsx")
