"""Internal audits (ISO 9001, 9.2): `/audit TEAM PERIOD` in the quality group draws a random sample
of the team's cases received in the period (AUDIT_SAMPLE_SIZE), stores the seed so that the same
sample can be drawn again, and posts each case's trail with the auditor's checklist to the quality
group (through the outbox). An auditor never audits their own team. Findings become
nonconformities with `/nc TEAM …` (bot.services.nonconformities)."""

from __future__ import annotations

import random
import secrets
from datetime import date, timedelta
from html import escape

from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import lazy_gettext as __
from sqlalchemy import or_, select
from sqlmodel import col

from bot.services import texts
from bot.services.case_commands import Clerk
from bot.services.deadlines import WorkingCalendar
from bot.services.groups import ClerkTexts
from bot.services.nonconformities import NcError, Nonconformities
from bot.services.objectives import period_key
from bot.services.outbox import Kind, enqueue, group_key
from bot.services.quality import Period
from bot.services.teams import TeamDirectory
from bot.store.db import Database
from bot.store.models import Audit, Case, CaseEvent

CHECKLIST = (
    __("answered within the legal deadline"),
    __("the answer addresses the request"),
    __("the reasons for extensions were given"),
    __("the resident was told of each change"),
)


def draw(case_ids: list[int], seed: int, size: int) -> list[int]:
    """The sample: the same cases, seed and size always give the same ids (in order)."""
    population = sorted(case_ids)
    return sorted(random.Random(seed).sample(population, min(size, len(population))))


class Audits:
    def __init__(
        self, database: Database, calendar: WorkingCalendar, teams: TeamDirectory, nonconformities: Nonconformities, clerk_texts: ClerkTexts,
        i18n: I18n, locale: str, sample_size: int,
    ) -> None:  # fmt: skip
        self.database = database
        self.calendar = calendar
        self.teams = teams
        self.nonconformities = nonconformities
        self.clerk_texts = clerk_texts
        self.i18n = i18n
        self.locale = locale
        self.sample_size = sample_size

    async def between(self, first: date, last: date) -> list[Audit]:
        """Audits of periods that overlap the days from `first` to `last`."""
        async with self.database.read() as session:
            query = select(Audit).where(col(Audit.start) <= last, col(Audit.end) >= first).order_by(col(Audit.id))
            return list((await session.execute(query)).scalars())

    async def start(self, team_id: str, period: Period, auditor: Clerk) -> Audit:
        team = self.nonconformities.team(team_id)
        if (await self.teams.role(auditor.id, team)).acts:
            raise NcError(__("An auditor never audits their own team; please ask another member of the quality staff."))
        start, end = self.calendar.midnight(period.start), self.calendar.midnight(period.end + timedelta(days=1))
        mine = col(Case.team_id) == team.id
        async with self.database.write() as session:
            query = select(col(Case.id)).where(col(Case.received_at) >= start, col(Case.received_at) < end)
            query = query.where(or_(mine, col(Case.team_id).is_(None)) if team.id == self.teams.default.id else mine)
            population = list((await session.execute(query)).scalars())
            seed = secrets.randbits(48)
            audit = Audit(
                team_id=team.id, period=period_key(period), start=period.start, end=period.end, auditor_id=auditor.id, auditor_name=auditor.name,
                seed=seed, sample_size=self.sample_size, population=len(population), case_ids=draw(population, seed, self.sample_size),
            )  # fmt: skip
            session.add(audit)
            await session.flush()
            cases = list((await session.execute(select(Case).where(col(Case.id).in_(audit.case_ids)).order_by(col(Case.id)))).scalars())
            events = list((await session.execute(select(CaseEvent).where(col(CaseEvent.case_id).in_(audit.case_ids)).order_by(col(CaseEvent.id)))).scalars())
            chat = self.nonconformities.quality_chat()
            for text in [
                self._heading(audit, team.name.get(self.locale)),
                *(self._case_text(case, [e for e in events if e.case_id == case.id]) for case in cases),
            ]:
                enqueue(session, Kind.MESSAGE, chat, key=group_key(chat), payload={"text": text})
        return audit

    def _heading(self, audit: Audit, team: str) -> str:
        with self.i18n.context(), self.i18n.use_locale(self.locale):
            return _(
                "🧾 <b>Internal audit #{id}</b> of {team}, {period}: {sample} of {population} cases drawn (seed {seed}). Auditor: {auditor}."
            ).format(
                id=audit.id, team=escape(team), period=audit.period, sample=len(audit.case_ids), population=audit.population, seed=audit.seed,
                auditor=escape(audit.auditor_name or str(audit.auditor_id)),
            )  # fmt: skip

    def _case_text(self, case: Case, events: list[CaseEvent]) -> str:
        with self.i18n.context(), self.i18n.use_locale(self.locale):
            closed = self.calendar.local_date(case.closed_at) if case.closed_at else None
            verdict = _("not closed") if closed is None else (_("closed on time") if closed <= case.due else _("closed late"))
            checklist = "\n".join(f"☐ {item}" for item in CHECKLIST)
            footer = "\n\n" + _("Due: {date} · {verdict}").format(date=texts.day(case.due), verdict=verdict) + "\n" + checklist
        return self.clerk_texts.trail(case, events, budget=4000 - len(footer)) + footer
