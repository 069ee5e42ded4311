"""The quality loop on a frozen clock, over the shipped objectives (on time ≥ 95 % a month, median ≤ 10
working days, satisfaction ≥ 4.2 a quarter, overdue at the month's end ≤ 5, project milestones on
time ≥ 80 % a quarter) and the zero-config
desk as the quality team: a month whose on-time share fails opens a nonconformity (once); actions
are assigned and done; the effectiveness check recomputes the figure and proposes "not effective",
and the manager reopens; bad input changes nothing; the management review's figures are /report's."""

from __future__ import annotations

import html
import io
import re
from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlmodel import col

from bot.municipality import load_municipality
from bot.services.audits import draw
from bot.services.case_commands import Clerk
from bot.services.nonconformities import NcError
from bot.services.objectives import ObjectiveMeter, latest_full, period_key
from bot.services.quality import Period, tables
from bot.settings import DEFAULT_MUNICIPALITY_FILE, ConfigError
from bot.store.db import Database
from bot.store.models import (
    Case,
    CaseEvent,
    CaseStatus,
    CorrectiveAction,
    EventKind,
    Milestone,
    MilestoneStatus,
    NcEvent,
    NcSource,
    NcStatus,
    Nonconformity,
    ObjectiveReview,
    OutboxMessage,
    Project,
    Resident,
    SatisfactionAnswer,
)
from tests.catalog import tr, tr_start
from tests.conftest import ADMIN_CHAT_ID
from tests.factories import VILNIUS, services

RIMAS = Clerk(9001, "Rimas")
ONA = Clerk(9002, "Ona")
# number: (received, deadline, closed or None)
CASES = {
    1: ("2026-10-05", "2026-11-02", "2026-10-20"),  # October, on time
    2: ("2026-10-12", "2026-11-09", "2026-11-03"),  # November, on time
    3: ("2026-10-14", "2026-11-11", "2026-11-16"),  # November, late
    4: ("2026-10-19", "2026-11-16", "2026-11-23"),  # November, late
    5: ("2026-11-02", "2026-12-01", "2026-12-09"),  # December, late (the check finds it still failing)
    6: ("2026-11-20", "2026-12-18", None),  # open: overdue at the end of December
}


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(hour=10, tzinfo=VILNIUS)


@pytest.fixture
async def loop(database: Database, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[object]:
    monkeypatch.setenv("PETENT_FROZEN_TIME", "2026-12-01T09:00:00+02:00")
    monkeypatch.setattr("bot.clock._origin", None)
    async with database.write() as session:
        session.add(Resident(id=501, locale="lt", display_name="Jonas"))
        await session.flush()
        for number, (received, deadline, closed) in CASES.items():
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
                    team_id="desk",
                )
            )
            await session.flush()
            session.add(
                CaseEvent(case_id=number, at=at(received), kind=EventKind.CREATED, data={"team": "desk"})
            )
        for day, score in (("2026-11-10", 5), ("2026-11-12", 3), ("2026-12-02", 4)):
            session.add(
                SatisfactionAnswer(
                    answered_on=date.fromisoformat(day),
                    locale="lt",
                    kind="request",
                    category_id="roads",
                    score=score,
                    resolved="yes",
                )
            )
    built = services(database)
    yield built
    await built.bot.session.close()


def plain(text: str) -> str:
    """A message as the reader sees it (as tests.catalog.tr gives the expected texts)."""
    return html.unescape(re.sub(r"<[^>]+>", "", text))


async def _count(database: Database, model: type) -> int:
    async with database.read() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def _posts(database: Database) -> list[OutboxMessage]:
    async with database.read() as session:
        return list((await session.execute(select(OutboxMessage).order_by(col(OutboxMessage.id)))).scalars())


async def _card(loop, database: Database, nc_id: int) -> dict[str, Any]:
    async with database.read() as session:
        text, keyboard = await loop.nonconformities.rendered_card(
            session, await session.get(Nonconformity, nc_id)
        )
    return {
        "text": text,
        "keyboard": keyboard.model_dump(mode="json", exclude_none=True) if keyboard else None,
    }


