"""What happens at DIGEST_TIME (the municipality's time zone, 08:00 if unset): on working days
each team's digest with reminders and escalations; on WEEKLY_REPORT's day the quality report;
every day the retention of cases' personal data (bot.services.privacy), the check of projects'
milestones past their due date (bot.services.projects.ProjectService.mark_missed) and the quality
loop (bot.services.nonconformities: objectives reviewed after their period, effectiveness checks,
overdue corrective actions).

Escalation, once per working day per case: a case due within ESCALATE_WITHIN_DAYS working days
with nobody responsible goes to the team's head(s); an overdue case goes to the head(s) and to
the escalation team of the municipality file.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import date, datetime, time, timedelta
from html import escape
from typing import TYPE_CHECKING

from aiogram import Bot
from aiogram.types import BufferedInputFile
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.aio import wait_for_event
from bot.config import Config
from bot.municipality import Team
from bot.services import texts
from bot.services.case_notices import CaseNotices
from bot.services.case_queries import CaseQueries
from bot.services.collation import sorted_by_name
from bot.services.deadlines import WorkingCalendar
from bot.services.html_text import truncate_html
from bot.services.nonconformities import Nonconformities
from bot.services.privacy import DataRights
from bot.services.projects import ProjectService
from bot.services.quality import Period, QualityService
from bot.services.report_output import png, report_chart, report_message, report_xlsx, visit_chart
from bot.services.teams import TeamDirectory
from bot.store.db import Database
from bot.store.models import Case, CorrectiveAction, Nonconformity, utcnow

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)


def _png(figure: Figure | None) -> bytes | None:
    return None if figure is None else png(figure)


class Schedule:
    def __init__(
        self,
        bot: Bot,
        i18n: I18n,
        database: Database,
        queries: CaseQueries,
        notices: CaseNotices,
        teams: TeamDirectory,
        calendar: WorkingCalendar,
        config: Config,
        quality: QualityService,
        rights: DataRights,
        projects: ProjectService,
        nonconformities: Nonconformities,
    ) -> None:
        self.bot = bot
        self.i18n = i18n
        self.database = database
        self.queries = queries
        self.notices = notices
        self.teams = teams
        self.calendar = calendar
        self.config = config
        self.quality = quality
        self.rights = rights
        self.projects = projects
        self.nonconformities = nonconformities
        self.locale = config.settings.admin_locale
        self.stopping = asyncio.Event()

    # --- reading the load ---

    def due_soon_and_overdue(
        self, cases: list[Case], today: date, within: int = 3
    ) -> tuple[list[Case], list[Case]]:
        horizon = self.calendar.add_working_days(today, within)
        return [c for c in cases if today <= c.due <= horizon], [c for c in cases if c.due < today]

    # --- the digest ---

    async def digest(self, today: date, teams: list[Team] | None = None) -> None:
        """Per team, in its group: cases due within 3 working days and overdue ones, by responsible
        clerk; a reminder in each such case's topic; escalations."""
        for team in teams or self.teams.teams:
            cases = await self.queries.open_cases(team)
            soon, overdue = self.due_soon_and_overdue(cases, today)
            actions = await self.nonconformities.actions_due(
                team.id, self.calendar.add_working_days(today, 3)
            )
            due_actions = self._actions_text(actions, today)
            digest = texts.shorten(self._digest_text(team, today, soon, overdue), 4000 - len(due_actions))
            await self.notices.post_to_group(self.teams.chat_of(team), digest + due_actions)
            for case in overdue + soon:
                await self.notices.remind(case, self._reminder(case, today))
            await self._escalate(team, cases, today)

    def _digest_text(self, team: Team, today: date, soon: list[Case], overdue: list[Case]) -> str:
        with self.i18n.context(), self.i18n.use_locale(self.locale):
            lines = [
                _("📋 <b>Daily digest</b> of {team}, {date}").format(
                    team=escape(team.name.get(self.locale)), date=texts.day(today)
                )
            ]
            for title, cases in ((_("Overdue"), overdue), (_("Due within 3 working days"), soon)):
                lines += ["", f"<b>{title}</b> ({len(cases)})"]
                by_responsible: dict[str, list[Case]] = {}
                for case in cases:
                    by_responsible.setdefault(case.assignee_name or _("nobody responsible"), []).append(case)
                for name, own in sorted_by_name(
                    by_responsible.items(), self.locale, name=lambda item: item[0]
                ):
                    lines.append(
                        f"👤 {escape(name)}: " + ", ".join(f"{c.number} ({texts.day(c.due)})" for c in own)
                    )
            if not soon and not overdue:
                lines += ["", _("Nothing is due soon and nothing is overdue.")]
        return truncate_html("\n".join(lines))

    def _actions_text(self, actions: list[tuple[Nonconformity, CorrectiveAction]], today: date) -> str:
        """Corrective actions of the team due within 3 working days or overdue, with who is responsible."""
        if not actions:
            return ""
        with self.i18n.context(), self.i18n.use_locale(self.locale):
            lines = ["", "", _("<b>Corrective actions due</b> ({count})").format(count=len(actions))]
            for nc, action in actions:
                late = " ⏰" if action.due < today else ""
                lines.append(
                    f"#{nc.id} · {escape(texts.shorten(action.what, 200))} · 👤 {escape(action.owner_name or '—')} · {texts.day(action.due)}{late}"
                )
        return truncate_html("\n".join(lines), 1000)

    def _reminder(self, case: Case, today: date) -> str:
        with self.i18n.context(), self.i18n.use_locale(self.locale):
            left = self.calendar.working_days_left(today, case.due)
            return _("⏰ Reminder: the deadline is {date} ({left}).").format(
                date=texts.day(case.due), left=texts.days_left(today, case.due, left)
            )

    async def _escalate(self, team: Team, cases: list[Case], today: date) -> None:
        within = self.config.settings.escalate_within_days
        horizon = self.calendar.add_working_days(today, within)
        escalation = self.teams.escalation
        for case in cases:
            overdue = case.due < today
            unattended = case.assignee_id is None and case.due <= horizon
            if not (overdue or unattended):
                continue
            posts = [
                (self.teams.chat_of(team), self._escalation_text(case, team, today, overdue, for_heads=True))
            ]
            if overdue and escalation is not None and escalation.id != team.id:
                posts.append(
                    (
                        self.teams.chat_of(escalation),
                        self._escalation_text(case, team, today, overdue, for_heads=False),
                    )
                )
            await self.notices.escalate(case, today.isoformat(), posts)

    def _escalation_text(self, case: Case, team: Team, today: date, overdue: bool, for_heads: bool) -> str:
        with self.i18n.context(), self.i18n.use_locale(self.locale):
            left = self.calendar.working_days_left(today, case.due)
            due = f"{texts.day(case.due)} ({texts.days_left(today, case.due, left)})"
            label = _("head")
            heads = (
                ", ".join(f'<a href="tg://user?id={head}">{label}</a>' for head in team.heads)
                if team.heads
                else _("the team's head")
            )
            who = escape(case.assignee_name) if case.assignee_name else _("nobody responsible")
            if overdue:
                text = _(
                    "🚨 {number} of {team} is overdue: the deadline was {due}; responsible: {who}."
                ).format(number=case.number, team=escape(team.name.get(self.locale)), due=due, who=who)
            else:
                text = _("⚠️ {number} is due {due} and nobody is responsible for it.").format(
                    number=case.number, due=due
                )
            return f"{heads}: {text}" if for_heads else text

    # --- running ---

    async def run(self) -> None:
        """The day's work at DIGEST_TIME, until `stop`: a job under way is finished first."""
        settings = self.config.settings
        at = settings.digest_time or time(8, 0)
        while not self.stopping.is_set():
            now = utcnow().astimezone(self.calendar.tz)
            target = datetime.combine(now.date(), at, tzinfo=self.calendar.tz)
            if target <= now:
                target += timedelta(days=1)
            if await wait_for_event(self.stopping, (target - now).total_seconds()):
                return
            for name, job in self._jobs_of(target.date()):
                if self.stopping.is_set():
                    return
                await self._guarded(name, job())

    def _jobs_of(self, today: date) -> list[tuple[str, Callable[[], Awaitable[object]]]]:
        settings = self.config.settings
        jobs: list[tuple[str, Callable[[], Awaitable[object]]]] = []
        if settings.digest_time is not None and self.calendar.is_working_day(today):
            jobs.append(("digest", functools.partial(self.digest, today)))
        if today.weekday() == settings.weekly_report_weekday:
            period = Period(today - timedelta(days=7), today - timedelta(days=1))
            jobs.append(
                (
                    "weekly report",
                    functools.partial(self.post_report, self.teams.chat_of(self.teams.default), period),
                )
            )
        jobs.append(("retention", lambda: self.rights.purge_expired(utcnow())))
        jobs.append(("milestones", functools.partial(self.projects.mark_missed, today)))
        jobs.append(("quality loop", functools.partial(self.nonconformities.daily, today)))
        return jobs

    def stop(self) -> None:
        """`run` returns after the job under way, never amid it: a task cancelled inside a SQLite
        write can leave its transaction open (see Outbox.stop)."""
        self.stopping.set()

    async def _guarded(self, name: str, work: object) -> None:
        try:
            await work  # type: ignore[misc]
        except Exception:
            log.exception("scheduled work failed", extra={"what": name})

    # --- the quality report ---

    async def post_report(
        self, chat_id: int, period: Period, thread_id: int | None = None, teams: list[Team] | None = None
    ) -> None:
        """The quality report for `period`: a message, the chart and the XLSX file; of the whole
        municipality, or only of `teams` (see QualityService.report)."""
        with self.i18n.context(), self.i18n.use_locale(self.locale):
            report = await self.quality.report(period, self.locale, teams)
            text = report_message(report)
            # Drawing takes a moment of CPU: off the event loop (the locale goes along).
            chart, visits, workbook = await asyncio.to_thread(
                lambda: (png(report_chart(report)), _png(visit_chart(report)), report_xlsx(report))
            )
            caption = _("Weekly trend and satisfaction, {start} – {end}").format(
                start=texts.day(period.start), end=texts.day(period.end)
            )
            visits_caption = _("Visit surveys per place, {start} – {end}").format(
                start=texts.day(period.start), end=texts.day(period.end)
            )
        name = f"quality-{period.start.isoformat()}-{period.end.isoformat()}"
        await self.bot.send_message(chat_id, text, message_thread_id=thread_id)
        await self.bot.send_photo(
            chat_id, BufferedInputFile(chart, f"{name}.png"), caption=caption, message_thread_id=thread_id
        )
        if visits is not None:
            await self.bot.send_photo(
                chat_id,
                BufferedInputFile(visits, f"visits-{name}.png"),
                caption=visits_caption,
                message_thread_id=thread_id,
            )
        await self.bot.send_document(
            chat_id, BufferedInputFile(workbook, f"{name}.xlsx"), message_thread_id=thread_id
        )
