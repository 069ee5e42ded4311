"""Anonymous answers against the raw tables, on both databases.

The attacker here holds SECRET_KEY, so they can compute the receipt of every case and of every
resident of a poll, and they read below the ORM: SQLite's rowid, PostgreSQL's ctid and xmin (the
id of the transaction that wrote the row). The receipt and the answer are written in one
transaction, so any order or transaction id an answer keeps from its own write pairs it with its
receipt. These tests answer through the service and show that the best pairing from what is
stored is no better than chance.
"""

import asyncio
import json
import random
from collections import Counter
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

import bot.services.surveys as surveys_module
from bot.services.deadlines import WorkingCalendar
from bot.services.polls import PollText, Question
from bot.services.surveys import SurveyService
from bot.store.db import Database
from bot.store.models import Case, CaseStatus
from tests.conftest import SECRET_KEY

ANSWERS = 20
SEED = 12
# A random permutation of 20 has one fixed point on average and 3 or fewer with 98 % chance;
# its rank correlation with the arrival order is about 0 (standard deviation 0.23).
MAX_RIGHT = 3
MAX_CORRELATION = 0.5
NOON = datetime(2026, 11, 24, 10, tzinfo=UTC)  # one day for every answer, whenever the test runs
USER = 7_770_100_000
POLL_QUESTIONS = [
    Question(
        text=PollText(pl="Godziny?", lt="Valandos?"),
        options=[PollText(pl="Tak", lt="Taip"), PollText(pl="Nie", lt="Ne")],
    ),
    Question(
        text=PollText(pl="Usługi?", lt="Paslaugos?"),
        options=[PollText(pl=s, lt=s) for s in "ABCDE"],
        multiple=True,
    ),
]


@pytest.fixture
async def surveys(database: Database, monkeypatch: pytest.MonkeyPatch) -> SurveyService:
    monkeypatch.setattr(surveys_module, "utcnow", lambda: NOON)
    service = SurveyService(database, WorkingCalendar(ZoneInfo("Europe/Vilnius")), SECRET_KEY)
    service.rng = random.Random(SEED)  # deterministic here; the service uses the system's random source
    return service


def _case(number: int) -> Case:
    # Every case alike (kind, category, eldership, language): only the storage could tell answers apart.
    return Case(
        id=5000 + number,
        number=f"VRS-2026-{5000 + number:06d}",
        year=2026,
        seq=5000 + number,
        resident_id=USER,
        locale="pl",
        kind="complaint",
        category_id="roads",
        eldership_id="rudamina",
        description="Dziura",
        status=CaseStatus.ANSWERED,
        received_at=NOON,
        deadline=NOON.date(),
        closed_at=NOON,
    )


def _choices(number: int) -> list[list[int]]:
    """A poll answer that spells the answerer's number (1 to 31 as a set of options), to check pairings."""
    return [[number % 2], [bit for bit in range(5) if (number + 1) >> bit & 1]]


def _number(choices: list[list[int]]) -> int:
    return sum(1 << bit for bit in choices[1]) - 1


async def _stored(database: Database, table: str, columns: str, where: str = "TRUE") -> list[dict[str, Any]]:
    """Rows in their physical order (SQLite rowid, PostgreSQL ctid), with PostgreSQL's xmin."""
    if database.is_sqlite:
        sql = f"SELECT rowid AS place, NULL AS xid, {columns} FROM {table} WHERE {where} ORDER BY rowid"
    else:
        sql = f"SELECT ctid AS place, xmin::text::bigint AS xid, {columns} FROM {table} WHERE {where} ORDER BY ctid"
    async with database.read() as session:
        return [dict(row) for row in (await session.execute(text(sql))).mappings()]


async def _plain(database: Database, table: str, columns: str, where: str = "TRUE") -> list[dict[str, Any]]:
    """Rows in the order a plain SELECT gives them."""
    async with database.read() as session:
        return [
            dict(row)
            for row in (
                await session.execute(text(f"SELECT {columns} FROM {table} WHERE {where}"))
            ).mappings()
        ]


async def _receipts_in_order(database: Database) -> list[dict[str, Any]]:
    """Receipts in the order they were written: SQLite rowid, PostgreSQL transaction id."""
    rows = await _stored(database, "survey_receipts", "digest")
    return rows if database.is_sqlite else sorted(rows, key=lambda row: row["xid"])


def _rank_correlation(arrival: list[int], stored: list[int]) -> float:
    """Spearman's rho between the order answers came in and the order they are stored in."""
    position = {number: place for place, number in enumerate(stored)}
    n = len(arrival)
    squares = sum((rank - position[number]) ** 2 for rank, number in enumerate(arrival))
    return 1 - 6 * squares / (n * (n * n - 1))


