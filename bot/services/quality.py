"""Quality indicators for management review and audits (ISO 9001, 9.1): how many cases came and
were closed, how many within the legal deadline, how long they took in working days, extensions,
overdue and open cases, and what residents said.

Definitions (all dates in the municipality's time zone, the period's days inclusive):
- received: cases received in the period, also by channel (Telegram; registered by staff, for a
  case that came by phone, e-mail, post or at the front desk; Open311);
- closed: cases closed in the period (and still closed);
- on time: closed on or before their due day (the deadline, or the extended one);
- handling time: working days after the receipt day up to the closing day (same day: 0);
- extensions: extensions granted in the period;
- backlog: cases received by the period's last day and not closed by it; overdue: those of them
  whose due day is before the period's last day;
- satisfaction: answers given in the period; breakdowns hide a group with fewer than
  `MIN_GROUP` answers, so a small group cannot point to a person;
- visit surveys (bot.services.visits): per place, answers given in the period; a place's figures
  show only from `MIN_GROUP` answers, and each optional question's (waiting time, settled,
  courtesy) only from `MIN_GROUP` answers to it; shares are of those who answered that question.

A report is of the whole municipality, or of some teams (a team member's /report, see
docs/roles.md): then only the cases those teams have now, and no satisfaction answers, which
are never tied to a team.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import lazy_gettext as __
from sqlalchemy import ColumnElement, or_, select
from sqlmodel import col

from bot.municipality import Municipality, Team
from bot.services import project_texts, texts
from bot.services.collation import sorted_by_name
from bot.services.deadlines import WorkingCalendar
from bot.store.db import Database
from bot.store.models import (
    Case,
    CaseEvent,
    CaseStatus,
    Channel,
    EventKind,
    Milestone,
    MilestoneStatus,
    Project,
    ResolvedAnswer,
    SatisfactionAnswer,
    VisitAnswer,
    WaitingTime,
)

if TYPE_CHECKING:
    from babel.support import LazyProxy

MIN_GROUP = 5  # k-anonymity threshold for satisfaction breakdowns
# What the indicators read of a case (whole rows would cost twice the time for a year of cases).
CASE_COLUMNS: tuple[Any, ...] = tuple(
    col(c)
    for c in (
        Case.id,
        Case.received_at,
        Case.closed_at,
        Case.deadline,
        Case.extended_until,
        Case.category_id,
        Case.eldership_id,
        Case.team_id,
        Case.channel,
        Case.status,
    )
)
LAST_DAYS_DEFAULT = 30
# "Cases received" by channel, in the summary table.
CHANNEL_ROWS = {
    Channel.TELEGRAM: __("Received in Telegram"),
    Channel.STAFF: __("Registered by staff (phone, e-mail, post, front desk)"),
    Channel.OPEN311: __("Received through Open311"),
}


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day <= self.end


class PeriodError(ValueError):
    """Why a period cannot be reported on. str() says it in the gettext locale current when it is
    shown (the clerks' language in the bot, English on the command line), not when raised."""

    def __init__(self, reason: LazyProxy, **values: object) -> None:
        super().__init__()
        self.reason, self.values = reason, values

    def __str__(self) -> str:
        return str(self.reason).format(**self.values)


# The limits of a report: the years a municipal e-service can have cases for, and a length that
# is still a management review (and does not keep the bot reading for minutes).
FIRST_YEAR = 2000
MAX_YEARS = 5
MAX_LAST_DAYS = 366
# ASCII digits only: \d and int() would take "２０２６", and str.isdigit() even "²".
_LAST_DAYS = re.compile(r"([0-9]{1,6})d")
_YEAR = re.compile(r"([0-9]{4})")
_QUARTER = re.compile(r"([0-9]{4})-q([1-4])")
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")
_RANGE = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})(?:\.\.|–|—|/)([0-9]{4}-[0-9]{2}-[0-9]{2})")


