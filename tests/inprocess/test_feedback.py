"""Residents' feedback, in process, one behaviour a test: the satisfaction question after a clerk
closes a case (over a shared closed case), and a poll from the communications group (over a
shared poll sent to Anna and Jonas); anonymity checked on the database. (The declined question in
Lithuanian and the quality report: tests/inprocess/test_feedback_edges.py; the weekly report on its
day, end to end: tests/e2e/test_feedback.py.)"""

from dataclasses import dataclass

import pytest
from sqlalchemy import select, text

from bot.sandbox.emulator import Emulator
from bot.store.db import Database
from bot.store.models import Case, PollAnswer, SatisfactionAnswer
from tests.catalog import REOPEN_WITHIN, SURVEY, tr
from tests.conftest import ADMIN_CHAT_ID
from tests.inprocess.conftest import Submitted
from tests.support.driver import Person, Received, Telegram
from tests.support.helpers import onboard, staff

NUMBER = "VRS-2026-000001"
COMMENT = "Szybko, ale <b>łatka</b> już pęka & trzeba poprawić"


async def all_values(store: Database, table: str) -> list[str]:
    async with store.read() as session:
        return [
            str(value)
            for row in (await session.execute(text(f"SELECT * FROM {table}"))).all()
            for value in row
        ]


# --- satisfaction ---------------------------------------------------------------------------


@dataclass
class Closed(Submitted):
    question: Received


@pytest.fixture
async def closed(submitted: Submitted) -> Closed:
    """Anna's report of a pothole, answered and closed by Ona: the satisfaction question is asked."""
    anna, clerks, card = submitted.anna, submitted.clerks, submitted.card
    await clerks.click("✅ Atsakyti ir užbaigti", card)
    await clerks.receive_one()  # "write the answer"
    await clerks.send("Dziura została załatana.", thread_id=card.thread_id)
    *_, question = await anna.receive(2)  # the answer (the case is closed), the question
    return Closed(anna, clerks, card, question)


async def rate(closed: Closed) -> Received:
    """4 stars, partly resolved, with a comment: the thanks."""
    anna = closed.anna
    await anna.click("4 ★", closed.question)
    await anna.click("Częściowo", await anna.edited())
    await anna.edited()
    await anna.click("✍️ Dodaj komentarz")
    await anna.edited()
    await anna.send(COMMENT)
    return await anna.receive_one()


async def test_the_question_offers_one_to_five_stars_or_no_thanks(closed: Closed) -> None:
    assert closed.question.text == tr("pl", SURVEY, number=NUMBER)
    assert closed.question.buttons == ["1 ★", "2 ★", "3 ★", "4 ★", "5 ★", "Nie, dziękuję"]


async def test_a_rating_asks_whether_the_matter_was_resolved(closed: Closed) -> None:
    await closed.anna.click("4 ★", closed.question)
    resolved = await closed.anna.edited()
    assert resolved.text == tr("pl", "Your rating: {score} ★. Was the matter resolved?", score=4)
    assert resolved.buttons == ["Tak", "Częściowo", "Nie"]


async def test_then_a_comment_is_offered_and_asked_for(closed: Closed) -> None:
    anna = closed.anna
    await anna.click("4 ★", closed.question)
    await anna.click("Częściowo", await anna.edited())
    offer = await anna.edited()
    assert offer.text == tr("pl", "Thank you. Would you like to add a comment? It is optional.")
    assert offer.buttons == ["📨 Wyślij bez komentarza", "✍️ Dodaj komentarz"]
    await anna.click("✍️ Dodaj komentarz", offer)
    assert (await anna.edited()).text == tr(
        "pl",
        "Please write your comment in one message (up to {max} character).",
        "Please write your comment in one message (up to {max} characters).",
        1000,
        max=1000,
    )
    await anna.send_sticker()  # not a comment: asked for text, with the button to send without one
    hint = await anna.receive_one()
    assert (hint.text, hint.buttons) == (
        tr("pl", "Please write the comment as text, or tap “Send without a comment”."),
        ["📨 Wyślij bez komentarza"],
    )
    await anna.click("📨 Wyślij bez komentarza", hint)
    assert (await anna.edited()).text == tr(
        "pl", "Thank you for your answer! It helps us improve. It is stored anonymously."
    )