def _assert_no_better_than_chance(
    receipts: list[dict[str, Any]],
    whose: dict[str, int],
    answers: list[dict[str, Any]],
    plain_order: list[int],
    truth: str,
) -> None:
    """The attacker's pairings, each no better than chance; `truth` names the column that says whose an answer is."""
    arrival = [whose[row["digest"]] for row in receipts if row["digest"] in whose]
    stored = [row[truth] for row in answers]
    right = {
        "arrival order = stored order": sum(a == s for a, s in zip(arrival, stored, strict=True)),
        "arrival order = stored order reversed": sum(
            a == s for a, s in zip(arrival, reversed(stored), strict=True)
        ),
        "arrival order = plain SELECT order": sum(a == s for a, s in zip(arrival, plain_order, strict=True)),
    }
    if answers[0]["xid"] is not None:
        # PostgreSQL: an answer whose xmin is that of exactly one receipt is paired with it.
        by_xid = Counter(row["xid"] for row in receipts if row["digest"] in whose)
        receipt_of = {row["xid"]: whose[row["digest"]] for row in receipts if row["digest"] in whose}
        right["same xmin"] = sum(
            by_xid[row["xid"]] == 1 and receipt_of[row["xid"]] == row[truth] for row in answers
        )
    correlation = _rank_correlation(arrival, stored)
    report = f"rank correlation {correlation:.2f}; right of {ANSWERS}: {right}"
    assert abs(correlation) <= MAX_CORRELATION and all(count <= MAX_RIGHT for count in right.values()), report


async def test_satisfaction_answers_cannot_be_paired_with_their_receipts(
    database: Database, surveys: SurveyService
) -> None:
    cases = [_case(number) for number in range(ANSWERS)]
    for number, case in enumerate(cases):
        await surveys.answer_satisfaction(case, 1 + number % 5, "yes", f"answer {number}")

    receipts = await _receipts_in_order(database)
    columns = "score, comment, CAST(substr(comment, 8) AS INTEGER) AS number"
    answers = await _stored(database, "satisfaction_answers", columns)
    plain = [row["number"] for row in await _plain(database, "satisfaction_answers", columns)]
    assert len(receipts) == len(answers) == ANSWERS
    assert all(
        row["score"] == 1 + row["number"] % 5 for row in answers
    )  # nothing lost or mixed up by the rewrite

    whose = {surveys.receipt("case", case.id): number for number, case in enumerate(cases)}
    _assert_no_better_than_chance(receipts, whose, answers, plain, "number")
    if not database.is_sqlite:
        # Every answer of the day carries the last answer's transaction id: xmin names no one else.
        assert {row["xid"] for row in answers} == {receipts[-1]["xid"]}


async def test_poll_answers_cannot_be_paired_with_their_receipts(
    database: Database, surveys: SurveyService
) -> None:
    poll = await surveys.create_poll(POLL_QUESTIONS, {}, (900, "Rasa"))
    other = await surveys.create_poll(POLL_QUESTIONS, {}, (900, "Rasa"))
    for number in range(ANSWERS):
        await surveys.answer_poll(poll.id, USER + number, "pl", _choices(number))
        if number % 4 == 0:  # another poll's answers in between: its group is its own
            await surveys.answer_poll(other.id, USER + number, "lt", _choices(number))

    receipts = await _receipts_in_order(database)
    answers = await _stored(database, "poll_answers", "choices", f"poll_id = {poll.id}")
    plain = await _plain(database, "poll_answers", "choices", f"poll_id = {poll.id}")
    for row in answers + plain:
        row["number"] = _number(
            json.loads(row["choices"]) if isinstance(row["choices"], str) else row["choices"]
        )
    assert sorted(row["number"] for row in answers) == list(range(ANSWERS))

    whose = {surveys.receipt("poll", poll.id, USER + number): number for number in range(ANSWERS)}
    _assert_no_better_than_chance(receipts, whose, answers, [row["number"] for row in plain], "number")
    if not database.is_sqlite:
        assert len({row["xid"] for row in answers}) == 1
        other_answers = await _stored(database, "poll_answers", "choices", f"poll_id = {other.id}")
        assert len({row["xid"] for row in other_answers}) == 1 and len(other_answers) == 5


async def test_a_decline_rewrites_the_day_too(database: Database, surveys: SurveyService) -> None:
    """The answers' shared xmin is the day's last receipt, whether that case answered or declined."""
    for number in range(3):
        await surveys.answer_satisfaction(_case(number), 5, "yes")
    declined = _case(3)
    await surveys.decline_satisfaction(declined)
    answers = await _stored(database, "satisfaction_answers", "score")
    assert len(answers) == 3
    if not database.is_sqlite:
        receipt = (
            await _stored(
                database, "survey_receipts", "digest", f"digest = '{surveys.receipt('case', declined.id)}'"
            )
        )[0]
        assert {row["xid"] for row in answers} == {receipt["xid"]}


async def test_concurrent_answers_are_all_kept(database: Database, surveys: SurveyService) -> None:
    """Rewrites of one day (or poll) never overlap: none puts back a copy that misses another's answer."""
    poll = await surveys.create_poll(POLL_QUESTIONS, {}, (900, "Rasa"))
    await asyncio.gather(
        *(surveys.answer_satisfaction(_case(number), 1 + number % 5, "partly") for number in range(ANSWERS)),
        *(surveys.answer_poll(poll.id, USER + number, "lt", _choices(number)) for number in range(ANSWERS)),
    )
    answers = await _stored(database, "satisfaction_answers", "score")
    assert Counter(row["score"] for row in answers) == Counter(1 + number % 5 for number in range(ANSWERS))
    results = await surveys.results(poll.id)
    assert results is not None
    assert results.respondents == ANSWERS
    assert results.counts[0] == [ANSWERS // 2, ANSWERS // 2]
    if not database.is_sqlite:
        assert len({row["xid"] for row in answers}) == 1
        poll_answers = await _stored(database, "poll_answers", "choices")
        assert len({row["xid"] for row in poll_answers}) == 1
