"""The projects register: the spreadsheet's dry run, apply and export; the daily check of
milestones on a frozen clock; the open data. (Residents following and staff changing a project
in the chat: tests/inprocess/test_projects.py.)"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import date, datetime
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select
from sqlmodel import col

from bot import clock
from bot.app import Services
from bot.open_projects import OpenProjects
from bot.sandbox.run import teams_file
from bot.services.project_import import (
    COLUMNS,
    SAMPLE,
    Problem,
    apply,
    export_rows,
    plan,
    read_table,
    write_table,
)
from bot.services.projects import Actor
from bot.store.db import Database
from bot.store.models import (
    Broadcast,
    Delivery,
    Follow,
    FollowKind,
    Milestone,
    MilestoneStatus,
    OutboxMessage,
    Project,
    ProjectEvent,
    ProjectUpdate,
    Resident,
    utcnow,
)
from tests.conftest import ADMIN_CHAT_ID
from tests.factories import VILNIUS, services

ApiClient = TestClient[web.Request, web.Application]

ROADS, ELDERSHIP, DIRECTOR = -1001000000011, -1001000000012, -1001000000013
ROADS_HEAD = 7001
IMPORTER = Actor(None, "test")


@pytest.fixture
async def wired(database: Database, tmp_path: Path) -> AsyncIterator[Services]:
    municipality = teams_file(
        tmp_path / "municipality.toml",
        front=ADMIN_CHAT_ID,
        roads=ROADS,
        eldership=ELDERSHIP,
        director=DIRECTOR,
        roads_heads=[ROADS_HEAD],
        roads_members=[7002],
        eldership_members=[7003],
        director_heads=[7004],
    )
    wired = services(database, municipality_file=municipality)
    wired.i18n.ctx_locale.set("en")
    with wired.i18n.context():
        yield wired
    await wired.bot.session.close()


def csv_of(*rows: dict[str, str]) -> bytes:
    return write_table([{name: row.get(name, "") for name in COLUMNS} for row in rows], "x.csv")


def project(external_id: str = "P-1", **cells: str) -> dict[str, str]:
    return {
        "record": "project",
        "external_id": external_id,
        "name_pl": "Droga",
        "name_lt": "Kelias",
        "elderships": "avizieniai",
        "team": "roads",
        "status": "under_way",
        "progress": "20",
        "starts_on": "2026-03-01",
        **cells,
    }


def milestone(external_id: str = "P-1", number: str = "1", **cells: str) -> dict[str, str]:
    return {
        "record": "milestone",
        "external_id": external_id,
        "milestone": number,
        "name_pl": "Odbiór",
        "name_lt": "Priėmimas",
        "baseline_due": "2026-06-30",
        **cells,
    }


async def count(database: Database, model: type) -> int:
    async with database.read() as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()


async def test_import_dry_run_lists_errors_by_row_and_column_and_applies_nothing(
    wired: Services, database: Database
) -> None:
    table = read_table(
        csv_of(
            project("P-1", starts_on="2026-13-01"),  # row 2: a bad date
            project("P-2", elderships="avizieniai;atlantis"),  # row 3: an unknown eldership
            project("P-3", team="space"),  # row 4: an unknown team
            project("P-4", name_pl=""),  # row 5: no Polish name
            project("P-5", name_lt=""),  # row 6: no Lithuanian name
            project("P-6"),  # row 7
            project("P-6"),  # row 8: the same code again
            milestone("P-6", baseline_due="2026-01-31"),  # row 9: due before its project starts (2026-03-01)
            milestone(
                "P-6", "2", current_due="2026-09-30"
            ),  # row 10: moved from the baseline without a reason
        ),
        "projects.csv",
    )
    result = await plan(wired.projects, table)
    assert [(p.row, p.column) for p in result.errors] == [
        (2, "starts_on"),
        (3, "elderships"),
        (4, "team"),
        (5, "name_pl"),
        (6, "name_lt"),
        (8, "external_id"),
        (9, "baseline_due"),
        (10, "reason"),
    ]
    assert result.errors[0] == Problem(2, "starts_on", "not a date: “2026-13-01” (YYYY-MM-DD or DD.MM.YYYY)")
    assert result.errors[1].why == "unknown eldership: atlantis"
    assert result.errors[5].why == "the same code as row 7"
    applied = await apply(wired.projects, table, IMPORTER)
    assert applied.errors and (
        await count(database, Project),
        await count(database, Milestone),
        await count(database, ProjectEvent),
    ) == (0, 0, 0)


async def test_a_date_moved_in_the_file_needs_a_new_reason(wired: Services, database: Database) -> None:
    await apply(wired.projects, read_table(csv_of(project(), milestone()), "p.csv"), IMPORTER)
    moved = read_table(csv_of(project(), milestone(current_due="2026-08-31")), "p.csv")
    result = await apply(wired.projects, moved, IMPORTER)
    assert [(p.row, p.column, p.why) for p in result.errors] == [
        (3, "reason", "the due date moves from 2026-06-30 to 2026-08-31: a new reason is needed")
    ]
    async with database.read() as session:
        assert (await session.execute(select(Milestone))).scalar_one().current_due == date(2026, 6, 30)
    result = await apply(
        wired.projects,
        read_table(csv_of(project(), milestone(current_due="2026-08-31", reason="Ulewy")), "p.csv"),
        IMPORTER,
    )
    assert not result.errors and [c.what for c in result.changes] == [
        "P-1 #1: current_due 2026-06-30 → 2026-08-31 (Ulewy)"
    ]


async def test_apply_then_the_same_file_again_changes_nothing(wired: Services, database: Database) -> None:
    table = read_table(SAMPLE.read_bytes(), SAMPLE.name)
    first = await apply(wired.projects, table, IMPORTER)
    assert not first.errors and len(first.changes) == 41  # 12 projects, 29 milestones
    events = await count(database, ProjectEvent)
    assert (await count(database, Project), await count(database, Milestone)) == (12, 29)
    again = await apply(wired.projects, table, IMPORTER)
    assert (again.errors, again.changes) == ([], [])
    assert await count(database, ProjectEvent) == events


@pytest.mark.parametrize("name", ["export.csv", "export.xlsx"])
async def test_export_round_trips(wired: Services, database: Database, name: str) -> None:
    await apply(wired.projects, read_table(SAMPLE.read_bytes(), SAMPLE.name), IMPORTER)
    exported = write_table(await export_rows(wired.projects), name)
    table = read_table(exported, name)

    def key(row: dict[str, str]) -> tuple[str, int]:
        return row["external_id"], int(row["milestone"] or 0)

    sample = sorted(read_table(SAMPLE.read_bytes(), SAMPLE.name), key=key)
    assert [sorted(row.items()) for row in sorted(table, key=key)] == [
        sorted(row.items()) for row in sample
    ]  # the same rows, cell by cell
    result = await plan(wired.projects, table)
    assert (result.errors, result.changes) == ([], [])


async def test_the_daily_check_on_a_frozen_clock_marks_not_met_and_tells_the_team_once(
    wired: Services, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await apply(
        wired.projects,
        read_table(
            csv_of(
                project(),
                milestone(baseline_due="2026-11-20"),
                milestone(number="2", baseline_due="2026-12-31"),
            ),
            "p.csv",
        ),
        IMPORTER,
    )
    async with database.write() as session:
        session.add(Resident(id=501, locale="lt", consent_at=utcnow()))
        session.add(Resident(id=502, locale="pl", consent_at=utcnow()))
        await session.flush()
        session.add(Follow(resident_id=501, kind=FollowKind.PROJECT, target="1"))
        session.add(Follow(resident_id=502, kind=FollowKind.ELDERSHIP_PROJECTS, target="avizieniai"))
    monkeypatch.setattr(
        clock, "_origin", (datetime(2026, 11, 23, 8, 0, tzinfo=VILNIUS), time.monotonic())
    )  # Monday, the day after the due date's weekend
    today = clock.now().astimezone(VILNIUS).date()
    jobs = dict(wired.schedule._jobs_of(today))
    assert await jobs["milestones"]() == 1
    assert await jobs["milestones"]() == 0  # the next run finds it not met: nothing is told twice
    async with database.read() as session:
        first, second = (await session.execute(select(Milestone).order_by(col(Milestone.number)))).scalars()
        posts = (
            (await session.execute(select(OutboxMessage).where(col(OutboxMessage.chat_id) == ROADS)))
            .scalars()
            .all()
        )
        deliveries = (await session.execute(select(Delivery))).scalars().all()
        broadcast = (await session.execute(select(Broadcast))).scalar_one()
    assert (first.status, second.status) == (MilestoneStatus.NOT_MET, MilestoneStatus.SCHEDULED)
    assert len(posts) == 1
    assert f'<a href="tg://user?id={ROADS_HEAD}">vadovas</a>' in posts[0].payload["text"]
    assert "„Priėmimas“" in posts[0].payload["text"] or "“Priėmimas”" in posts[0].payload["text"]
    assert sorted((d.chat_id, d.locale) for d in deliveries) == [(501, "lt"), (502, "pl")]
    assert broadcast.content["pl"]["text"].startswith("❌ <b>Droga</b>")
    assert broadcast.content["lt"]["text"].startswith("❌ <b>Kelias</b>")


@pytest.fixture
async def web_api(wired: Services) -> AsyncIterator[ApiClient]:
    app = web.Application()
    OpenProjects.route(app.router, OpenProjects(wired.projects, wired.i18n, wired.config).handle)
    async with TestClient(TestServer(app)) as client:
        yield client


async def test_projects_json_and_csv_hold_the_milestones_and_no_personal_data(
    wired: Services, database: Database, web_api: ApiClient
) -> None:
    await apply(wired.projects, read_table(SAMPLE.read_bytes(), SAMPLE.name), Actor(4242, "Jan Kowalski"))
    async with database.write() as session:
        street_id = (
            await session.execute(select(col(Project.id)).where(col(Project.external_id) == "VRS-2025-014"))
        ).scalar_one()
        session.add(
            ProjectUpdate(
                project_id=street_id,
                text_pl="Asfalt położony.",
                text_lt="Asfaltas paklotas.",
                author_id=4243,
                author_name="Ona Petraitė",
            )
        )
    response = await web_api.get("/projects.json")
    assert response.status == 200
    body = await response.text()
    document = json.loads(body)
    street = next(p for p in document["projects"] if p["external_id"] == "VRS-2025-014")
    assert [m["current_due"] for m in street["milestones"]] == [
        "2025-06-30",
        "2025-12-15",
        "2026-09-30",
        "2027-03-31",
    ]
    assert street["milestones"][3]["slip_days"] == 151 and street["milestones"][3]["reason"].startswith(
        "Oświetlenie LED"
    )
    assert street["updates"][0]["text"] == {"pl": "Asfalt położony.", "lt": "Asfaltas paklotas."}
    for personal in ("Jan Kowalski", "4242", "Ona Petraitė", "4243", "actor", "author"):
        assert personal not in body
    response = await web_api.get("/projects.csv")
    assert response.headers["Content-Type"].startswith("text/csv")
    csv_body = await response.text()
    rows = read_table(csv_body.encode(), "projects.csv")
    assert sum(1 for r in rows if r["record"] == "milestone") == 29
    assert "Jan Kowalski" not in csv_body and "Ona Petraitė" not in csv_body


async def test_the_projects_page_in_each_language(wired: Services, web_api: ApiClient) -> None:
    await apply(wired.projects, read_table(SAMPLE.read_bytes(), SAMPLE.name), IMPORTER)
    for lang, name, slip in (
        (
            "pl",
            "Przebudowa ulicy Szkolnej w Awiżeniach",
            "planowany na 31 października 2026, obecnie 31 marca 2027 (+5 miesięcy)",
        ),
        (
            "lt",
            "Mokyklos gatvės rekonstrukcija Avižieniuose",
            "planuota 2026 m. spalio 31 d., dabar 2027 m. kovo 31 d. (+5 mėnesiai)",
        ),
        (
            "en",
            "Reconstruction of Mokyklos Street in Avižieniai",
            "planned for October 31, 2026, now March 31, 2027 (+5 months)",
        ),
    ):
        page = await (await web_api.get("/projects", params={"lang": lang})).text()
        assert f'<html lang="{lang}">' in page and name in page and slip in page
        assert "<script" not in page and 'name="viewport"' in page


async def test_the_quality_report_has_a_projects_sheet(wired: Services) -> None:
    from openpyxl import load_workbook

    from bot.services.quality import Period
    from bot.services.report_output import report_xlsx

    await apply(wired.projects, read_table(SAMPLE.read_bytes(), SAMPLE.name), IMPORTER)
    with wired.i18n.use_locale("en"):
        report = await wired.quality.report(Period(date(2026, 11, 1), date(2026, 11, 22)), "en")
        workbook = load_workbook(__import__("io").BytesIO(report_xlsx(report)))
    rows = list(workbook["Projects"].iter_rows(values_only=True))
    assert rows[0][:3] == ("Team", "Project code", "Project")
    assert rows[1][1:] == (
        "VRS-2025-040",
        "Renovation of the Mickūnai culture house",
        "suspended",
        35,
        2,
        1,
        1,
        "no",
        153,
        "Prace wstrzymane: konieczne badania konserwatorskie / Darbai sustabdyti: reikalingi paveldo tyrimai",
    )
    assert rows[-1][8:10] == ("yes", 0)  # on schedule: last
    by_team = {row[0]: row[1:] for row in workbook["Projects by team"].iter_rows(min_row=2, values_only=True)}
    assert by_team["Roads department"] == (
        4,
        3,
        1,
        151,
        151,
    )  # the street +151 days; the cycle path, the lighting and the pavement on time


async def test_mydata_lists_what_a_resident_follows_and_forget_removes_it(
    wired: Services, database: Database
) -> None:
    await apply(wired.projects, read_table(csv_of(project()), "p.csv"), IMPORTER)
    async with database.write() as session:
        session.add(Resident(id=601, locale="pl", consent_at=utcnow(), eldership_id="avizieniai"))
    assert await wired.projects.toggle_follow(601, FollowKind.PROJECT, "1") is True
    assert await wired.projects.toggle_follow(601, FollowKind.ELDERSHIP_PROJECTS, "avizieniai") is True
    data = await wired.rights.export(601, utcnow())
    follows = data["subscriptions"]["follows"]
    assert [(f["kind"], f["target"]) for f in follows] == [
        ("project", "1"),
        ("eldership_projects", "avizieniai"),
    ]
    assert follows[0]["project"] == {"code": "P-1", "pl": "Droga", "lt": "Kelias"}
    with wired.i18n.use_locale("pl"):
        assert "Obserwowane: Droga, projekty: Awiżenie\n" in wired.rights.readable(data)
    await wired.rights.forget(601, utcnow())
    assert await wired.projects.follows(601) == set()
    assert await count(database, Follow) == 0