async def test_the_comment_is_thanked_for_and_stored_without_who_gave_it(
    closed: Closed, store: Database
) -> None:
    assert (await rate(closed)).text == tr(
        "pl", "Thank you for your answer! It helps us improve. It is stored anonymously."
    )
    async with store.read() as session:
        answer = (await session.execute(select(SatisfactionAnswer))).scalar_one()
        case = (await session.execute(select(Case))).scalar_one()
    assert (answer.score, answer.resolved, answer.comment) == (4, "partly", COMMENT)
    assert (answer.category_id, answer.kind, answer.locale) == ("roads", "report", "pl")
    stored = await all_values(store, "satisfaction_answers") + await all_values(store, "survey_receipts")
    assert not [v for v in stored if v in {str(closed.anna.user["id"]), str(case.id), case.number, "Anna"}]


async def test_the_thanks_offer_a_proposal_once_and_it_reaches_the_quality_group(closed: Closed) -> None:
    """No team is marked `quality`: the quality group is the clerks' group."""
    anna, clerks = closed.anna, closed.clerks
    thanks = await rate(closed)
    assert thanks.buttons == ["💡 Zaproponuj usprawnienie"]
    await anna.click("💡 Zaproponuj usprawnienie", thanks)
    assert (await anna.edited()).buttons == []  # offered once: the button goes
    assert (await anna.receive_one()).text == tr(
        "pl",
        "💡 What could the municipality do better? Please write your proposal ({min} to {max} character).",
        "💡 What could the municipality do better? Please write your proposal ({min} to {max} characters).",
        3000,
        min=10,
        max=3000,
    )
    await anna.send("Proszę publikować mapę remontów dróg")
    await anna.click("🕶 Wyślij anonimowo", await anna.receive_one())
    assert (await anna.receive_one()).text == tr(
        "pl", "Thank you! Your proposal has been passed on anonymously."
    )
    post = await clerks.seen(lambda m: m.text.startswith("💡"))
    assert post.text.endswith("\n\nProszę publikować mapę remontów dróg")


async def test_an_old_button_cannot_add_a_second_answer(closed: Closed, store: Database) -> None:
    await rate(closed)
    await closed.anna.forge_button("fb:1:score:5:", closed.question)
    assert (await closed.anna.answer())["text"] == tr(
        "pl", "You have already answered about this case. Thank you!"
    )
    async with store.read() as session:
        assert [a.score for a in (await session.execute(select(SatisfactionAnswer))).scalars()] == [4]


def card_has(emulator: Emulator, card: Received, label: str) -> bool:
    markup = emulator.chats[ADMIN_CHAT_ID].messages[card.id].get("reply_markup") or {}
    return label in [button["text"] for row in markup.get("inline_keyboard", []) for button in row]


async def test_reopened_and_closed_again_the_question_is_not_repeated(
    closed: Closed, emulator: Emulator, store: Database
) -> None:
    anna, clerks = closed.anna, closed.clerks
    await rate(closed)
    await emulator.wait_for(lambda: card_has(emulator, closed.card, "↩️ Atnaujinti nagrinėjimą"), 10)
    await clerks.click("↩️ Atnaujinti nagrinėjimą", closed.card)
    await anna.receive_one()  # reopened
    await emulator.wait_for(
        lambda: card_has(emulator, closed.card, "⛔ Atmesti"), 10
    )  # the card shows the open case's buttons again
    await clerks.click("⛔ Atmesti", closed.card)
    await clerks.receive_one()  # "write the reason"
    await clerks.send("Sprawa została już załatwiona wcześniej.", thread_id=closed.thread)
    assert (await anna.receive_one()).text == "\n\n".join(
        [
            tr(
                "pl",
                "<b>{municipality}</b> · case {number}",
                municipality="Samorząd Rejonu Wileńskiego",
                number=NUMBER,
            ),
            tr("pl", "Status: {status}", status=tr("pl", "Rejected")),
            tr("pl", "Reason: {reason}", reason="Sprawa została już załatwiona wcześniej."),
            tr("pl", *REOPEN_WITHIN, n=14, days=14),
        ]
    )
    await anna.nothing_more()  # the point: no second question meanwhile
    async with store.read() as session:
        assert len((await session.execute(select(SatisfactionAnswer))).all()) == 1


