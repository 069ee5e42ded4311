"""Quality indicators on a crafted set of cases whose answers are known (holidays, a receipt on a
holiday, an extension, a late answer, open and overdue cases), the k<5 rule, and the files:
the chart and the XLSX open and hold the figures."""

import csv
import io
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, cast
from zoneinfo import ZoneInfo

import pytest
from matplotlib.image import imread
from openpyxl import load_workbook

from bot.app import load_i18n
from bot.municipality import load_municipality
from bot.services.deadlines import WorkingCalendar
from bot.services.quality import Period, QualityReport, QualityService
from bot.services.report_output import png, report_chart, report_csv, report_message, report_xlsx
from bot.settings import DEFAULT_MUNICIPALITY_FILE
from bot.store.db import Database
from bot.store.models import Case, CaseEvent, CaseStatus, EventKind, Resident, SatisfactionAnswer

if TYPE_CHECKING:
    from matplotlib.patches import Rectangle

VILNIUS = ZoneInfo("Europe/Vilnius")
DECEMBER = Period(date(2026, 12, 1), date(2026, 12, 31))


def at(day: str, hour: int = 10) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=VILNIUS)


# name: (received, due, extended until, closed, category, eldership)
CASES = {
    # Tue 1 Dec → Tue 8 Dec: 2, 3, 4, 7, 8 December = 5 working days, on time.
    "A": ("2026-12-01", "2026-12-29", None, "2026-12-08", "roads", "rudamina"),
    # Tue 22 Dec → Tue 29 Dec over Christmas (24, 25 Dec are holidays): 23, 28, 29 = 3, on time.
    "B": ("2026-12-22", "2027-01-21", None, "2026-12-29", "roads", "rudamina"),
    # Received on All Souls' Day (2 Nov, a holiday: counted from 3 Nov) → 10 Dec = 27 working days;
    # late for the deadline, on time for the extension.
    "C": ("2026-11-02", "2026-12-01", "2026-12-15", "2026-12-10", "waste", "nemencine"),
    # Mon 16 Nov → Wed 16 Dec = 22 working days, two days late.
    "D": ("2026-11-16", "2026-12-14", None, "2026-12-16", "waste", None),
    # Open, due on the last day of the period: in the backlog, not overdue.
    "E": ("2026-12-03", "2026-12-31", None, None, "roads", "rudamina"),
    # Open and overdue.
    "F": ("2026-11-20", "2026-12-18", None, None, "lighting", "nemencine"),
    # Closed only after the period: in its backlog.
    "G": ("2026-12-28", "2027-01-26", None, "2027-01-05", "roads", None),
    # Before the period altogether.
    "H": ("2026-10-01", "2026-10-29", None, "2026-10-20", "roads", "rudamina"),
}
# How cases came in (the rest through Telegram): E registered by a clerk, G through Open311.
CHANNELS = {"E": "staff", "G": "open311", "H": "staff"}
ANSWERS = [  # day, score, resolved, category, comment
    ("2026-12-02", 5, "yes", "roads", "Bardzo sprawnie"),
    ("2026-12-09", 4, "yes", "roads", None),
    ("2026-12-09", 4, "partly", "roads", None),
    ("2026-12-17", 3, "yes", "roads", None),
    ("2026-12-30", 5, "yes", "roads", "Ačiū"),
    ("2026-12-30", 1, "no", "waste", None),
    ("2026-11-30", 1, "no", "roads", "outside the period"),
]


@pytest.fixture
async def report(database: Database) -> QualityReport:
    calendar = WorkingCalendar(VILNIUS)
    async with database.write() as session:
        session.add(Resident(id=501, locale="pl", display_name="Anna"))
        await session.flush()
        for seq, (name, (received, due, extended, closed, category, eldership)) in enumerate(
            CASES.items(), start=1
        ):
            status = CaseStatus.ANSWERED if closed else CaseStatus.IN_PROGRESS
            session.add(
                Case(
                    id=seq,
                    number=f"VRS-2026-{seq:06d}",
                    year=2026,
                    seq=seq,
                    resident_id=501,
                    locale="pl",
                    kind="request",
                    category_id=category,
                    eldership_id=eldership,
                    description=name,
                    status=status,
                    received_at=at(received),
                    deadline=date.fromisoformat(due),
                    extended_until=date.fromisoformat(extended) if extended else None,
                    closed_at=at(closed, 15) if closed else None,
                    channel=CHANNELS.get(name, "telegram"),
                )
            )
        await session.flush()
        session.add(CaseEvent(case_id=3, at=at("2026-11-27"), kind=EventKind.EXTENDED))  # before the period
        session.add(
            CaseEvent(case_id=3, at=at("2026-12-01", 0) + timedelta(minutes=30), kind=EventKind.EXTENDED)
        )  # 00:30 local: in it
        for day, score, resolved, category, comment in ANSWERS:
            session.add(
                SatisfactionAnswer(
                    answered_on=date.fromisoformat(day),
                    locale="pl",
                    kind="request",
                    category_id=category,
                    score=score,
                    resolved=resolved,
                    comment=comment,
                )
            )
    i18n = load_i18n("pl")
    with i18n.context(), i18n.use_locale("en"):
        return await QualityService(database, calendar, load_municipality(DEFAULT_MUNICIPALITY_FILE)).report(
            DECEMBER, "en"
        )