async def test_a_month_with_a_failed_objective_opens_a_nonconformity(loop, database: Database) -> None:
    new = await loop.nonconformities.review_objectives(date(2026, 12, 1))

    figures = {m.objective.id: (m.key, m.figure, m.met) for m in new}
    assert figures["on_time"] == (
        "2026-11",
        pytest.approx(100 / 3),
        False,
    )  # 1 of 3 closed in November on time
    assert figures["overdue"] == ("2026-11", 0.0, True)
    assert figures["satisfaction"] == (
        "2026-Q3",
        None,
        None,
    )  # the last full quarter had no answers: no data, no nonconformity
    async with database.read() as session:
        ncs = list((await session.execute(select(Nonconformity))).scalars())
        reviews = {
            (r.objective_id, r.period) for r in (await session.execute(select(ObjectiveReview))).scalars()
        }
    assert reviews == {
        ("on_time", "2026-11"),
        ("handling_time", "2026-11"),
        ("overdue", "2026-11"),
        ("satisfaction", "2026-Q3"),
        ("milestones", "2026-Q3"),
    }
    assert [(nc.source, nc.objective_id, nc.period, nc.team_id, nc.status) for nc in ncs] == [
        (NcSource.OBJECTIVE, "on_time", "2026-11", "desk", NcStatus.OPEN),
        (
            NcSource.OBJECTIVE,
            "handling_time",
            "2026-11",
            "desk",
            NcStatus.OPEN,
        ),  # cases of October closed in November: 16+ working days
    ]
    assert ncs[0].figure == pytest.approx(100 / 3)
    posts = await _posts(database)
    review = plain(posts[0].payload["text"])
    assert posts[0].chat_id == ADMIN_CHAT_ID  # the quality group: the default team's, no team is marked
    assert review.startswith(
        tr("lt", "📏 <b>Review of quality objectives</b>: {met} of {count} met", met=1, count=5)
    )
    assert "❌ Laiku išnagrinėti kreipimaisi (visa savivaldybė), 2026-11: 33,33%, tikslas ≥ 95%" in review
    assert "anksčiau: 2026-09: nėra duomenų · 2026-10: 100%" in review  # the previous periods beside it
    assert (posts[1].kind, posts[1].payload) == (
        "nc_card",
        {"nc_id": ncs[0].id},
    )  # rendered when sent: the card as the record is then
    card = await _card(loop, database, ncs[0].id)
    assert card["text"].startswith(f"⚠️ <b>Neatitiktis #{ncs[0].id}</b> · {tr('lt', 'open')}")
    assert (
        tr(
            "lt",
            "Objective not met: {name}, {period}: {figure} (target {comparison} {target}).",
            name="Laiku išnagrinėti kreipimaisi",
            period="2026-11",
            figure="33,33%",
            comparison="≥",
            target="95%",
        )
        in card["text"]
    )
    assert [b["text"] for row in card["keyboard"]["inline_keyboard"] for b in row] == ["🔎 Analizuoti"]

    again = await loop.nonconformities.review_objectives(
        date(2026, 12, 2)
    )  # the next day, or another replica: nothing twice
    assert again == []
    assert await _count(database, Nonconformity) == 2
    assert len(await _posts(database)) == len(posts)


