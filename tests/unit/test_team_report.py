"""The report's figures per team on a crafted set of referrals: received, passed on (and how long
cases waited before), closed, closed on time, median handling time; in the message and the CSV."""

from datetime import date, datetime

from bot.app import load_i18n
from bot.municipality import LocalizedName, Routing, Team, load_municipality
from bot.services.deadlines import WorkingCalendar
from bot.services.quality import Period, QualityService
from bot.services.report_output import report_csv, report_message
from bot.settings import DEFAULT_MUNICIPALITY_FILE
from bot.store.db import Database
from bot.store.models import Case, CaseEvent, CaseStatus, EventKind, Resident
from tests.factories import VILNIUS

DECEMBER = Period(date(2026, 12, 1), date(2026, 12, 31))
TEAMS = [
    Team(
        id="front", name=LocalizedName(pl="Biuro obsługi", lt="Priimamasis", en="Front office"), chat_id=-1001
    ),
    Team(
        id="roads",
        name=LocalizedName(pl="Wydział dróg", lt="Kelių skyrius", en="Roads department"),
        chat_id=-1002,
    ),
]


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(hour=10, tzinfo=VILNIUS)


# number: (received, deadline, closed, team at the end, [(day, from, to), ...] with from None for the opening)
# number: received, deadline, closed, team, and its moves (day, from, to)
CASES: dict[int, tuple[str, str, str | None, str, list[tuple[str, str | None, str]]]] = {
    # Opened at the front office on Tue 1 Dec, passed to roads on Thu 3 Dec (2 working days there),
    # closed by roads on Tue 8 Dec: 5 working days, on time.
    1: (
        "2026-12-01",
        "2026-12-29",
        "2026-12-08",
        "roads",
        [("2026-12-01", None, "front"), ("2026-12-03", "front", "roads")],
    ),
    # Opened at roads on 2 Dec, passed to the front office the same day (0), back on 4 Dec (2): open.
    2: (
        "2026-12-02",
        "2026-12-30",
        None,
        "roads",
        [("2026-12-02", None, "roads"), ("2026-12-02", "roads", "front"), ("2026-12-04", "front", "roads")],
    ),
    # Opened and closed at the front office, 7 → 21 Dec: 10 working days, late (due 15 Dec).
    3: ("2026-12-07", "2026-12-15", "2026-12-21", "front", [("2026-12-07", None, "front")]),
    # Opened at roads on Fri 20 Nov (before the period), passed on on 1 Dec after 7 working days.
    4: (
        "2026-11-20",
        "2026-12-18",
        None,
        "front",
        [("2026-11-20", None, "roads"), ("2026-12-01", "roads", "front")],
    ),
}


async def test_figures_per_team(database: Database) -> None:
    async with database.write() as session:
        session.add(Resident(id=501, locale="lt", display_name="Jonas"))
        await session.flush()
        for number, (received, deadline, closed, team, moves) in CASES.items():
            session.add(
                Case(
                    id=number,
                    number=f"VRS-2026-{number:06d}",
                    year=2026,
                    seq=number,
                    resident_id=501,
                    locale="lt",
                    kind="request",
                    category_id="roads",
                    description="x",
                    status=CaseStatus.ANSWERED if closed else CaseStatus.NEW,
                    received_at=at(received),
                    deadline=date.fromisoformat(deadline),
                    closed_at=at(closed) if closed else None,
                    team_id=team,
                )
            )
            await session.flush()
            for day, source, to in moves:
                kind, data = (
                    (EventKind.CREATED, {"team": to})
                    if source is None
                    else (EventKind.PASSED, {"from": source, "to": to})
                )
                session.add(CaseEvent(case_id=number, at=at(day), kind=kind, data=data))
    municipality = load_municipality(DEFAULT_MUNICIPALITY_FILE).model_copy(
        update={"teams": TEAMS, "routing": Routing(default_team="front")}
    )

    i18n = load_i18n("lt")
    with i18n.context(), i18n.use_locale("en"):
        report = await QualityService(database, WorkingCalendar(VILNIUS), municipality).report(DECEMBER, "en")
        message = report_message(report)
        csv = report_csv(report).decode("utf-8-sig")

    figures = {
        t.team: (t.received, t.passed_on, t.waited_days, t.closed, t.on_time, t.handling_days)
        for t in report.teams
    }
    assert figures == {
        "Front office": (
            4,
            2,
            [2, 2],
            1,
            0,
            [10],
        ),  # received 1, 3 and the passes of 2 and 4; passed on 1 and 2
        "Roads department": (
            3,
            2,
            [0, 7],
            1,
            1,
            [5],
        ),  # received 2, the passes of 1 and 2 back; passed on 2 and 4
    }
    assert (
        "Front office: received 4 · passed on 2 (median wait 2) · closed 1, 0 on time · median handling 10"
        in message
    )
    assert (
        "Roads department: received 3 · passed on 2 (median wait 3.5) · closed 1, 1 on time · median handling 5"
        in message
    )
    assert "Roads department,3,2,1,1,5,3.5,1" in csv  # the last: overdue on 31 Dec (case 2, due 30 Dec)
    assert {t.team_id: t.overdue for t in report.teams} == {
        "front": 1,
        "roads": 1,
    }  # case 4 is the front office's now