async def test_a_menu_button_while_asked_why_to_reopen_does_not_reopen(
    closed: Closed, store: Database
) -> None:
    """The main menu and the commands stay at hand while the bot waits for the reason to reopen a
    case: "❓ Help" there shows the help and leaves the question; the case stays closed."""
    anna = closed.anna
    await anna.send("VRS-2026-000001")
    await anna.click("↩️ Wznów sprawę", await anna.receive_one())
    assert (await anna.receive_one()).text == tr(
        "pl", "Why should case {number} be reopened? Please write the reason in one message.", number=NUMBER
    )

    await anna.send("❓ Pomoc")  # taken by a flow before the cases' one
    await anna.receive_one()
    await anna.send("Dzień dobry")  # no longer a reason (and her only case is closed: sent nowhere)
    assert (await anna.receive_one()).text == tr(
        "pl",
        "You have no case being handled, so this message was not sent to anyone. To submit it as a new case, press “📝 New case”.",
    )
    async with store.read() as session:
        case = (await session.execute(select(Case))).scalar_one()
    assert case.status == "answered"


# --- a poll -----------------------------------------------------------------------------------

POLL = """# Godziny pracy i usługi
Q: Jak ocenia Pan/Pani godziny pracy urzędu? | Kaip vertinate savivaldybės darbo laiką?
- Dobrze | Gerai
- Źle | Blogai
Q+: Co chciał(a)by Pan/Pani załatwiać przez internet? | Ką norėtumėte tvarkyti internetu?
- Zaświadczenia | Pažymas
- Zgłoszenia | Pranešimus
- Podatki | Mokesčius
"""


POLL_EXAMPLE = """# …
Q: Jak ocenia Pan/Pani godziny pracy urzędu? | Kaip vertinate savivaldybės darbo laiką?
- Dobrze | Gerai
- Źle | Blogai
Q+: Co chciał(a)by Pan/Pani załatwiać przez internet? | Ką norėtumėte tvarkyti internetu?
- Zaświadczenia | Pažymas
- Zgłoszenia | Pranešimus"""


def first_question(locale: str, question: str) -> str:
    """The poll's first question as a resident reading `locale` gets it."""
    heading = tr(locale, "📊 <b>Poll</b> · question {number} of {total}", number=1, total=2)
    return "\n\n".join([heading, question, tr(locale, "Choose one answer, then confirm.")])


# Anna's answers ("Źle"; "Zaświadczenia" and "Podatki") as she reads them back.
ANSWERS = "\n\n".join(
    [
        tr("pl", "📊 <b>Your answers</b>"),
        "1. Jak ocenia Pan/Pani godziny pracy urzędu?\n→ Źle",
        "2. Co chciał(a)by Pan/Pani załatwiać przez internet?\n→ Zaświadczenia, Podatki",
    ]
)


def results_text(state: str) -> str:
    """The results of Anna's one answer, as the staff read them (Lithuanian)."""
    return "\n\n".join(
        [
            tr(
                "lt",
                "📊 <b>Poll #{id}</b> ({state}): {count} answer",
                "📊 <b>Poll #{id}</b> ({state}): {count} answers",
                1,
                id=1,
                state=tr("lt", state),
                count=1,
            ),
            "1. Kaip vertinate savivaldybės darbo laiką?\n• Gerai: 0 (0%)\n• Blogai: 1 (100%)",
            "2. Ką norėtumėte tvarkyti internetu?\n• Pažymas: 1 (100%)\n• Pranešimus: 0 (0%)\n• Mokesčius: 1 (100%)",
            tr("lt", "By language: {languages}", languages="Polski " + tr("lt", "fewer than {min}", min=5)),
        ]
    )


