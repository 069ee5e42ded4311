"""Visit surveys apart from the chat (bot.services.visits): places in the municipality file and
their errors, where quality matters go, the per-place report on crafted answers with the 5-answer
rule (message, chart, XLSX), the public page, and the answers' unlinkability from their receipts
against the raw tables (as tests/unit/test_survey_anonymity.py does for the other surveys)."""

from __future__ import annotations

import io
import random
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, cast
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

import bot.services.surveys as surveys_module
from bot.app import load_i18n
from bot.municipality import Municipality, load_municipality
from bot.services.deadlines import WorkingCalendar
from bot.services.quality import Period, QualityReport, QualityService
from bot.services.report_output import report_message, report_xlsx, service_quality_page, visit_chart
from bot.services.surveys import AlreadyAnswered, SurveyService, VisitAnswers
from bot.services.teams import TeamDirectory
from bot.services.texts import page_locale
from bot.settings import DEFAULT_MUNICIPALITY_FILE, ConfigError
from bot.store.db import Database
from bot.store.models import VisitAnswer
from tests.conftest import SECRET_KEY
from tests.unit.test_config import TEAMS as CONFIG_TEAMS
from tests.unit.test_survey_anonymity import ANSWERS, _assert_no_better_than_chance, _plain, _stored

if TYPE_CHECKING:
    from matplotlib.patches import Rectangle

VILNIUS = ZoneInfo("Europe/Vilnius")
DECEMBER = Period(date(2026, 12, 1), date(2026, 12, 31))
TEAMS = (
    CONFIG_TEAMS
    + """
[[teams]]
id = "quality"
chat_id = -1003
quality = true
name = { pl = "Jakość", lt = "Kokybė" }

[routing]
default_team = "front"
"""
)


def municipality_with(tmp_path: Path, extra: str) -> Municipality:
    path = tmp_path / "municipality.toml"
    path.write_text(DEFAULT_MUNICIPALITY_FILE.read_text(encoding="utf-8") + extra, encoding="utf-8")
    return load_municipality(path)


# --- the municipality file ---


def test_the_shipped_file_lists_desks_and_eldership_offices() -> None:
    municipality = load_municipality(DEFAULT_MUNICIPALITY_FILE)
    places = {place.id: place for place in municipality.places}
    assert {"front-desk-1", "rudamina-office", "maisiagala-office", "nemencine-town-office"} <= places.keys()
    assert (
        places["rudamina-office"].eldership == "rudamina"
        and places["rudamina-office"].name.pl == "Starostwo Rudomino"
    )
    assert all(len("v_" + place_id) <= 64 for place_id in places)


@pytest.mark.parametrize(
    ("place", "error"),
    [
        ('id = "front-desk-1"\nname = { pl = "A", lt = "B" }', "places[7] (front-desk-1): duplicate id"),
        ('id = "x"\nteam = "roads"\nname = { pl = "A", lt = "B" }', "places[7] (x): unknown team roads"),
        (
            'id = "x"\neldership = "atlantis"\nname = { pl = "A", lt = "B" }',
            "places[7] (x): unknown eldership atlantis",
        ),
        ('id = "Desk_1"\nname = { pl = "A", lt = "B" }', "'Desk_1': the id must be 1-40 of a-z 0-9 -"),
        (f'id = "{"a" * 41}"\nname = {{ pl = "A", lt = "B" }}', "the id must be 1-40 of a-z 0-9 -"),
    ],
)
def test_a_wrong_place_stops_start_up_naming_it(tmp_path: Path, place: str, error: str) -> None:
    with pytest.raises(ConfigError, match="MUNICIPALITY_FILE") as raised:
        municipality_with(tmp_path, f"\n[[places]]\n{place}\n")
    assert error in str(raised.value)


def test_quality_matters_go_to_the_marked_team_else_the_default_one(tmp_path: Path) -> None:
    marked = municipality_with(tmp_path, TEAMS)
    assert TeamDirectory(marked, bot=None, comms_chat_id=-9).quality_team.id == "quality"  # type: ignore[arg-type]
    unmarked = municipality_with(tmp_path, TEAMS.replace("quality = true", ""))
    assert TeamDirectory(unmarked, bot=None, comms_chat_id=-9).quality_team.id == "front"  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="quality = true on front, quality; mark one team only"):
        municipality_with(tmp_path, TEAMS.replace('id = "front"\n', 'id = "front"\nquality = true\n'))


# --- the report per place ---

# place: (score, waited, settled, courtesy, proposal) per answer
CRAFTED = {
    "front-desk-1": [
        (5, "lt5", "yes", 5, "Więcej krzeseł"),
        (4, "lt5", "yes", 4, None),
        (4, "5-15", "partly", None, None),
        (3, "15-30", "no", 3, None),
        (2, "gt30", None, 2, "=SUM(A1)"),
        (5, None, "yes", 5, None),
    ],
    "rudamina-office": [
        (1, "gt30", "no", 1, None),
        (2, "gt30", "no", 2, "Dłuższe godziny"),
        (5, "lt5", "yes", 5, None),
        (4, None, None, None, None),
    ],
}


