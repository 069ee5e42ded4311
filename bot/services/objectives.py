"""Quality objectives, measured (ISO 9001, 6.2 and 9.1.3): each objective's figure for a month or a
quarter, taken from the quality report of that period (bot.services.quality), so that a review
and /report never disagree. `review` measures the latest full period of every objective, with
the periods before it beside it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from bot.municipality import Municipality, Objective
from bot.services.projects import Listed, ProjectService, milestones_on_time
from bot.services.quality import Period, QualityReport, QualityService, TeamFigures

PREVIOUS_PERIODS = 2  # shown beside the figure of the period under review


def period_key(period: Period) -> str:
    """2026-11 for a month, 2026-Q4 for a quarter, 2026-10-01..2026-12-31 for anything else."""
    if period.start.day == 1 and period.end == _month_end(period.start):
        return f"{period.start:%Y-%m}"
    if (
        period.start.day == 1
        and period.start.month % 3 == 1
        and period.end == _month_end(_add_months(period.start, 2))
    ):
        return f"{period.start.year}-Q{(period.start.month + 2) // 3}"
    return f"{period.start.isoformat()}..{period.end.isoformat()}"


def period_of(kind: str, day: date) -> Period:
    """The month or quarter that holds `day`."""
    months = 3 if kind == "quarter" else 1
    first = date(day.year, (day.month - 1) // months * months + 1, 1)
    return Period(first, _month_end(_add_months(first, months - 1)))


def latest_full(kind: str, today: date) -> Period:
    """The last month or quarter that ended before `today`."""
    return period_of(kind, period_of(kind, today).start - timedelta(days=1))


def before(kind: str, period: Period, count: int) -> list[Period]:
    """The `count` periods of this kind before `period`, the nearest last."""
    periods: list[Period] = []
    for _ in range(count):
        period = period_of(kind, period.start - timedelta(days=1))
        periods.insert(0, period)
    return periods


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _month_end(day: date) -> date:
    return _add_months(day, 1) - timedelta(days=1)


def figure(objective: Objective, report: QualityReport) -> float | None:
    """The objective's figure in the report: the whole municipality's, or its team's row of the
    report's per-team table. None: nothing to measure (no case closed, no answer)."""
    scope: QualityReport | TeamFigures = report
    if objective.team is not None:
        scope = next(
            (t for t in report.teams if t.team_id == objective.team), TeamFigures("", objective.team)
        )
    match objective.metric:
        case "on_time_share":
            return scope.on_time_share
        case "median_handling_days":
            return scope.median_days
        case "average_satisfaction":
            return report.average_score
        case _:  # overdue_at_period_end
            return float(scope.overdue)


def met(objective: Objective, value: float | None) -> bool | None:
    return None if value is None else objective.met_by(value)


@dataclass
class Measured:
    """An objective in one period: its figure, whether met, and the figures of the periods before."""

    objective: Objective
    period: Period
    figure: float | None
    met: bool | None
    previous: list[tuple[Period, float | None]] = field(default_factory=list)

    @property
    def key(self) -> str:
        return period_key(self.period)


class ObjectiveMeter:
    def __init__(
        self, quality: QualityService, municipality: Municipality, projects: ProjectService | None = None
    ) -> None:
        self.quality = quality
        self.municipality = municipality
        self.projects = projects  # for milestones_on_time (the project register)

    @property
    def objectives(self) -> list[Objective]:
        return self.municipality.objectives

    async def measure(
        self,
        objective: Objective,
        period: Period,
        locale: str,
        reports: dict[Period, QualityReport] | None = None,
    ) -> Measured:
        """The objective in `period` and the periods before it; `reports` keeps the reports read
        (one per period, however many objectives share it). `locale` as for QualityService.report."""
        reports = {} if reports is None else reports

        async def report_of(p: Period) -> QualityReport:
            if p not in reports:
                reports[p] = await self.quality.report(p, locale)
            return reports[p]

        if objective.metric == "milestones_on_time":  # from the project register, not the cases' report
            listed: list[Listed] = await self.projects.listing() if self.projects is not None else []
            value = milestones_on_time(listed, period.start, period.end, objective.team)
            previous = [
                (p, milestones_on_time(listed, p.start, p.end, objective.team))
                for p in before(objective.period, period, PREVIOUS_PERIODS)
            ]
            return Measured(objective, period, value, met(objective, value), previous)
        value = figure(objective, await report_of(period))
        previous = [
            (p, figure(objective, await report_of(p)))
            for p in before(objective.period, period, PREVIOUS_PERIODS)
        ]
        return Measured(objective, period, value, met(objective, value), previous)

    async def review(self, today: date, locale: str, period: Period | None = None) -> list[Measured]:
        """Every objective for the latest full period of its kind (or the periods of its kind that
        end within `period`: for a management review)."""
        reports: dict[Period, QualityReport] = {}
        measured: list[Measured] = []
        for objective in self.objectives:
            for p in self._periods(objective, today, period):
                measured.append(await self.measure(objective, p, locale, reports))
        return measured

    def _periods(self, objective: Objective, today: date, within: Period | None) -> list[Period]:
        if within is None:
            return [latest_full(objective.period, today)]
        periods: list[Period] = []
        current = period_of(objective.period, within.start)
        while current.end <= within.end:
            if current.start >= within.start:
                periods.append(current)
            current = period_of(objective.period, current.end + timedelta(days=1))
        return periods
