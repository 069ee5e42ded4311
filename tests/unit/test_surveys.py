"""Anonymous answers, checked on the database itself: no identifier of any kind in the answer
rows, the day only, one answer per case and per person (receipts), and the poll format."""

import asyncio
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import inspect, select, text
from sqlmodel import col

from bot.app import load_i18n
from bot.services.deadlines import WorkingCalendar
from bot.services.polls import PollFormatError, PollText, Question, parse_poll
from bot.services.surveys import AlreadyAnswered, PollClosed, SurveyService
from bot.store.db import Database
from bot.store.models import Case, CaseStatus, PollAnswer, Resident, SatisfactionAnswer
from tests.conftest import SECRET_KEY

RESIDENT = 7_770_001_234
OTHER = 7_770_005_678
QUESTIONS = [
    Question(
        text=PollText(pl="Godziny?", lt="Valandos?"),
        options=[PollText(pl="Tak", lt="Taip"), PollText(pl="Nie", lt="Ne")],
    ),
    Question(
        text=PollText(pl="Usługi?", lt="Paslaugos?"),
        options=[PollText(pl=s, lt=s) for s in "ABC"],
        multiple=True,
    ),
]


@pytest.fixture
async def surveys(database: Database) -> SurveyService:
    return SurveyService(database, WorkingCalendar(ZoneInfo("Europe/Vilnius")), SECRET_KEY)


@pytest.fixture
async def case(database: Database) -> Case:
    async with database.write() as session:
        session.add(Resident(id=RESIDENT, locale="pl", display_name="Anna"))
        await session.flush()
        case = Case(
            id=4242,
            number="VRS-2026-000042",
            year=2026,
            seq=42,
            resident_id=RESIDENT,
            locale="pl",
            kind="complaint",
            category_id="roads",
            eldership_id="rudamina",
            description="Dziura",
            status=CaseStatus.ANSWERED,
            received_at=datetime(2026, 11, 2, 9, tzinfo=UTC),
            deadline=date(2026, 12, 1),
            closed_at=datetime(2026, 11, 20, 12, tzinfo=UTC),
        )
        session.add(case)
    return case


async def _rows(database: Database, table: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    async with database.read() as session:
        columns = await session.run_sync(
            lambda s: [c["name"] for c in inspect(s.connection()).get_columns(table)]
        )
        rows = (await session.execute(text(f"SELECT * FROM {table}"))).all()
    return columns, [tuple(row) for row in rows]


async def test_answers_carry_no_identifier(database: Database, surveys: SurveyService, case: Case) -> None:
    await surveys.answer_satisfaction(case, 4, "yes", "Szybko i uprzejmie")
    poll = await surveys.create_poll(QUESTIONS, {}, (900, "Rasa"))
    await surveys.answer_poll(poll.id, RESIDENT, "pl", [[1], [0, 2]])

    columns, rows = await _rows(database, "satisfaction_answers")
    assert sorted(columns) == sorted(
        ["id", "answered_on", "locale", "kind", "category_id", "eldership_id", "score", "resolved", "comment"]
    )
    poll_columns, poll_rows = await _rows(database, "poll_answers")
    assert sorted(poll_columns) == sorted(["id", "poll_id", "answered_on", "locale", "choices"])
    receipt_columns, receipts = await _rows(database, "survey_receipts")
    assert receipt_columns == ["digest"] and len(receipts) == 2

    identifiers = {str(RESIDENT), str(case.id), case.number, "900", "Anna", "Rasa"}
    for row in rows + poll_rows + receipts:
        for value in row:
            assert str(value) not in identifiers
            assert str(RESIDENT) not in str(value) and case.number not in str(value)
    # The time is the day only, and the row ids are random (not a sequence that orders answers).
    async with database.read() as session:
        answer = (await session.execute(select(SatisfactionAnswer))).scalar_one()
        poll_answer = (await session.execute(select(PollAnswer))).scalar_one()
    assert type(answer.answered_on) is date and type(poll_answer.answered_on) is date
    assert len(answer.id) == 32 and not answer.id.isdigit()
    assert (answer.score, answer.resolved, answer.comment, answer.category_id) == (
        4,
        "yes",
        "Szybko i uprzejmie",
        "roads",
    )
    assert poll_answer.choices == [[1], [0, 2]]
    # Receipts are keyed: without SECRET_KEY they cannot be recomputed from a user or a case.
    other_key = SurveyService(database, surveys.calendar, "another-secret-key-0000")
    assert other_key.receipt("case", case.id) not in {r[0] for r in receipts}


async def test_one_answer_per_case(database: Database, surveys: SurveyService, case: Case) -> None:
    assert await surveys.claim_feedback_question(case.id)
    assert not await surveys.claim_feedback_question(case.id)  # never asked twice, even after a reopening
    results = await asyncio.gather(
        *(surveys.answer_satisfaction(case, 5, "yes") for _ in range(5)), return_exceptions=True
    )
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, AlreadyAnswered) for r in results if r is not None)
    with pytest.raises(AlreadyAnswered):
        await surveys.decline_satisfaction(case)
    assert len((await _rows(database, "satisfaction_answers"))[1]) == 1