@pytest.fixture
async def report(database: Database) -> QualityReport:
    async with database.write() as session:
        for place, rows in CRAFTED.items():
            for score, waited, settled, courtesy, proposal in rows:
                session.add(
                    VisitAnswer(
                        place_id=place,
                        answered_on=date(2026, 12, 9),
                        score=score,
                        waited=waited,
                        settled=settled,
                        courtesy=courtesy,
                        proposal=proposal,
                    )
                )
        session.add(
            VisitAnswer(place_id="front-desk-1", answered_on=date(2026, 11, 30), score=1)
        )  # before the period
        session.add(
            VisitAnswer(place_id="closed-desk", answered_on=date(2026, 12, 2), score=3)
        )  # a place removed from the file since
    i18n = load_i18n("pl")
    with i18n.context(), i18n.use_locale("en"):
        return await QualityService(
            database, WorkingCalendar(VILNIUS), load_municipality(DEFAULT_MUNICIPALITY_FILE)
        ).report(DECEMBER, "en")


async def test_the_report_gives_each_place_its_figures_from_five_answers(report: QualityReport) -> None:
    places = {place.place_id: place for place in report.places}
    assert list(places)[:6] == [
        "front-desk-1",
        "front-desk-2",
        "front-desk-3",
        "nemencine-town-office",
        "maisiagala-office",
        "rudamina-office",
    ]
    desk = places["front-desk-1"]
    assert (desk.name, desk.answers, desk.shown) == ("Front office, desk 1", 6, True)
    assert desk.average == pytest.approx(23 / 6)
    assert desk.average_courtesy == pytest.approx(19 / 5)
    assert [desk.waited_share(w) for w in ("lt5", "5-15", "15-30", "gt30")] == [
        40.0,
        20.0,
        20.0,
        20.0,
    ]  # of the 5 who said
    assert desk.settled_share("yes") == 60.0 and desk.settled_share("no") == 20.0
    rudamina = places["rudamina-office"]
    assert (
        rudamina.answers,
        rudamina.shown,
        rudamina.average,
        rudamina.waited_share("gt30"),
        rudamina.settled_share(),
    ) == (4, False, None, None, None)
    assert places["closed-desk"].answers == 1 and not places["closed-desk"].shown
    assert report.proposals == [
        ("Front office, desk 1", "=SUM(A1)"),
        ("Front office, desk 1", "Więcej krzeseł"),
        ("Rudamina Eldership", "Dłuższe godziny"),
    ]


async def test_below_five_answers_to_a_question_its_figure_is_hidden(database: Database) -> None:
    async with database.write() as session:
        for courtesy in (5, 4, 3, 2, None):
            session.add(
                VisitAnswer(
                    place_id="front-desk-2",
                    answered_on=date(2026, 12, 3),
                    score=4,
                    waited="lt5",
                    courtesy=courtesy,
                )
            )
    figures, _ = await QualityService(
        database, WorkingCalendar(VILNIUS), load_municipality(DEFAULT_MUNICIPALITY_FILE)
    ).visits(DECEMBER, "pl")
    desk = next(place for place in figures if place.place_id == "front-desk-2")
    assert desk.shown and desk.average == 4.0 and desk.waited_share("lt5") == 100.0
    assert (
        desk.average_courtesy is None and desk.settled_share() is None
    )  # 4 said how courteous, nobody whether settled


async def test_the_message_chart_and_xlsx_hold_the_places(report: QualityReport) -> None:
    i18n = load_i18n("pl")
    with i18n.context(), i18n.use_locale("en"):
        message = report_message(report)
        figure = visit_chart(report)
        workbook = load_workbook(io.BytesIO(report_xlsx(report)))
    assert (
        "Front office, desk 1: answers: 6, average <b>3.83</b> of 5; waited: under 5 min 40% · 5–15 min 20% · 15–30 min 20% · over 30 min 20%; settled: 60%"
        in message
    )
    assert "Rudamina Eldership: fewer than 5 answers" in message
    assert "Visitors' proposals: 3 (in the XLSX file)" in message
    assert figure is not None
    scores = figure.axes[0]
    assert [label.get_text() for label in scores.get_yticklabels()] == [
        "Front office, desk 1"
    ]  # the only place with 5 answers
    assert [round(cast("Rectangle", bar).get_width(), 2) for bar in scores.patches] == [3.83]
    waited = figure.axes[1]
    assert [round(cast("Rectangle", bar).get_width()) for bar in waited.patches] == [40, 20, 20, 20]
    sheet = {row[0]: row for row in workbook["Visit surveys by place"].iter_rows(min_row=2, values_only=True)}
    assert sheet["Front office, desk 1"][1:4] == (6, 3.83, 3.8)
    assert sheet["Front office, desk 1"][4:] == (40.0, 20.0, 20.0, 20.0, 60.0, 20.0, 20.0)
    assert sheet["Rudamina Eldership"][1:] == ("fewer than 5",) + (None,) * 9
    proposals = list(workbook["Visitors' proposals"].iter_rows(min_row=2, values_only=True))
    assert proposals[0] == ("Front office, desk 1", "=SUM(A1)")  # kept as text, not a formula
    assert workbook["Visitors' proposals"]["B2"].data_type == "s"