@dataclass
class People:
    anna: Person
    jonas: Person
    rasa: Person


@pytest.fixture
async def people(bot, telegram: Telegram, emulator: Emulator) -> People:
    """Anna (Polish) and Jonas (Lithuanian), onboarded; Rasa in the communications group."""
    anna = await telegram.resident("Anna", language_code="pl")
    jonas = await telegram.resident("Jonas", language_code="lt")
    await onboard(anna, "pl")
    await onboard(jonas, "lt")
    return People(anna, jonas, await staff(telegram, emulator))


async def compose(rasa: Person) -> Received:
    """/poll and the poll file: the choice of recipients."""
    await rasa.send("/poll")
    await rasa.receive_one()
    await rasa.send_document(POLL.encode(), "ankieta.txt", mime="text/plain")
    return await rasa.receive_one()


async def preview(rasa: Person) -> list[Received]:
    await rasa.click("👁 Peržiūra", await compose(rasa))
    await rasa.edited()
    return await rasa.receive(7)  # title + question for each of three languages, then the confirmation


@dataclass
class Sent:
    people: People
    sending: Received
    first: Received  # Anna's first question
    question: Received  # Jonas's


@pytest.fixture
async def sent(people: People) -> Sent:
    rasa = people.rasa
    previews = await preview(rasa)
    await rasa.click("✅ Siųsti gavėjams: 2", previews[-1])
    await rasa.edited()
    sending, _progress = await rasa.receive(2)
    return Sent(people, sending, await people.anna.receive_one(), await people.jonas.receive_one())


async def answer_poll(sent: Sent) -> Received:
    """Anna answers: "Źle", then "Zaświadczenia" and "Podatki"; the summary before sending."""
    anna, first = sent.people.anna, sent.first
    await anna.click("○ Źle", first)
    await anna.edited()
    await anna.click("✅ Potwierdzam", first)
    second = await anna.edited()
    await anna.click("☐ Zaświadczenia", second)
    await anna.edited()
    await anna.click("☐ Podatki", second)
    await anna.edited()
    await anna.click("✅ Potwierdzam", second)
    return await anna.edited()


@pytest.fixture
async def answered(sent: Sent) -> Sent:
    await sent.people.anna.click("📨 Wyślij odpowiedzi", await answer_poll(sent))
    await sent.people.anna.edited()
    return sent


async def test_help_in_the_communications_group_lists_the_poll_commands(people: People) -> None:
    await people.rasa.send("/help")
    assert (await people.rasa.receive_one()).text == tr(
        "lt",
        "<b>Announcements and polls</b>\n"
        "/broadcast: a new announcement (language, text or files, audience, preview, send)\n"
        "/broadcasts: recent announcements with their figures\n"
        "/stop ID: stop sending an announcement\n"
        "/poll: a new poll (questions typed or as a .txt file, audience, preview, send)\n"
        "/polls: recent polls\n"
        "/results ID: a poll's answers so far, with a chart\n"
        "/close ID: end a poll\n"
        "/cancel: stop writing an announcement or a poll",
    )


async def test_poll_explains_the_format_and_a_line_without_both_languages_is_refused(people: People) -> None:
    rasa = people.rasa
    await rasa.send("/poll")
    explained = tr(
        "lt",
        "<b>New poll.</b> Send the questions in this format, as a message or as a .txt file "
        "(Q: one answer, Q+: several answers allowed; Polish | Lithuanian; questions: at most {questions}; options of a question: {min} to {max}):",
        questions=8,
        min=2,
        max=8,
    )
    assert (await rasa.receive_one()).text == explained + "\n\n" + POLL_EXAMPLE
    await rasa.send("Q: Jak? | Kaip?\n- Dobrze\n- Źle | Blogai")
    assert (await rasa.receive_one()).text == tr(
        "lt", "Line {line}: write the Polish text, then |, then the Lithuanian text.", line=2
    )