def parse_period(text: str | None, today: date) -> Period:
    """ "" (the last 30 days), "7d" (the last N days), "2026", "2026-10", "2026-Q3", or
    "2026-10-01..2026-12-31"; PeriodError (a ValueError) saying why for anything else, and for a
    period outside `check_period`'s limits."""
    value = (text or "").strip().lower().replace(" ", "")
    if not value:
        return Period(today - timedelta(days=LAST_DAYS_DEFAULT - 1), today)
    if match := _LAST_DAYS.fullmatch(value):
        days = int(match[1])
        if not 1 <= days <= MAX_LAST_DAYS:
            raise PeriodError(__("Count the last days from 1 to {max}, e.g. 30d."), max=MAX_LAST_DAYS)
        return Period(today - timedelta(days=days - 1), today)
    try:
        period = _calendar_period(value)
    except ValueError:  # a month 13, a 30 February, a year 0000
        raise PeriodError(__("There is no such date in the calendar.")) from None
    if period is None:
        raise PeriodError(__("This is not a period."))
    check_period(period, today)
    return period


def _calendar_period(value: str) -> Period | None:
    """A year, quarter, month or range of days; None if `value` is none of them."""
    if match := _YEAR.fullmatch(value):
        return Period(date(int(match[1]), 1, 1), date(int(match[1]), 12, 31))
    if match := _QUARTER.fullmatch(value):
        first = date(int(match[1]), 3 * int(match[2]) - 2, 1)
        return Period(first, _month_end(first.replace(month=first.month + 2)))
    if match := _MONTH.fullmatch(value):
        first = date(int(match[1]), int(match[2]), 1)
        return Period(first, _month_end(first))
    if match := _RANGE.fullmatch(value):
        return Period(date.fromisoformat(match[1]), date.fromisoformat(match[2]))
    return None


def check_period(period: Period, today: date) -> None:
    """PeriodError unless the period runs forwards, within FIRST_YEAR to next year, and spans
    at most MAX_YEARS years. The /report command and `petent report` both go through here."""
    if period.start > period.end:
        raise PeriodError(__("The first day of the period must not be after its last day."))
    last_year = today.year + 1
    if period.start.year < FIRST_YEAR or period.end.year > last_year:
        raise PeriodError(
            __("A report covers the years {first} to {last}."), first=FIRST_YEAR, last=last_year
        )
    if period.end >= _years_later(period.start, MAX_YEARS):
        raise PeriodError(
            __(
                "A report covers at most {count} year; please choose a shorter period.",
                "A report covers at most {count} years; please choose a shorter period.",
                MAX_YEARS,
            ),
            count=MAX_YEARS,
        )