async def test_actions_assigned_done_and_the_check_proposes_not_effective_then_the_manager_reopens(
    loop, database: Database
) -> None:
    await loop.nonconformities.review_objectives(date(2026, 12, 1))
    nc_id = (await _posts(database))[1].payload["nc_id"]
    ncs = loop.nonconformities

    await ncs.analyse(
        nc_id, RIMAS, "Late cases reassigned at once", "Nobody watched the deadlines during leave"
    )
    first = await ncs.add_action(
        nc_id, RIMAS, "Deputy named for every clerk on leave", date(2026, 12, 10), ONA
    )
    second = await ncs.add_action(
        nc_id, RIMAS, "Daily digest read at the morning meeting", date(2026, 12, 15), RIMAS
    )
    assert (await ncs.get(nc_id)).status == NcStatus.ACTIONS
    await ncs.action_done(nc_id, first.id, ONA, "Deputies named in the order of 2 Dec", 30)
    assert (await ncs.get(nc_id)).status == NcStatus.ACTIONS  # one still open
    nc = await ncs.action_done(nc_id, second.id, RIMAS, "On the agenda since 3 Dec", 30)
    assert (nc.status, nc.check_on) == (NcStatus.VERIFYING, date(2026, 12, 31))
    actions = await ncs.actions(nc_id)
    assert [(a.what, a.owner_name, a.due, a.done_note) for a in actions] == [
        (
            "Deputy named for every clerk on leave",
            "Ona",
            date(2026, 12, 10),
            "Deputies named in the order of 2 Dec",
        ),
        (
            "Daily digest read at the morning meeting",
            "Rimas",
            date(2026, 12, 15),
            "On the agenda since 3 Dec",
        ),
    ]

    before = len(await _posts(database))
    await ncs.checks_due(date(2026, 12, 30))  # not yet
    assert len(await _posts(database)) == before
    await ncs.checks_due(date(2027, 1, 4))  # December measured again: 0 of 1 on time
    check = (await _posts(database))[-1].payload
    assert tr(
        "lt", "Proposed: <b>{proposal}</b>. The quality manager decides.", proposal=tr("lt", "not effective")
    ) in plain(check["text"])
    assert "2026-12: 0%" in plain(check["text"])
    assert [b["text"] for row in check["keyboard"]["inline_keyboard"] for b in row] == [
        "✅ Veiksminga",
        "❌ Neveiksminga",
    ]
    await ncs.checks_due(date(2027, 1, 5))  # put to the manager once
    assert (await _posts(database))[-1].payload == check

    reopened = await ncs.verify(nc_id, ONA, effective=False)
    assert reopened.status == NcStatus.REOPENED and reopened.closed_at is None
    trail = [(e.kind, e.actor_name) for e in await ncs.trail(nc_id)]
    assert trail == [
        ("opened", None),
        ("analysed", "Rimas"),
        ("action_added", "Rimas"),
        ("action_added", "Rimas"),
        ("action_done", "Ona"),
        ("action_done", "Rimas"),
        ("check_set", "Rimas"),
        ("check_due", None),
        ("not_effective", "Ona"),
    ]
    async with database.read() as session:
        proposal = (
            await session.execute(select(NcEvent).where(col(NcEvent.kind) == "check_due"))
        ).scalar_one()
    assert proposal.data["proposal"] is False and proposal.data["period"] == "2026-12"


async def test_bad_input_changes_nothing(loop, database: Database) -> None:
    ncs = loop.nonconformities
    with pytest.raises(NcError) as unknown:
        await ncs.open(NcSource.QUALITY, "Answers without a legal basis", "roads", ONA)
    with loop.i18n.context(), loop.i18n.use_locale("lt"):
        assert str(unknown.value) == tr(
            "lt", "There is no team {team}. Teams: {teams}.", team="roads", teams="desk"
        )
    nc = await ncs.open(NcSource.QUALITY, "Answers without a legal basis", "desk", ONA)
    with pytest.raises(NcError):  # not analysed yet: no actions
        await ncs.add_action(nc.id, RIMAS, "Template with the legal basis", date(2026, 12, 20), RIMAS)
    await ncs.analyse(nc.id, RIMAS, "Answers sent again", "No template")
    posts = len(await _posts(database))
    with pytest.raises(NcError) as past:
        await ncs.add_action(nc.id, RIMAS, "Template with the legal basis", date(2026, 11, 30), RIMAS)
    with loop.i18n.context(), loop.i18n.use_locale("lt"):
        assert str(past.value) == tr(
            "lt", "The due date {date} is in the past; choose today or a later day.", date="2026-11-30"
        )
    with pytest.raises(NcError):
        await ncs.analyse(nc.id, RIMAS, "x", "y")  # too short, and analysed already
    assert await _count(database, CorrectiveAction) == 0
    assert (await ncs.get(nc.id)).status == NcStatus.ANALYSED
    assert len(await _posts(database)) == posts