async def test_a_poll_file_gives_the_number_of_questions_and_recipients(people: People) -> None:
    audience = await compose(people.rasa)
    assert audience.text == "\n\n".join(
        [
            tr("lt", "The poll has {count} question.", "The poll has {count} questions.", 2, count=2)
            + " "
            + tr("lt", "The preview shows the first one as residents get it."),
            tr(
                "lt",
                "<b>Who should get it?</b>\nRecipients now: <b>{count}</b> (residents who blocked the bot are not counted).",
                count=2,
            ),
        ]
    )


async def test_the_preview_shows_each_language_and_its_buttons_do_not_answer(people: People) -> None:
    rasa = people.rasa
    previews = await preview(rasa)
    assert [p.text for p in previews] == [
        tr("lt", "Preview, {language}:", language="Polski"),
        first_question("pl", "Jak ocenia Pan/Pani godziny pracy urzędu?"),
        tr("lt", "Preview, {language}:", language="Lietuvių"),
        first_question("lt", "Kaip vertinate savivaldybės darbo laiką?"),
        tr("lt", "Preview, {language}:", language="English"),
        first_question("en", "Kaip vertinate savivaldybės darbo laiką?"),
        tr("lt", "This is exactly what residents will see. Send it?"),
    ]
    assert [p.buttons for p in previews[1::2]] == [
        ["○ Dobrze", "○ Źle", "✅ Potwierdzam"],
        ["○ Gerai", "○ Blogai", "✅ Patvirtinti"],
        ["○ Gerai", "○ Blogai", "✅ Confirm"],
    ]
    assert previews[-1].buttons == ["✅ Siųsti gavėjams: 2", "✖️ Atšaukti"]
    await rasa.click("○ Dobrze", previews[1])
    assert (await rasa.answer())["text"] == tr(
        "lt", "This is a preview: residents answer in their chat with the bot."
    )


async def test_sending_a_poll_sends_it_as_an_announcement(sent: Sent) -> None:
    assert sent.sending.text == tr(
        "lt",
        "Poll #{poll} is being sent as announcement #{id}. /results {poll} shows the answers so far; /close {poll} ends the poll.",
        poll=1,
        id=1,
    )


async def test_each_resident_gets_the_first_question_in_their_language(sent: Sent) -> None:
    assert sent.first.text == first_question("pl", "Jak ocenia Pan/Pani godziny pracy urzędu?")
    assert sent.first.buttons == ["○ Dobrze", "○ Źle", "✅ Potwierdzam"]
    assert sent.question.text == first_question("lt", "Kaip vertinate savivaldybės darbo laiką?")
    assert sent.question.buttons == ["○ Gerai", "○ Blogai", "✅ Patvirtinti"]


async def test_a_single_choice_needs_an_answer_before_confirming(sent: Sent) -> None:
    anna, first = sent.people.anna, sent.first
    await anna.click("✅ Potwierdzam", first)
    assert (await anna.answer())["text"] == tr("pl", "Please choose an answer first.")
    await anna.click("○ Źle", first)
    assert (await anna.edited()).buttons == ["○ Dobrze", "● Źle", "✅ Potwierdzam"]
    await anna.click("✅ Potwierdzam", first)
    second = await anna.edited()
    assert second.text == "\n\n".join(
        [
            tr("pl", "📊 <b>Poll</b> · question {number} of {total}", number=2, total=2),
            "Co chciał(a)by Pan/Pani załatwiać przez internet?",
            tr("pl", "Choose one or more answers, then confirm."),
        ]
    )
    assert second.buttons == ["☐ Zaświadczenia", "☐ Zgłoszenia", "☐ Podatki", "✅ Potwierdzam"]


async def test_a_multiple_choice_question_takes_several_answers(sent: Sent) -> None:
    anna = sent.people.anna
    await anna.click("○ Źle", sent.first)
    await anna.edited()
    await anna.click("✅ Potwierdzam", sent.first)
    second = await anna.edited()
    await anna.click("☐ Zaświadczenia", second)
    await anna.edited()
    await anna.click("☐ Podatki", second)
    assert (await anna.edited()).buttons == ["☑ Zaświadczenia", "☐ Zgłoszenia", "☑ Podatki", "✅ Potwierdzam"]