async def test_no_chart_when_no_place_has_five_answers(database: Database) -> None:
    i18n = load_i18n("pl")
    with i18n.context(), i18n.use_locale("en"):
        empty = await QualityService(
            database, WorkingCalendar(VILNIUS), load_municipality(DEFAULT_MUNICIPALITY_FILE)
        ).report(DECEMBER, "en")
        assert visit_chart(empty) is None
        assert "Visit surveys: no answers in this period." in report_message(empty)


# --- the public page ---


async def test_the_public_page_shows_places_in_three_languages_with_the_same_threshold(
    report: QualityReport, database: Database
) -> None:
    i18n = load_i18n("pl")
    service = QualityService(database, WorkingCalendar(VILNIUS), load_municipality(DEFAULT_MUNICIPALITY_FILE))
    for locale, desk, fewer, average in (
        ("pl", "Biuro Obsługi Mieszkańców, stanowisko 1", "Starostwo Rudomino", "3,83"),
        ("lt", "Gyventojų aptarnavimo skyrius, 1 langelis", "Rudaminos seniūnija", "3,83"),
        ("en", "Front office, desk 1", "Rudamina Eldership", "3.83"),
    ):
        with i18n.context(), i18n.use_locale(locale):
            places, _proposals = await service.visits(DECEMBER, locale)
            page = service_quality_page(places, "Samorząd", DECEMBER.start, DECEMBER.end, locale)
        assert page.startswith(f'<!doctype html>\n<html lang="{locale}">')
        assert "<script" not in page and 'name="viewport"' in page
        assert f"<h2>{desk}</h2><table>" in page and f"<td>{average}</td>" in page and "<td>6</td>" in page
        assert f"<h2>{fewer}</h2><p>" in page  # fewer than 5 answers: no table
        assert "Dłuższe" not in page and "krzeseł" not in page  # proposals are not published


@pytest.mark.parametrize(
    ("asked", "header", "expected"),
    [
        ("lt", "pl", "lt"),
        (None, "de-DE,lt;q=0.8,pl;q=0.9", "pl"),
        (None, "en-GB, pl;q=0.5", "en"),
        ("xx", "", "pl"),
        (None, "lt;q=zz,fr", "pl"),
    ],
)
def test_the_public_page_speaks_the_asked_or_the_browsers_language(
    asked: str | None, header: str, expected: str
) -> None:
    assert page_locale(asked, header, "pl") == expected


# --- unlinkability on the raw tables ---


@pytest.fixture
async def surveys(database: Database, monkeypatch: pytest.MonkeyPatch) -> SurveyService:
    monkeypatch.setattr(surveys_module, "utcnow", lambda: datetime(2026, 11, 24, 10, tzinfo=UTC))
    service = SurveyService(database, WorkingCalendar(VILNIUS), SECRET_KEY)
    service.rng = random.Random(12)
    return service


async def test_visit_answers_cannot_be_paired_with_their_receipts(
    database: Database, surveys: SurveyService
) -> None:
    users = [7_770_200_000 + number for number in range(ANSWERS)]
    for number, user in enumerate(users):  # the proposal says whose an answer is: the attacker's ground truth
        await surveys.answer_visit("front-desk-1", user, VisitAnswers(score=4, proposal=str(number)))
    with pytest.raises(AlreadyAnswered):
        await surveys.answer_visit("front-desk-1", users[0], VisitAnswers(score=1))
    whose = {
        surveys._visit_receipt("front-desk-1", user, date(2026, 11, 24)): number
        for number, user in enumerate(users)
    }
    receipts = await _stored(database, "visit_receipts", "digest")
    receipts = receipts if database.is_sqlite else sorted(receipts, key=lambda row: row["xid"])
    answers = [
        {**row, "number": int(row["proposal"])}
        for row in await _stored(database, "visit_answers", "proposal")
    ]
    plain = [int(row["proposal"]) for row in await _plain(database, "visit_answers", "proposal")]
    _assert_no_better_than_chance(receipts, whose, answers, plain, "number")