async def test_the_management_reviews_figures_equal_the_reports(loop, database: Database) -> None:
    quarter = Period(date(2026, 10, 1), date(2026, 12, 31))
    workbook = load_workbook(io.BytesIO(await loop.review.xlsx(quarter)))
    (
        summary,
        objectives,
        process,
        satisfaction,
        nonconformities,
        actions,
        audits,
        findings,
        responsibility,
        projects,
        chart,
    ) = workbook.worksheets
    with loop.i18n.context(), loop.i18n.use_locale("lt"):
        report = await loop.quality.report(quarter, "lt")
        expected_summary = tables(report)[0][2]
        months = {
            p: await loop.quality.report(p, "lt")
            for p in (
                latest_full("month", d) for d in (date(2026, 11, 1), date(2026, 12, 1), date(2027, 1, 1))
            )
        }

    assert [[c.value for c in row] for row in summary.iter_rows(min_row=2)] == expected_summary
    rows = [[c.value for c in row] for row in process.iter_rows(min_row=2)]
    assert rows == [
        [
            t.team,
            t.received,
            t.closed,
            t.on_time,
            round(t.on_time_share, 1),
            t.median_days,
            t.passed_on,
            t.overdue,
        ]
        for t in report.teams
    ]
    assert rows == [["Specialistai", 6, 5, 2, 40.0, 22, 0, 1]]
    on_time = {
        row[2].value: row[3].value
        for row in objectives.iter_rows(min_row=2)
        if row[0].value == "Laiku išnagrinėti kreipimaisi"
    }
    assert (
        on_time
        == {period_key(p): round(r.on_time_share, 1) for p, r in months.items()}
        == {"2026-10": 100.0, "2026-11": 33.3, "2026-12": 0.0}
    )
    overdue = {
        row[2].value: row[3].value
        for row in objectives.iter_rows(min_row=2)
        if row[0].value.startswith("Vėluojantys")
    }
    assert overdue == {period_key(p): r.overdue for p, r in months.items()}
    counts = {row[0].value: row[1].value for row in satisfaction.iter_rows(min_row=2)}
    assert (
        [counts[f"{s} ★"] for s in range(1, 6)] == [report.scores[s] for s in range(1, 6)] == [0, 0, 1, 1, 1]
    )
    assert chart._charts  # the chart sheet holds the chart
    assert (
        nonconformities.max_row == 1
        and actions.max_row == 1
        and audits.max_row == 1
        and findings.max_row == 1
        and projects.max_row == 1
    )  # none yet
    assert [c.value for c in list(responsibility.iter_rows(min_row=2))[0]][:1] + [
        c.value for c in list(responsibility.iter_rows(min_row=2))[0]
    ][5:] == [
        "Specialistai",
        1,
        tr("lt", "nobody responsible"),
        1,
        0,
    ]  # the zero-config desk: case 6 open, nobody responsible, due on 18 December (the clock: 1 December)


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        (
            "[[objectives]]\nid = 'x'\nname = { pl = 'X', lt = 'X' }\nmetric = 'on_time_share'\ncomparison = '>='\ntarget = 90\nteam = 'roads'\n",
            "objectives[6]: unknown team roads",
        ),
        (
            "[[objectives]]\nid = 'on_time'\nname = { pl = 'X', lt = 'X' }\nmetric = 'overdue_at_period_end'\ncomparison = '<='\ntarget = 3\n",
            "objectives: duplicate id on_time",
        ),
        (
            "[[objectives]]\nid = 'x'\nname = { pl = 'X', lt = 'X' }\nmetric = 'average_satisfaction'\ncomparison = '>='\ntarget = 7\n",
            "objectives[6]: satisfaction is from 1 to 5",
        ),
        (
            "[[objectives]]\nid = 'x'\nname = { pl = 'X', lt = 'X' }\nmetric = 'speed'\ncomparison = '>='\ntarget = 7\n",
            "objectives.5.metric",
        ),
        (
            "[[teams]]\nid = 'a'\nchat_id = -1001\nname = { pl = 'A', lt = 'A' }\nheads = [77]\n[routing]\ndefault_team = 'a'\n"
            "[[audit_programme]]\nteam = 'a'\nperiod = '2026-Q4'\nauditor = 77\n",
            "audit_programme[1]: the auditor 77 is of team a: an auditor never audits their own team",
        ),
        (
            "[[audit_programme]]\nteam = 'roads'\nperiod = '2026-Q4'\nauditor = 77\n",
            "audit_programme[1]: unknown team roads",
        ),
        ("[[audit_programme]]\nteam = 'desk'\nperiod = 'Q4'\nauditor = 77\n", "audit_programme.0.period"),
        (
            "[[teams]]\nid = 'a'\nchat_id = -1001\nname = { pl = 'A', lt = 'A' }\nquality = true\n"
            "[[teams]]\nid = 'b'\nchat_id = -1002\nname = { pl = 'B', lt = 'B' }\nquality = true\n[routing]\ndefault_team = 'a'\n",
            "teams: quality = true on a, b; mark one team only",
        ),
    ],
)
def test_the_municipality_file_checks_the_quality_team_and_the_objectives(
    tmp_path, extra: str, error: str
) -> None:
    path = tmp_path / "municipality.toml"
    path.write_text(DEFAULT_MUNICIPALITY_FILE.read_text(encoding="utf-8") + "\n" + extra, encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_municipality(path)
    assert error in str(refused.value)


def test_the_quality_team_is_the_marked_one_else_the_default_team(tmp_path) -> None:
    shipped = load_municipality(DEFAULT_MUNICIPALITY_FILE).with_default_team(ADMIN_CHAT_ID)
    assert shipped.quality_team.id == "desk"
    path = tmp_path / "municipality.toml"
    path.write_text(
        DEFAULT_MUNICIPALITY_FILE.read_text(encoding="utf-8")
        + "\n[[teams]]\nid = 'a'\nchat_id = -1001\nname = { pl = 'A', lt = 'A' }\n[[teams]]\nid = 'q'\nchat_id = -1002\nname = { pl = 'Q', lt = 'Q' }\nquality = true\n"
        "[routing]\ndefault_team = 'a'\n",
        encoding="utf-8",
    )
    assert load_municipality(path).quality_team.id == "q"


def test_an_audit_sample_is_the_same_from_the_same_seed() -> None:
    cases = list(range(1, 101))
    first = draw(cases, 20261207, 5)
    assert first == draw(
        list(reversed(cases)), 20261207, 5
    )  # the order the store gives them in does not matter
    assert len(first) == 5 and set(first) <= set(cases)
    assert draw(cases, 20261208, 5) != first
    assert draw([3, 1], 7, 5) == [1, 3]  # fewer cases than the sample: all of them


async def test_corrective_actions_due_appear_in_the_teams_daily_digest(loop, database: Database) -> None:
    ncs = loop.nonconformities
    nc = await ncs.open(NcSource.QUALITY, "Answers without a legal basis", "desk", ONA)
    await ncs.analyse(nc.id, RIMAS, "Answers sent again", "No template")
    await ncs.add_action(nc.id, RIMAS, "Template with the <legal> basis", date(2026, 12, 3), RIMAS)
    await ncs.add_action(nc.id, RIMAS, "Training for the clerks", date(2027, 1, 20), ONA)  # not due yet
    await loop.schedule.digest(date(2026, 12, 4), [loop.teams.get("desk")])
    digest = next(
        p.payload["text"] for p in await _posts(database) if p.payload.get("text", "").startswith("📋")
    )
    assert plain(digest).endswith(
        "\n\n"
        + tr("lt", "<b>Corrective actions due</b> ({count})", count=1)
        + f"\n#{nc.id} · Template with the <legal> basis · 👤 Rimas · 2026 m. gruodžio 3 d. ⏰"
    )
    assert "&lt;legal&gt;" in digest  # what a person typed is escaped


# --- nonconformities from the cases' rules, one per team and ISO week --------------------------


async def _late_case(database: Database, number: int, due: str, closed: str) -> None:
    async with database.write() as session:
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
                status=CaseStatus.ANSWERED,
                received_at=at("2026-10-01"),
                deadline=date.fromisoformat(due),
                closed_at=at(closed),
                team_id="desk",
            )
        )