def _years_later(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _month_end(day: date) -> date:
    following = day.replace(day=28) + timedelta(days=4)
    return following - timedelta(days=following.day)


@dataclass
class Week:
    start: date  # Monday
    received: int = 0
    closed: int = 0
    on_time: int = 0
    scores: list[int] = field(default_factory=list)

    @property
    def on_time_share(self) -> float | None:
        return _share(self.on_time, self.closed)

    @property
    def average_score(self) -> float | None:
        return statistics.fmean(self.scores) if self.scores else None


@dataclass
class Group:
    """A satisfaction breakdown row; `answers` is None (and nothing shown) below MIN_GROUP."""

    dimension: str
    label: str
    answers: int | None
    average: float | None = None
    resolved_share: float | None = None


@dataclass
class ProjectFigures:
    """A project as the report counts it (its state when the report is made)."""

    team: str
    code: str
    name: str
    status: str
    progress: int
    milestones: int
    slipped: int  # milestones whose current due date is after their baseline
    not_met: int
    slip_days: int  # the most slipped milestone's days (0: on schedule)
    reason: str  # why that milestone moved

    @property
    def on_schedule(self) -> bool:
        return self.slip_days <= 0 and self.not_met == 0


@dataclass
class TeamFigures:
    """One team's share of the period: cases that entered it (opened there or passed to it),
    left it for another team, were closed by it, and were its overdue ones at the period's end."""

    team: str
    team_id: str = ""
    received: int = 0
    passed_on: int = 0
    closed: int = 0
    on_time: int = 0
    handling_days: list[int] = field(default_factory=list)
    waited_days: list[int] = field(default_factory=list)  # in the team before being passed on
    overdue: int = 0  # open at the period's end, with the due day before it, and with this team

    @property
    def on_time_share(self) -> float | None:
        return _share(self.on_time, self.closed)

    @property
    def median_days(self) -> float | None:
        return statistics.median(self.handling_days) if self.handling_days else None

    @property
    def median_wait(self) -> float | None:
        return statistics.median(self.waited_days) if self.waited_days else None


@dataclass
class PlaceFigures:
    """A place's visit survey figures; nothing is shown of a place below MIN_GROUP answers."""

    place_id: str
    name: str
    answers: int
    scores: list[int] = field(default_factory=list)
    courtesy: list[int] = field(default_factory=list)
    waited: Counter[str] = field(default_factory=Counter)  # WaitingTime -> answers
    settled: Counter[str] = field(default_factory=Counter)  # ResolvedAnswer -> answers

    @property
    def shown(self) -> bool:
        return self.answers >= MIN_GROUP

    @property
    def average(self) -> float | None:
        return statistics.fmean(self.scores) if self.shown else None

    @property
    def average_courtesy(self) -> float | None:
        return statistics.fmean(self.courtesy) if self.shown and len(self.courtesy) >= MIN_GROUP else None

    def waited_share(self, waited: str) -> float | None:
        """Of those who said how long they waited, %."""
        total = sum(self.waited.values())
        return _share(self.waited[waited], total) if self.shown and total >= MIN_GROUP else None

    def settled_share(self, settled: str = ResolvedAnswer.YES) -> float | None:
        """Of those who said whether their matter was settled, %."""
        total = sum(self.settled.values())
        return _share(self.settled[settled], total) if self.shown and total >= MIN_GROUP else None


@dataclass
class QualityReport:
    period: Period
    received: int = 0
    by_channel: Counter[str] = field(default_factory=Counter)  # received in the period, per Channel
    closed: int = 0
    duplicates: int = 0  # closed as duplicates of another case: apart from "closed" (nothing was answered)
    on_time: int = 0
    handling_days: list[int] = field(default_factory=list)
    extensions: int = 0
    overdue: int = 0
    backlog_by_eldership: list[tuple[str, int]] = field(default_factory=list)
    backlog_by_category: list[tuple[str, int]] = field(default_factory=list)
    scores: Counter[int] = field(default_factory=Counter)
    resolved: Counter[str] = field(default_factory=Counter)
    comments: list[str] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    weeks: list[Week] = field(default_factory=list)
    teams: list[TeamFigures] = field(default_factory=list)
    scope: list[str] | None = (
        None  # the teams' names, for a report of some teams; None: the whole municipality
    )

    @property
    def scope_label(self) -> str:
        return _("the whole municipality") if self.scope is None else ", ".join(self.scope)

    places: list[PlaceFigures] = field(default_factory=list)  # visit surveys, every place of the file
    proposals: list[tuple[str, str]] = field(
        default_factory=list
    )  # visitors' (place, proposal), alphabetical

    @property
    def visit_answers(self) -> int:
        return sum(place.answers for place in self.places)

    projects: list[ProjectFigures] = field(default_factory=list)

    @property
    def on_time_share(self) -> float | None:
        return _share(self.on_time, self.closed)

    @property
    def median_days(self) -> float | None:
        return statistics.median(self.handling_days) if self.handling_days else None

    @property
    def mean_days(self) -> float | None:
        return statistics.fmean(self.handling_days) if self.handling_days else None

    @property
    def backlog(self) -> int:
        return sum(count for _, count in self.backlog_by_category)

    @property
    def answers(self) -> int:
        return sum(self.scores.values())

    @property
    def average_score(self) -> float | None:
        return sum(score * n for score, n in self.scores.items()) / self.answers if self.answers else None

    def resolved_share(self, answer: str = ResolvedAnswer.YES) -> float | None:
        return _share(self.resolved[answer], self.answers)


def _share(part: int, whole: int) -> float | None:
    return 100.0 * part / whole if whole else None


class QualityService:
    def __init__(self, database: Database, calendar: WorkingCalendar, municipality: Municipality) -> None:
        self.database = database
        self.calendar = calendar
        self.municipality = municipality

    def _utc(self, day: date) -> datetime:
        return self.calendar.midnight(day).astimezone(UTC)

    def _of_teams(self, teams: Sequence[Team] | None) -> ColumnElement[bool] | None:
        """The cases `teams` have now (the default team's include those from before teams); None: all."""
        if teams is None:
            return None
        ids = [team.id for team in teams]
        mine = col(Case.team_id).in_(ids)
        default = self.municipality.routing.default_team if self.municipality.routing else None
        return or_(mine, col(Case.team_id).is_(None)) if default in ids else mine

    async def report(self, period: Period, locale: str, teams: Sequence[Team] | None = None) -> QualityReport:
        """The indicators for `period`; names (elderships, categories, kinds) in `locale`,
        which must also be the current gettext locale. With `teams`, only their cases (and no
        satisfaction answers: those are not tied to a team)."""
        until = self._utc(period.end + timedelta(days=1))
        of_teams = self._of_teams(teams)
        scoped: list[ColumnElement[bool]] = [] if of_teams is None else [of_teams]
        # The cases the period's figures can count: received by its end and not closed before its
        # start (one closed earlier was neither received, closed nor open in it); not the decade.
        counted = [
            col(Case.received_at) < until,
            or_(col(Case.closed_at).is_(None), col(Case.closed_at) >= self._utc(period.start)),
        ]
        async with self.database.read() as session:
            cases = (
                await session.execute(select(*CASE_COLUMNS).where(*counted, *scoped).order_by(col(Case.id)))
            ).all()
            extensions = select(col(CaseEvent.at)).where(
                col(CaseEvent.kind) == EventKind.EXTENDED,
                col(CaseEvent.at) >= self._utc(period.start),
                col(CaseEvent.at) < until,
            )
            if scoped:
                extensions = extensions.join(Case, col(Case.id) == col(CaseEvent.case_id)).where(*scoped)
            extended_at = (await session.execute(extensions)).scalars().all()
            answers: Sequence[SatisfactionAnswer] = (
                []
                if teams is not None
                else (
                    await session.execute(
                        select(SatisfactionAnswer).where(
                            col(SatisfactionAnswer.answered_on) >= period.start,
                            col(SatisfactionAnswer.answered_on) <= period.end,
                        )
                    )
                )
                .scalars()
                .all()
            )
            moves = (
                await session.execute(
                    select(col(CaseEvent.case_id), col(CaseEvent.at), col(CaseEvent.data))
                    .where(
                        col(CaseEvent.kind).in_((EventKind.CREATED, EventKind.PASSED)),
                        col(CaseEvent.at) < until,
                        col(CaseEvent.case_id).in_(
                            select(col(Case.id)).where(*counted)
                        ),  # every team's: a referral counts for the team it left
                    )
                    .order_by(col(CaseEvent.case_id), col(CaseEvent.at), col(CaseEvent.id))
                )
            ).all()

        scope = None if teams is None else [team.name.get(locale) for team in teams]
        report = QualityReport(period=period, extensions=len(extended_at), scope=scope)
        weeks = self._weeks(period)
        backlog_eldership: Counter[str] = Counter()
        backlog_category: Counter[str] = Counter()
        for case in cases:
            received = self.calendar.local_date(case.received_at)
            closed = self.calendar.local_date(case.closed_at) if case.closed_at else None
            if received in period:
                report.received += 1
                report.by_channel[case.channel or Channel.TELEGRAM] += 1
                weeks[_monday(received)].received += 1
            due = case.extended_until or case.deadline
            if case.status == CaseStatus.DUPLICATE:
                report.duplicates += closed is not None and closed in period
                continue
            if closed is not None and closed in period:
                on_time = closed <= due
                report.closed += 1
                report.on_time += on_time
                report.handling_days.append(self.calendar.working_days_taken(case.received_at, closed))
                weeks[_monday(closed)].closed += 1
                weeks[_monday(closed)].on_time += on_time
            if closed is None or closed > period.end:
                backlog_eldership[self._eldership(case.eldership_id, locale)] += 1
                backlog_category[self._category(case.category_id, locale)] += 1
                report.overdue += due < period.end
        report.backlog_by_eldership = backlog_eldership.most_common()
        report.backlog_by_category = backlog_category.most_common()

        for answer in answers:
            report.scores[answer.score] += 1
            report.resolved[answer.resolved] += 1
            weeks[_monday(answer.answered_on)].scores.append(answer.score)
            if answer.comment:
                report.comments.append(answer.comment)
        report.comments.sort()  # alphabetical: the order says nothing about who or when
        report.groups = self._groups(answers, locale)
        report.weeks = list(weeks.values())
        only = None if teams is None else {team.id for team in teams}
        report.teams = self._teams(period, cases, moves, locale, only=only)
        if (
            teams is None
        ):  # visitors' answers are of places, not of a team's cases: the whole municipality's report
            report.places, report.proposals = await self.visits(period, locale)
        report.projects = await self._projects(locale, only)
        return report

    async def visits(self, period: Period, locale: str) -> tuple[list[PlaceFigures], list[tuple[str, str]]]:
        """Per place, the visit survey answers of `period` (every place of the file, in its order, then
        places removed since that still have answers), and the proposals sorted by place and text."""
        async with self.database.read() as session:
            rows = (
                (
                    await session.execute(
                        select(VisitAnswer).where(
                            col(VisitAnswer.answered_on) >= period.start,
                            col(VisitAnswer.answered_on) <= period.end,
                        )
                    )
                )
                .scalars()
                .all()
            )
        places = {
            place.id: PlaceFigures(place.id, place.name.get(locale), 0) for place in self.municipality.places
        }
        for place_id in sorted({row.place_id for row in rows} - places.keys()):
            places[place_id] = PlaceFigures(place_id, place_id, 0)
        proposals: list[tuple[str, str]] = []
        for row in rows:
            place = places[row.place_id]
            place.answers += 1
            place.scores.append(row.score)
            if row.courtesy is not None:
                place.courtesy.append(row.courtesy)
            if row.waited is not None:
                place.waited[row.waited] += 1
            if row.settled is not None:
                place.settled[row.settled] += 1
            if row.proposal:
                proposals.append((place.name, row.proposal))
        return list(places.values()), sorted(
            proposals
        )  # alphabetical: the order says nothing about who or when

    async def _projects(self, locale: str, only: set[str] | None = None) -> list[ProjectFigures]:
        """The projects register as it stands (of the teams `only`, if given): the most slipped first (bot.services.projects)."""
        async with self.database.read() as session:
            projects = (
                (await session.execute(select(Project).order_by(col(Project.external_id)))).scalars().all()
            )
            milestones = (
                (await session.execute(select(Milestone).order_by(col(Milestone.number)))).scalars().all()
            )
        by_project: dict[int, list[Milestone]] = defaultdict(list)
        for milestone in milestones:
            by_project[milestone.project_id].append(milestone)
        figures = []
        for project in projects:
            if only is not None and project.team_id not in only:
                continue
            own = by_project[project.id]
            worst = max(own, key=project_texts.slip_days, default=None)
            team = self.municipality.team_by_id.get(project.team_id)
            figures.append(
                ProjectFigures(
                    team=team.name.get(locale) if team else project.team_id,
                    code=project.external_id,
                    name=project_texts.name(project, locale),
                    status=project_texts.status_label(project.status),
                    progress=project.progress,
                    milestones=len(own),
                    slipped=sum(project_texts.slip_days(m) > 0 for m in own),
                    not_met=sum(m.status == MilestoneStatus.NOT_MET for m in own),
                    slip_days=max(0, project_texts.slip_days(worst)) if worst else 0,
                    reason=(worst.reason or "") if worst and project_texts.slip_days(worst) > 0 else "",
                )
            )
        return sorted(figures, key=lambda f: (-f.slip_days, f.code))

    def _teams(
        self,
        period: Period,
        cases: Sequence[Any],
        moves: Sequence[Any],
        locale: str,
        only: set[str] | None = None,
    ) -> list[TeamFigures]:
        figures = {team.id: TeamFigures(team.name.get(locale), team.id) for team in self.municipality.teams}

        def of(team_id: str | None) -> TeamFigures:
            return figures.setdefault(team_id or "", TeamFigures(team_id or "?", team_id or ""))

        default = self.municipality.routing.default_team if self.municipality.routing else None
        entered: dict[int, tuple[str | None, datetime]] = {}  # case id -> (team, since)
        for move in moves:
            case_id, at, data = move[0], move[1], move[2]
            data = data or {}
            to = data.get("to") or data.get("team") or default  # cases from before teams: the default team
            if case_id in entered and "to" in data:  # a referral: the case leaves its team
                source, since = entered[case_id]
                left_on = self.calendar.local_date(at)
                if left_on in period:
                    of(source).passed_on += 1
                    of(source).waited_days.append(self.calendar.working_days_taken(since, left_on))
            entered[case_id] = (to, at)
            if self.calendar.local_date(at) in period:
                of(to).received += 1
        for case in cases:
            closed = self.calendar.local_date(case.closed_at) if case.closed_at else None
            if closed is not None and closed in period and case.status != CaseStatus.DUPLICATE:
                team = of(case.team_id)
                team.closed += 1
                team.on_time += closed <= (case.extended_until or case.deadline)
                team.handling_days.append(self.calendar.working_days_taken(case.received_at, closed))
            if self.calendar.local_date(case.received_at) <= period.end and (
                closed is None or closed > period.end
            ):
                of(case.team_id).overdue += (case.extended_until or case.deadline) < period.end
        shown = (
            figures
            if only is None
            else {team_id: team for team_id, team in figures.items() if team_id in only}
        )
        return [
            team for team in shown.values() if team.received or team.passed_on or team.closed or team.overdue
        ]

    def _weeks(self, period: Period) -> dict[date, Week]:
        weeks: dict[date, Week] = {}
        monday = _monday(period.start)
        while monday <= period.end:
            weeks[monday] = Week(start=monday)
            monday += timedelta(days=7)
        return weeks

    def _eldership(self, eldership_id: str | None, locale: str) -> str:
        entry = self.municipality.eldership_by_id.get(eldership_id or "")
        return entry.get(locale) if entry else _("(no eldership)")

    def _category(self, category_id: str, locale: str) -> str:
        entry = self.municipality.category_by_id.get(category_id)
        return entry.get(locale) if entry else category_id

    def _groups(self, answers: Sequence[SatisfactionAnswer], locale: str) -> list[Group]:
        dimensions: list[tuple[str, Callable[[SatisfactionAnswer], str]]] = [
            (_("Category"), lambda a: self._category(a.category_id, locale)),
            (_("Eldership"), lambda a: self._eldership(a.eldership_id, locale)),
            (_("Kind"), lambda a: texts.kind_label(a.kind)),
            (_("Language"), lambda a: texts.LANGUAGE_NAMES.get(a.locale, a.locale)),
        ]
        groups: list[Group] = []
        for dimension, label_of in dimensions:
            by_label: dict[str, list[SatisfactionAnswer]] = defaultdict(list)
            for answer in answers:
                by_label[label_of(answer)].append(answer)
            for label, rows in sorted_by_name(by_label.items(), locale, name=lambda item: item[0]):
                if len(rows) < MIN_GROUP:
                    groups.append(Group(dimension, label, None))
                    continue
                yes = sum(1 for a in rows if a.resolved == ResolvedAnswer.YES)
                groups.append(
                    Group(
                        dimension,
                        label,
                        len(rows),
                        statistics.fmean(a.score for a in rows),
                        _share(yes, len(rows)),
                    )
                )
        return groups


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def tables(report: QualityReport) -> list[tuple[str, list[str], list[list[Any]]]]:
    """The report as (title, headers, rows) tables, for CSV and XLSX (current gettext locale).
    Shares are percentages; an empty cell means "no data" or "hidden: fewer than 5 answers"."""
    summary: list[list[Any]] = [
        [_("Scope"), report.scope_label],
        [_("Period from"), report.period.start.isoformat()],
        [_("Period to"), report.period.end.isoformat()],
        [_("Cases received"), report.received],
        *([str(CHANNEL_ROWS[channel]), report.by_channel[channel]] for channel in Channel),
        [_("Cases closed"), report.closed],
        [_("Closed as duplicates of another case"), report.duplicates],
        [_("Closed within the legal deadline"), report.on_time],
        [_("Share closed within the deadline, %"), rounded(report.on_time_share)],
        [_("Median handling time, working days"), rounded(report.median_days)],
        [_("Mean handling time, working days"), rounded(report.mean_days)],
        [_("Extensions granted"), report.extensions],
        [_("Overdue at the end of the period"), report.overdue],
        [_("Open cases at the end of the period"), report.backlog],
        [_("Satisfaction answers"), report.answers],
        [_("Average satisfaction (1-5)"), rounded(report.average_score, 2)],
        [_("Resolved: yes, %"), rounded(report.resolved_share(ResolvedAnswer.YES))],
        [_("Resolved: partly, %"), rounded(report.resolved_share(ResolvedAnswer.PARTLY))],
        [_("Resolved: no, %"), rounded(report.resolved_share(ResolvedAnswer.NO))],
    ]
    weekly = [
        [
            w.start.isoformat(),
            w.received,
            w.closed,
            w.on_time,
            rounded(w.on_time_share),
            len(w.scores),
            rounded(w.average_score, 2),
        ]
        for w in report.weeks
    ]
    return [
        (_("Summary"), [_("Indicator"), _("Value")], summary),
        (
            _("Weekly trend"),
            [
                _("Week from"),
                _("Cases received"),
                _("Cases closed"),
                _("On time"),
                _("On time, %"),
                _("Answers"),
                _("Average satisfaction"),
            ],
            weekly,
        ),
        (
            _("By team"),
            [
                _("Team"),
                _("Cases received"),
                _("Passed on"),
                _("Cases closed"),
                _("On time"),
                _("Median handling time, working days"),
                _("Median wait before passing on, working days"),
                _("Overdue at the end of the period"),
            ],
            [
                [
                    t.team,
                    t.received,
                    t.passed_on,
                    t.closed,
                    t.on_time,
                    rounded(t.median_days),
                    rounded(t.median_wait),
                    t.overdue,
                ]
                for t in report.teams
            ],
        ),
        (
            _("Backlog by eldership"),
            [_("Eldership"), _("Open cases")],
            [list(row) for row in report.backlog_by_eldership],
        ),
        (
            _("Backlog by category"),
            [_("Category"), _("Open cases")],
            [list(row) for row in report.backlog_by_category],
        ),
        (
            _("Satisfaction"),
            [_("Score"), _("Answers")],
            [[score, report.scores[score]] for score in range(1, 6)],
        ),
        (
            _("Satisfaction by group"),
            [_("Breakdown"), _("Group"), _("Answers"), _("Average satisfaction"), _("Resolved: yes, %")],
            [
                [
                    g.dimension,
                    g.label,
                    g.answers if g.answers is not None else _("fewer than {min}").format(min=MIN_GROUP),
                    rounded(g.average, 2),
                    rounded(g.resolved_share),
                ]
                for g in report.groups
            ],
        ),
        (_("Comments"), [_("Comment")], [[comment] for comment in report.comments]),
        (
            _("Visit surveys by place"),
            [
                _("Place"),
                _("Answers"),
                _("Average satisfaction"),
                _("Average courtesy"),
                *(_("Waited {time}, %").format(time=label) for label in waiting_labels()),
                _("Settled: yes, %"),
                _("Settled: partly, %"),
                _("Settled: no, %"),
            ],
            [
                [
                    p.name,
                    p.answers if p.shown else _("fewer than {min}").format(min=MIN_GROUP),
                    rounded(p.average, 2),
                    rounded(p.average_courtesy, 2),
                    *(rounded(p.waited_share(waited)) for waited in WaitingTime),
                    *(rounded(p.settled_share(settled)) for settled in ResolvedAnswer),
                ]
                for p in report.places
            ],
        ),
        (_("Visitors' proposals"), [_("Place"), _("Proposal")], [list(row) for row in report.proposals]),
        (
            _("Projects"),
            [
                _("Team"),
                _("Project code"),
                _("Project"),
                _("Status"),
                _("Progress, %"),
                _("Milestones"),
                _("Slipped"),
                _("Not met"),
                _("On schedule"),
                _("Slip, days"),
                _("Why"),
            ],
            [
                [
                    p.team,
                    p.code,
                    p.name,
                    p.status,
                    p.progress,
                    p.milestones,
                    p.slipped,
                    p.not_met,
                    _("yes") if p.on_schedule else _("no"),
                    p.slip_days,
                    p.reason,
                ]
                for p in report.projects
            ],
        ),
        (
            _("Projects by team"),
            [
                _("Team"),
                _("Projects"),
                _("On schedule"),
                _("Slipped"),
                _("Largest slip, days"),
                _("Mean slip of those slipped, days"),
            ],
            _projects_by_team(report.projects),
        ),
    ]


WAITING_LABELS = {
    WaitingTime.UNDER_5: __("under 5 min"),
    WaitingTime.UP_TO_15: __("5–15 min"),
    WaitingTime.UP_TO_30: __("15–30 min"),
    WaitingTime.OVER_30: __("over 30 min"),
}


def waiting_labels() -> list[str]:
    """The waiting times as the visit survey offers them, shortest first (current gettext locale)."""
    return [str(WAITING_LABELS[waited]) for waited in WaitingTime]


def _projects_by_team(projects: list[ProjectFigures]) -> list[list[Any]]:
    teams: dict[str, list[ProjectFigures]] = defaultdict(list)
    for project in projects:
        teams[project.team].append(project)
    rows = []
    for team, own in sorted(teams.items()):
        slips = [p.slip_days for p in own if p.slip_days > 0]
        rows.append(
            [
                team,
                len(own),
                sum(p.on_schedule for p in own),
                len(slips),
                max(slips, default=0),
                rounded(statistics.fmean(slips)) if slips else None,
            ]
        )
    return rows


def rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)