async def test_case_indicators(report: QualityReport) -> None:
    assert report.received == 4  # A, B, E, G
    assert report.by_channel == {
        "telegram": 2,
        "staff": 1,
        "open311": 1,
    }  # H, registered too, came before the period
    assert report.closed == 4  # A, B, C, D
    assert report.on_time == 3 and report.on_time_share == 75.0  # D was late
    assert sorted(report.handling_days) == [3, 5, 22, 27]
    assert report.median_days == 13.5 and report.mean_days == 14.25
    assert report.extensions == 1
    assert report.overdue == 1  # F
    assert report.backlog == 3  # E, F, G
    assert report.backlog_by_category == [("Roads and transport", 2), ("Street lighting", 1)]
    assert dict(report.backlog_by_eldership) == {"Rudamina": 1, "Nemenčinė": 1, "(no eldership)": 1}


async def test_weekly_trend(report: QualityReport) -> None:
    weeks = {w.start.isoformat(): (w.received, w.closed, w.on_time) for w in report.weeks}
    assert weeks == {
        "2026-11-30": (2, 0, 0),  # A, E received
        "2026-12-07": (0, 2, 2),  # A, C closed
        "2026-12-14": (0, 1, 0),  # D closed late
        "2026-12-21": (1, 0, 0),  # B received
        "2026-12-28": (1, 1, 1),  # G received, B closed
    }


async def test_satisfaction_and_the_k5_rule(report: QualityReport) -> None:
    assert report.answers == 6
    assert report.average_score == pytest.approx(22 / 6)
    assert dict(report.scores) == {5: 2, 4: 2, 3: 1, 1: 1}
    assert report.resolved_share("yes") == pytest.approx(400 / 6)
    assert report.comments == ["Ačiū", "Bardzo sprawnie"]  # sorted, not in the order given
    categories = {g.label: g for g in report.groups if g.dimension == "Category"}
    roads = next(g for label, g in categories.items() if g.answers is not None)
    assert roads.answers == 5 and roads.average == pytest.approx(21 / 5) and roads.resolved_share == 80.0
    hidden = [g for g in categories.values() if g.answers is None]
    assert (
        len(hidden) == 1 and hidden[0].average is None and hidden[0].resolved_share is None
    )  # waste: one answer
    language = [g for g in report.groups if g.dimension == "Language"]
    assert [(g.label, g.answers) for g in language] == [("Polski", 6)]


async def test_message_chart_and_files_hold_the_figures(report: QualityReport) -> None:
    i18n = load_i18n("pl")
    with i18n.context(), i18n.use_locale("en"):
        message = report_message(report)
        figure = report_chart(report)
        image = png(figure)
        workbook = load_workbook(io.BytesIO(report_xlsx(report)))
        rows = list(csv.reader(io.StringIO(report_csv(report).decode("utf-8-sig"))))
    assert "<b>75%</b> (3 of 4)" in message
    assert "Handling time in working days: median <b>13.5</b>, mean <b>14.2</b>" in message
    assert "<b>3.67</b> of 5 from 6 answers" in message
    assert "Received by channel: Telegram 2 · registered by staff 1 · Open311 1" in message

    trend = next(a for a in figure.axes if a.get_title().startswith("Weekly trend"))
    heights = [round(cast("Rectangle", p).get_height()) for p in trend.patches]  # bars: Rectangles
    assert heights == [2, 0, 0, 1, 1] + [0, 2, 1, 0, 1]  # received, then closed, per week
    scores = next(a for a in figure.axes if a.get_title().startswith("Satisfaction"))
    assert [round(cast("Rectangle", p).get_height()) for p in scores.patches] == [1, 0, 1, 2, 2]
    pixels = imread(io.BytesIO(image), format="png")
    assert pixels.shape[:2] == (700, 900)

    assert workbook.sheetnames[:2] == ["Summary", "Weekly trend"]
    summary = {row[0]: row[1] for row in workbook["Summary"].iter_rows(min_row=2, values_only=True)}
    assert summary["Cases received"] == 4 and summary["Share closed within the deadline, %"] == 75.0
    assert (
        summary["Median handling time, working days"] == 13.5
        and summary["Overdue at the end of the period"] == 1
    )
    assert (
        summary["Received in Telegram"] == 2
        and summary["Registered by staff (phone, e-mail, post, front desk)"] == 1
    )
    assert summary["Received through Open311"] == 1
    weekly = list(workbook["Weekly trend"].iter_rows(min_row=2, values_only=True))
    assert weekly[1][:4] == ("2026-12-07", 0, 2, 2)
    groups = list(workbook["Satisfaction by group"].iter_rows(min_row=2, values_only=True))
    assert any(row[2] == "fewer than 5" and row[3] is None for row in groups)
    assert sorted(r[0] for r in workbook["Comments"].iter_rows(min_row=2, values_only=True)) == sorted(
        ["Bardzo sprawnie", "Ačiū"]
    )

    assert ["Cases received", "4"] in rows and ["Summary"] in rows
    assert ["Registered by staff (phone, e-mail, post, front desk)", "1"] in rows and [
        "Received through Open311",
        "1",
    ] in rows