async def _weekly(database: Database) -> list[tuple[str | None, list[int], int]]:
    async with database.read() as session:
        rows = (
            await session.execute(
                select(Nonconformity)
                .where(col(Nonconformity.source) == NcSource.CASES)
                .order_by(col(Nonconformity.id))
            )
        ).scalars()
        return [(nc.period, nc.case_ids, nc.low_ratings) for nc in rows]


async def test_cases_closed_late_make_one_nonconformity_per_team_and_week(loop, database: Database) -> None:
    # Case 3 closed late on Monday 16 November (week 47), case 4 on Monday 23 November (week 48); two more late in week 48:
    await _late_case(database, 7, "2026-11-20", "2026-11-24")
    await _late_case(database, 8, "2026-11-20", "2026-11-26")
    await _late_case(database, 9, "2026-11-27", "2026-11-26")  # on time: no nonconformity
    await loop.nonconformities.from_cases(date(2026, 11, 27))
    assert await _weekly(database) == [("2026-W47", [3], 0), ("2026-W48", [4, 7, 8], 0)]
    assert (
        await loop.nonconformities.from_cases(date(2026, 11, 28)) == []
    )  # the next day, or another replica: nothing twice
    assert await _count(database, Nonconformity) == 2

    # Case 5 closed late on 9 December (week 50): a record of its own; case 10, later that week, joins it.
    await loop.nonconformities.from_cases(date(2026, 12, 9))
    await _late_case(database, 10, "2026-12-09", "2026-12-10")
    posts = len(await _posts(database))
    await loop.nonconformities.from_cases(date(2026, 12, 10))
    assert await _weekly(database) == [
        ("2026-W47", [3], 0),
        ("2026-W48", [4, 7, 8], 0),
        ("2026-W50", [5, 10], 0),
    ]
    assert (
        len(await _posts(database)) == posts
    )  # its card's row is still to be sent: rendered then, no second one
    card = await _card(loop, database, 3)
    assert tr("lt", "Cases: {cases}", cases="VRS-2026-000005, VRS-2026-000010") in card["text"]
    assert tr("lt", "cases' rules, weekly") in card["text"]
    trail = [(e.kind, e.data) for e in await loop.nonconformities.trail(3)]
    assert trail == [("opened", {"source": "cases"}), ("cases_added", {"cases": [10], "low_ratings": 0})]