async def test_a_declined_question_cannot_be_answered_later(
    database: Database, surveys: SurveyService, case: Case
) -> None:
    await surveys.decline_satisfaction(case)
    assert await surveys.feedback_given(case.id)
    with pytest.raises(AlreadyAnswered):
        await surveys.answer_satisfaction(case, 1, "no", "late")
    assert (await _rows(database, "satisfaction_answers"))[1] == []


async def test_one_answer_per_person_and_poll(database: Database, surveys: SurveyService) -> None:
    poll = await surveys.create_poll(QUESTIONS, {}, (900, "Rasa"))
    await surveys.answer_poll(poll.id, RESIDENT, "pl", [[0], [1]])
    with pytest.raises(AlreadyAnswered):
        await surveys.answer_poll(poll.id, RESIDENT, "lt", [[1], [2]])
    await surveys.answer_poll(poll.id, OTHER, "lt", [[0], [0, 1]])
    second = await surveys.create_poll(QUESTIONS, {}, (900, "Rasa"))
    await surveys.answer_poll(second.id, RESIDENT, "pl", [[1], [2]])  # another poll: another receipt
    results = await surveys.results(poll.id)
    assert results is not None
    assert results.respondents == 2
    assert results.counts == [[2, 0], [1, 2, 0]]
    assert results.by_locale == {"pl": 1, "lt": 1}
    assert await surveys.poll_answered(poll.id, RESIDENT) and not await surveys.poll_answered(poll.id, 12345)


async def test_invalid_or_late_poll_answers_store_nothing(database: Database, surveys: SurveyService) -> None:
    poll = await surveys.create_poll(QUESTIONS, {}, (900, "Rasa"))
    for choices in ([[0, 1], [0]], [[0]], [[2], [0]], [[0], []], [[0], [1, 1]]):
        with pytest.raises(ValueError):
            await surveys.answer_poll(poll.id, RESIDENT, "pl", choices)
    await surveys.close_poll(poll.id)
    with pytest.raises(PollClosed):
        await surveys.answer_poll(poll.id, RESIDENT, "pl", [[0], [1]])
    assert (await _rows(database, "poll_answers"))[1] == []
    assert (await _rows(database, "survey_receipts"))[1] == []


def test_poll_format() -> None:
    source = """# a comment
Q: Jak ocenia Pan/Pani godziny pracy? | Kaip vertinate darbo laiką?
- Dobrze | Gerai
-  Źle | Blogai

Q+: Co przez internet? | Ką internetu?
- Zaświadczenia | Pažymas
- Zgłoszenia | Pranešimus
- Inne | Kita
"""
    questions = parse_poll(source)
    assert [q.multiple for q in questions] == [False, True]
    assert questions[0].text == PollText(
        pl="Jak ocenia Pan/Pani godziny pracy?", lt="Kaip vertinate darbo laiką?"
    )
    assert questions[0].options[1] == PollText(pl="Źle", lt="Blogai")
    assert len(questions[1].options) == 3


@pytest.mark.parametrize(
    ("source", "error"),
    [
        (
            "Q: Jak? | Kaip? - Dobrze | Gerai - Źle | Blogai",
            "Line 1 has 3 × |: put each question and each option on a line of its own",
        ),
        (
            "Q: Jak? | Kaip?\n- Dobrze Gerai\n- Źle | Blogai",
            "Line 2: write the Polish text, then |, then the Lithuanian text.",
        ),
        ("Q: Jak? | Kaip?\n- | Gerai\n- Źle | Blogai", "Line 2: the Polish text before | is missing."),
        ("Q: Jak? |\n- Dobrze | Gerai\n- Źle | Blogai", "Line 1: the Lithuanian text after | is missing."),
    ],
)
def test_a_poll_line_refused_is_told_what_is_wrong_with_it(source: str, error: str) -> None:
    """A poll typed on one line (the page's old one-line box) was told to "write the Polish text,
    then |" although it had three; an empty side was told the same."""
    i18n = load_i18n("pl")
    with i18n.context(), i18n.use_locale("en"), pytest.raises(PollFormatError) as refused:
        parse_poll(source)
    assert str(refused.value).startswith(error)