async def test_the_answers_are_summed_up_before_sending(sent: Sent) -> None:
    summary = await answer_poll(sent)
    assert summary.text == ANSWERS + "\n\n" + tr(
        "pl", "Answers are anonymous, so they cannot be changed once sent."
    )
    assert summary.buttons == ["📨 Wyślij odpowiedzi", "↩️ Zacznij od nowa"]


async def test_sent_answers_are_thanked_for_and_cannot_be_given_twice(sent: Sent) -> None:
    anna = sent.people.anna
    await anna.click("📨 Wyślij odpowiedzi", await answer_poll(sent))
    thanked = await anna.edited()
    assert thanked.text == ANSWERS + "\n\n" + tr(
        "pl", "Thank you! Your answers have been recorded anonymously."
    )
    assert thanked.buttons == []
    await anna.forge_button(
        "pv:1:1.1:0:s:0", sent.first
    )  # the buttons are gone; a crafted client tries again
    assert (await anna.answer())["text"] == tr("pl", "You have already answered this poll. Thank you!")


async def test_after_erasing_her_profile_an_old_poll_button_is_refused(sent: Sent, store: Database) -> None:
    """/forget promises no polls, and her receipts go with the profile: the poll sent before is not hers any more."""
    anna = sent.people.anna
    await anna.send("/forget")
    await anna.click("🗑 Usuń mój profil", await anna.receive_one())
    await anna.edited()
    await anna.receive_one()  # the farewell
    await anna.click("○ Źle", sent.first)
    assert (await anna.answer())["text"] == tr("pl", "This poll is not available.")
    await anna.forge_button("pv:1:1.1:0:s:0", sent.first)  # a crafted client sends a whole answer
    assert (await anna.answer())["text"] == tr("pl", "This poll is not available.")
    async with store.read() as session:
        assert (await session.execute(select(PollAnswer))).scalars().all() == []


async def test_the_answers_are_stored_without_who_gave_them(answered: Sent, store: Database) -> None:
    async with store.read() as session:
        answers = (await session.execute(select(PollAnswer))).scalars().all()
    assert [(a.choices, a.locale) for a in answers] == [([[1], [0, 2]], "pl")]
    values = await all_values(store, "poll_answers") + await all_values(store, "survey_receipts")
    assert not [v for v in values if str(answered.people.anna.user["id"]) in v]


async def test_results_with_a_chart_hide_languages_of_fewer_than_five_answers(answered: Sent) -> None:
    rasa = answered.people.rasa
    await rasa.send("/results 1")
    results, chart = await rasa.receive(2)
    assert results.text == results_text("open")  # one answer in Polish: not shown by language
    assert "photo" in chart.raw


async def test_a_closed_poll_takes_no_more_answers(answered: Sent) -> None:
    rasa, jonas = answered.people.rasa, answered.people.jonas
    await rasa.send("/close 1")
    closed, final, chart = await rasa.receive(3)
    assert closed.text == tr("lt", "Poll #{id} is closed: no more answers are taken.", id=1)
    assert final.text == results_text("closed") and "photo" in chart.raw
    await jonas.click("○ Gerai", answered.question)
    assert (await jonas.answer())["text"] == tr("lt", "This poll is closed. Thank you for your interest!")


async def test_polls_lists_each_with_its_state_and_answers(answered: Sent) -> None:
    rasa = answered.people.rasa
    await rasa.send("/close 1")
    await rasa.receive(3)
    await rasa.send("/polls")
    listing = await rasa.receive_one()
    assert listing.text == "\n".join(
        [
            tr("lt", "<b>Recent polls</b>"),
            "#1 · 2026 m. lapkričio 23 d. · "
            + tr("lt", "closed")
            + " · "
            + tr("lt", "{count} answer", "{count} answers", 1, count=1),
            "Kaip vertinate savivaldybės darbo laiką?",
        ]
    )