async def test_ratings_of_2_not_resolved_count_in_the_weeks_record_once_the_week_is_over(
    loop, database: Database
) -> None:
    def rating(day: int, score: int, resolved: str) -> SatisfactionAnswer:
        return SatisfactionAnswer(
            answered_on=date(2026, 12, day),
            locale="lt",
            kind="request",
            category_id="roads",
            score=score,
            resolved=resolved,
        )

    async with database.write() as session:
        session.add_all([rating(8, 2, "no"), rating(8, 2, "partly"), rating(8, 5, "yes")])
    await loop.nonconformities.from_cases(date(2026, 12, 8))
    assert await _weekly(database) == []  # within the week, a count that moved would point at a resident
    await loop.nonconformities.from_cases(date(2026, 12, 9))  # case 5 closed late that day: the week's record
    async with database.write() as session:
        session.add(rating(9, 1, "no"))
    await loop.nonconformities.from_cases(date(2026, 12, 14))  # the week is over, but only 4 answers
    assert await _weekly(database) == [("2026-W50", [5], 0)]
    async with database.write() as session:
        session.add(rating(10, 4, "yes"))
    await loop.nonconformities.from_cases(date(2026, 12, 14))  # 5 answers (MIN_GROUP): its two low ones count
    # "partly" is no nonconformity; the answers are anonymous: a count, no case.
    assert await _weekly(database) == [("2026-W50", [5], 2)]
    card = await _card(loop, database, 1)
    assert (
        tr(
            "lt",
            "{count} satisfaction rating of 1 or 2, not resolved",
            "{count} satisfaction ratings of 1 or 2, not resolved",
            2,
            count=2,
        )
        in card["text"]
    )