@pytest.mark.parametrize(
    ("source", "line"),
    [
        ("Q: Pytanie? | Klausimas?\n- Tak\n- Nie | Ne", "Line 2"),
        ("- Tak | Taip", "Line 1"),
        ("Pytanie? | Klausimas?", "Line 1"),
        ("Q: Pytanie? | Klausimas?\n- Tak | Taip", "Question 1"),
        ("# nothing", "no question"),
        ("Q: Pytanie? | Klausimas?\n" + "".join(f"- {i} | {i}\n" for i in range(9)), "Line 10"),
    ],
)
def test_poll_format_errors_name_the_line(source: str, line: str) -> None:
    i18n = load_i18n("pl")
    with i18n.context(), i18n.use_locale("en"), pytest.raises(PollFormatError) as error:
        parse_poll(source)
    assert line in str(error.value)


async def test_only_the_polls_audience_is_invited(database: Database, surveys: SurveyService) -> None:
    from bot.services.broadcaster import Broadcaster, TextVersion

    poll = await surveys.create_poll(QUESTIONS, {}, (900, "Rasa"))
    assert not await surveys.invited(poll, RESIDENT)  # not sent yet
    broadcast = await Broadcaster(database, bot=None).create(  # type: ignore[arg-type]  # create() sends nothing
        {"pl": TextVersion(text="?")}, [(RESIDENT, "pl")]
    )
    await surveys.attach_broadcast(poll.id, broadcast.id)
    reloaded = await surveys.poll(poll.id)
    assert reloaded is not None
    poll = reloaded
    assert await surveys.invited(poll, RESIDENT) and not await surveys.invited(poll, OTHER)


async def test_answer_counts_per_poll(database: Database, surveys: SurveyService) -> None:
    first = await surveys.create_poll(QUESTIONS, {}, (900, "Rasa"))
    second = await surveys.create_poll(QUESTIONS, {}, (900, "Rasa"))
    for user in (RESIDENT, OTHER):
        await surveys.answer_poll(first.id, user, "pl", [[0], [1]])
    assert await surveys.answer_counts([first.id, second.id]) == {first.id: 2}


async def test_forget_takes_the_persons_poll_receipts_and_old_invitations(
    database: Database, case: Case
) -> None:
    """After /forget nothing tells which polls the person answered (the key cannot recompute a
    receipt that is gone); their answers stay counted, others' receipts stay, the case's too; and
    the polls sent before are no longer theirs, even once they come back, so nobody answers twice."""
    from bot.services.broadcaster import Broadcaster, TextVersion
    from bot.store.models import SurveyReceipt, utcnow
    from bot.store.residents import give_consent
    from tests.factories import services

    built = services(database)
    surveys = built.surveys
    async with database.write() as session:
        session.add(
            Resident(
                id=OTHER, locale="lt", display_name="Jonas", consent_at=datetime(2026, 11, 1, tzinfo=UTC)
            )
        )
    polls = [await surveys.create_poll(QUESTIONS, {}, (900, "Rasa")) for _ in range(2)]
    broadcast = await Broadcaster(database, bot=None).create(  # type: ignore[arg-type]  # create() sends nothing
        {"pl": TextVersion(text="?")}, [(RESIDENT, "pl"), (OTHER, "lt")]
    )
    await surveys.attach_broadcast(polls[0].id, broadcast.id)
    for poll in polls:
        for user in (RESIDENT, OTHER):
            await surveys.answer_poll(poll.id, user, "pl", [[0], [1]])
    await surveys.answer_satisfaction(case, 4, "yes")

    await built.rights.forget(RESIDENT, utcnow())

    async with database.read() as session:
        receipts = set((await session.execute(select(col(SurveyReceipt.digest)))).scalars())
    assert receipts == {surveys.receipt("poll", poll.id, OTHER) for poll in polls} | {
        surveys.receipt("case", case.id)
    }
    assert await surveys.answer_counts([poll.id for poll in polls]) == {polls[0].id: 2, polls[1].id: 2}
    first = await surveys.poll(polls[0].id)
    assert (
        first is not None
        and not await surveys.invited(first, RESIDENT)
        and await surveys.invited(first, OTHER)
    )
    await give_consent(database, RESIDENT, "Anna", "pl")  # back again: still not invited to the old poll
    assert not await surveys.invited(first, RESIDENT)
