"""The management review (ISO 9001, 9.3.2) in one XLSX: a sheet per input. Every figure of the
period comes from the quality report of the same period (QualityService.report, as /report), the
objectives' from ObjectiveMeter (which reads the same reports), the nonconformities and their
corrective actions from the store, the responsibility matrix as /who shows it
(bot.services.responsibility), the projects' milestones from the project register. Texts in ADMIN_LOCALE (the bot) or English (the command line)."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.services.audits import Audits
from bot.services.deadlines import WorkingCalendar
from bot.services.nonconformities import SOURCE_LABELS, STATUS_LABELS, Nonconformities
from bot.services.objectives import Measured, ObjectiveMeter, period_key
from bot.services.project_texts import localized, milestone_label, status_label
from bot.services.projects import ProjectService, met_on_time
from bot.services.proposals import Proposals
from bot.services.quality import Period, QualityReport, QualityService, rounded, tables
from bot.services.report_output import sheet_name, tables_workbook
from bot.services.responsibility import Responsibility
from bot.store.models import Audit, MilestoneStatus, NcStatus, utcnow

Table = tuple[str, list[str], list[list[Any]]]


class ManagementReview:
    def __init__(
        self,
        quality: QualityService,
        meter: ObjectiveMeter,
        nonconformities: Nonconformities,
        audits: Audits,
        proposals: Proposals,
        i18n: I18n,
        calendar: WorkingCalendar,
        locale: str,
        responsibility: Responsibility,
        projects: ProjectService,
    ) -> None:
        self.quality = quality
        self.meter = meter
        self.nonconformities = nonconformities
        self.audits = audits
        self.proposals = proposals
        self.i18n = i18n
        self.calendar = calendar
        self.locale = locale
        self.responsibility = responsibility
        self.projects = projects

    async def tables(self, period: Period) -> list[Table]:
        with self.i18n.context(), self.i18n.use_locale(self.locale):
            report = await self.quality.report(period, self.locale)
            measured = await self.meter.review(self.calendar.local_date(utcnow()), self.locale, period)
            start, end = (
                self.calendar.midnight(period.start),
                self.calendar.midnight(period.end + timedelta(days=1)),
            )
            records = await self.nonconformities.opened_between(start, end)
            audits = await self.audits.between(period.start, period.end)
            summary, *_rest = tables(report)
            return [
                summary,
                self._objectives(measured),
                self._teams(report),
                self._satisfaction(report, await self.proposals.count(period.start, period.end)),
                *self._nonconformities(records),
                self._audits(audits),
                await self._findings(audits),
                await self._responsibility(),
                await self._projects(),
            ]

    async def xlsx(self, period: Period) -> bytes:
        named = await self.tables(period)
        with self.i18n.context(), self.i18n.use_locale(self.locale):
            workbook = tables_workbook(named)
            self._chart(workbook, period)
        buffer = io.BytesIO()
        workbook.save(buffer)
        return buffer.getvalue()

    def _objectives(self, measured: list[Measured]) -> Table:
        headers = [
            _("Objective"),
            _("Scope"),
            _("Period"),
            _("Figure"),
            _("Comparison"),
            _("Target"),
            _("Met"),
            _("Previous periods"),
        ]
        rows = [
            [
                m.objective.name.get(self.locale),
                self.nonconformities.scope(m.objective),
                m.key,
                rounded(m.figure),
                m.objective.comparison,
                m.objective.target,
                _("no data") if m.met is None else (_("yes") if m.met else _("no")),
                "; ".join(
                    f"{period_key(p)}: {rounded(v) if v is not None else _('no data')}" for p, v in m.previous
                ),
            ]
            for m in measured
        ]
        return _("Objectives"), headers, rows

    def _teams(self, report: QualityReport) -> Table:
        headers = [
            _("Team"),
            _("Cases received"),
            _("Cases closed"),
            _("On time"),
            _("On time, %"),
            _("Median handling time, working days"),
            _("Passed on"),
            _("Overdue at the end of the period"),
        ]
        rows = [
            [
                t.team,
                t.received,
                t.closed,
                t.on_time,
                rounded(t.on_time_share),
                rounded(t.median_days),
                t.passed_on,
                t.overdue,
            ]
            for t in report.teams
        ]
        return _("Process performance"), headers, rows

    def _satisfaction(self, report: QualityReport, proposals: int) -> Table:
        rows: list[list[Any]] = [[f"{score} ★", report.scores[score]] for score in range(1, 6)]
        rows += [
            [_("Satisfaction answers"), report.answers],
            [_("Average satisfaction (1-5)"), rounded(report.average_score, 2)],
        ]
        rows.append([_("Residents' proposals (anonymous)"), proposals])
        return _("Satisfaction"), [_("Score"), _("Answers")], rows

    def _nonconformities(self, records: list[Any]) -> list[Table]:
        nc_rows, action_rows = [], []
        for nc, actions in records:
            effectiveness = {NcStatus.CLOSED: _("effective"), NcStatus.REOPENED: _("not effective")}.get(
                nc.status, ""
            )
            nc_rows.append(
                [
                    nc.id,
                    self.calendar.local_date(nc.opened_at).isoformat(),
                    str(SOURCE_LABELS[nc.source]),
                    self.nonconformities.teams.get(nc.team_id).name.get(self.locale),
                    str(STATUS_LABELS[nc.status]),
                    nc.description,
                    nc.correction or "",
                    nc.root_cause or "",
                    len(actions),
                    sum(1 for a in actions if a.done_at),
                    nc.check_on.isoformat() if nc.check_on else "",
                    effectiveness,
                ]
            )
            for action in actions:
                done = self.calendar.local_date(action.done_at) if action.done_at else None
                on_time = "" if done is None else (_("yes") if done <= action.due else _("no"))
                action_rows.append(
                    [
                        nc.id,
                        action.what,
                        action.owner_name or "",
                        action.due.isoformat(),
                        done.isoformat() if done else "",
                        on_time,
                        action.done_note or "",
                    ]
                )
        return [
            (
                _("Nonconformities"),
                [
                    _("No."),
                    _("Opened"),
                    _("Source"),
                    _("Team"),
                    _("Status"),
                    _("Description"),
                    _("Correction"),
                    _("Root cause"),
                    _("Actions"),
                    _("Done"),
                    _("Effectiveness check"),
                    _("Effectiveness"),
                ],
                nc_rows,
            ),
            (
                _("Corrective actions"),
                [
                    _("Nonconformity"),
                    _("Action"),
                    _("Responsible"),
                    _("Due"),
                    _("Done on"),
                    _("On time"),
                    _("Note"),
                ],
                action_rows,
            ),
        ]

    def _audits(self, audits: list[Audit]) -> Table:
        headers = [
            _("No."),
            _("Team"),
            _("Period"),
            _("Auditor"),
            _("Cases drawn"),
            _("Cases in the period"),
            _("Seed"),
        ]
        rows = [
            [
                a.id,
                self.nonconformities.teams.get(a.team_id).name.get(self.locale),
                a.period,
                a.auditor_name or str(a.auditor_id),
                len(a.case_ids),
                a.population,
                str(a.seed),
            ]
            for a in audits
        ]
        return _("Internal audits"), headers, rows

    async def _findings(self, audits: list[Audit]) -> Table:
        rows = [
            [
                f.audit_id,
                f.id,
                self.audits.finding_label(f),
                f.text,
                f.nonconformity_id or "",
                self.calendar.local_date(f.created_at).isoformat(),
            ]
            for f in await self.audits.findings([a.id for a in audits])
        ]
        return (
            _("Audit findings"),
            [_("Audit"), _("No."), _("Kind"), _("Finding"), _("Nonconformity"), _("Date")],
            rows,
        )

    async def _responsibility(self) -> Table:
        """The matrix as /who shows it now: one row per clerk's load (a team with no open case: one row)."""
        headers = [
            _("Team"),
            _("Quality team"),
            _("Handles"),
            _("Heads"),
            _("Members"),
            _("Open cases"),
            _("Responsible"),
            _("Open"),
            _("Overdue"),
        ]
        rows: list[list[Any]] = []
        for row in await self.responsibility.matrix(self.locale, self.calendar.local_date(utcnow())):
            team = [
                row.name,
                _("yes") if row.quality else "",
                "; ".join(row.handles),
                ", ".join(row.heads),
                ", ".join(row.members) or _("everyone in the group"),
                row.open,
            ]
            rows += [[*team, load.clerk, load.open, load.overdue] for load in row.loads] or [
                [*team, "", 0, 0]
            ]
        return _("Responsibility"), headers, rows

    async def _projects(self) -> Table:
        """Each project's milestones: planned (baseline), current, met on, on time (met by the baseline date)."""
        headers = [
            _("Project"),
            _("Team"),
            _("Status"),
            _("Milestone"),
            _("Planned"),
            _("Current due date"),
            _("Milestone status"),
            _("Met on"),
            _("On time"),
        ]
        rows: list[list[Any]] = []
        today = self.calendar.local_date(utcnow())
        for item in await self.projects.listing():
            project = item.project
            name = localized(project.name_pl, project.name_lt, project.name_en, self.locale)
            team = self.nonconformities.teams.get(project.team_id).name.get(self.locale)
            for m in item.milestones:
                title = localized(m.title_pl, m.title_lt, m.title_en, self.locale)
                decided = m.status != MilestoneStatus.SCHEDULED or m.baseline_due < today
                on_time = (_("yes") if met_on_time(m) else _("no")) if decided else ""
                rows.append(
                    [
                        f"{project.external_id} {name}",
                        team,
                        status_label(project.status),
                        f"{m.number}. {title}",
                        m.baseline_due.isoformat(),
                        m.current_due.isoformat(),
                        milestone_label(m.status),
                        m.met_on.isoformat() if m.met_on else "",
                        on_time,
                    ]
                )
        return _("Projects"), headers, rows

    def _chart(self, workbook: Any, period: Period) -> None:
        """A chart sheet: each team's share closed on time, from the process performance sheet."""
        from openpyxl.chart import BarChart, Reference

        source = workbook[sheet_name(_("Process performance"))]
        sheet = workbook.create_sheet(sheet_name(_("Chart")))
        chart = BarChart()
        chart.title = _("Closed within the legal deadline by team, %, {start} – {end}").format(
            start=period.start.isoformat(), end=period.end.isoformat()
        )
        chart.y_axis.title = _("On time, %")
        rows = source.max_row
        if rows > 1:
            chart.add_data(Reference(source, min_col=5, min_row=1, max_row=rows), titles_from_data=True)
            chart.set_categories(Reference(source, min_col=1, min_row=2, max_row=rows))
        chart.width, chart.height = 24, 12
        sheet.add_chart(chart, "A1")