# --- project milestones ------------------------------------------------------------------------


async def _project(database: Database, milestones: list[tuple[str, str | None]]) -> None:
    """A roads project with milestones (baseline due, met on or None: not met)."""
    async with database.write() as session:
        project = Project(
            external_id="P-1", name_pl="Droga", name_lt="Kelias", team_id="desk", status="under_way"
        )
        session.add(project)
        await session.flush()
        for number, (due, met_on) in enumerate(milestones, start=1):
            session.add(
                Milestone(
                    project_id=project.id,
                    number=number,
                    title_pl=f"Etap {number}",
                    title_lt=f"Etapas {number}",
                    baseline_due=date.fromisoformat(due),
                    current_due=date.fromisoformat(due),
                    status=MilestoneStatus.MET if met_on else MilestoneStatus.NOT_MET,
                    met_on=date.fromisoformat(met_on) if met_on else None,
                )
            )


async def _milestones_objective(loop, today: date):
    with loop.i18n.context(), loop.i18n.use_locale("lt"):
        measured = await ObjectiveMeter(loop.quality, loop.config.municipality, loop.projects).review(
            today, "lt"
        )
    return next(m for m in measured if m.objective.metric == "milestones_on_time")


@pytest.mark.parametrize(("late", "met"), [(0, True), (1, False)])
async def test_the_milestones_objective_is_met_or_not_from_the_project_register(
    loop, database: Database, late: int, met: bool
) -> None:
    on_time = [("2026-10-15", "2026-10-14"), ("2026-11-02", "2026-11-02"), ("2026-12-01", "2026-11-30")]
    late_ones = [("2026-12-10", "2026-12-22")] * late  # met after its planned date
    await _project(database, [*on_time, *late_ones, ("2027-02-01", None)])  # the next quarter's: not counted
    m = await _milestones_objective(loop, date(2027, 1, 5))  # the last full quarter: 2026-Q4
    assert (m.key, m.figure, m.met) == ("2026-Q4", 75.0 if late else 100.0, met)
    workbook = load_workbook(
        io.BytesIO(await loop.review.xlsx(Period(date(2026, 10, 1), date(2026, 12, 31))))
    )
    rows = [[c.value for c in row] for row in workbook[tr("lt", "Projects")].iter_rows(min_row=2)]
    assert [(r[4], r[7], r[8]) for r in rows] == [
        ("2026-10-15", "2026-10-14", "taip"),
        ("2026-11-02", "2026-11-02", "taip"),
        ("2026-12-01", "2026-11-30", "taip"),
        *[("2026-12-10", "2026-12-22", "ne")] * late,
        ("2027-02-01", None, "ne"),
    ]


async def test_an_action_overdue_by_the_rules_working_days_goes_to_the_quality_group_once(
    loop, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    ncs = loop.nonconformities
    monkeypatch.setattr(ncs.municipality.nc_rules, "overdue_action_days", 3)
    nc = await ncs.open(NcSource.QUALITY, "Atsakymai be teisinio pagrindo", "desk", RIMAS)
    await ncs.analyse(nc.id, RIMAS, "Atsakymai papildyti", "Nėra šablono")
    await ncs.add_action(nc.id, RIMAS, "Parengti atsakymo šabloną", date(2026, 12, 1), ONA)  # a Tuesday

    def told(posts: list[OutboxMessage]) -> list[str]:
        return [row.payload["text"] for row in posts if "⏰" in row.payload.get("text", "")]

    await ncs.overdue_actions(date(2026, 12, 3))  # two working days late: not yet
    assert told(await _posts(database)) == []
    await ncs.overdue_actions(date(2026, 12, 4))  # three
    await ncs.overdue_actions(date(2026, 12, 7))  # and once only
    [post] = told(await _posts(database))
    assert post.startswith(
        tr_start(
            "lt",
            "⏰ Corrective action of nonconformity #{id} is overdue: {what} (responsible: {owner}, due {date}).",
            until="date",  # worded by Babel
            id=nc.id,
            what="Parengti atsakymo šabloną",
            owner="Ona",
        )
    )
