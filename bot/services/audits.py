"""Internal audits (ISO 9001, 9.2): `/audit TEAM PERIOD` in the quality group draws a random sample
of the team's cases received in the period (AUDIT_SAMPLE_SIZE), stores the seed so that the same
sample can be drawn again, and posts each case's trail with the auditor's checklist to the quality
group (through the outbox); the checklist's buttons record the answers on the audit. An auditor
never audits their own team. Findings (`/finding AUDIT KIND [CASE] text`) are a nonconformity
(which opens one, linked to the audit and the case), an observation or an opportunity for
improvement; `report` is the audit in one XLSX: the sample, the checklist's answers, the findings.
Satisfaction ratings are anonymous (no case), so a case's trail cannot show its rating."""

from __future__ import annotations

import io
import random
import re
import secrets
from datetime import date, timedelta
from html import escape
from typing import Any

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import lazy_gettext as __
from sqlalchemy import or_, select
from sqlmodel import col

from bot.keyboards import InlineKeyboardBuilder
from bot.municipality import PlannedAudit
from bot.services import texts
from bot.services.case_commands import Clerk
from bot.services.deadlines import WorkingCalendar
from bot.services.groups import ClerkTexts
from bot.services.nonconformities import NcError, Nonconformities, check_text
from bot.services.numbers import RowId
from bot.services.objectives import period_key
from bot.services.outbox import enqueue, group_key
from bot.services.outbox_payloads import MessagePayload
from bot.services.quality import Period
from bot.services.report_output import tables_workbook
from bot.services.teams import TeamDirectory
from bot.store.db import Database
from bot.store.models import Audit, AuditFinding, Case, CaseEvent, EventKind, FindingKind, NcSource

CHECKLIST = (
    __("answered within the legal deadline"),
    __("the answer addresses the request"),
    __("the reasons for extensions were given"),
    __("the resident was told of each change"),
)


CASE_NUMBER = re.compile(r"[A-Za-z]{1,10}-[0-9]{4}-[0-9]{6}")  # bot.services.cases.format_case_number
FINDING_LABELS = {
    FindingKind.NONCONFORMITY: __("nonconformity"),
    FindingKind.OBSERVATION: __("observation"),
    FindingKind.IMPROVEMENT: __("opportunity for improvement"),
}


class AuditButton(CallbackData, prefix="au"):
    """A checklist answer: item (1 to 4 of CHECKLIST) of a sampled case, yes (1) or no (0)."""

    audit_id: RowId
    case_id: RowId
    item: int
    yes: int


def draw(case_ids: list[int], seed: int, size: int) -> list[int]:
    """The sample: the same cases, seed and size always give the same ids (in order)."""
    population = sorted(case_ids)
    return sorted(random.Random(seed).sample(population, min(size, len(population))))


class Audits:
    def __init__(
        self,
        database: Database,
        calendar: WorkingCalendar,
        teams: TeamDirectory,
        nonconformities: Nonconformities,
        clerk_texts: ClerkTexts,
        i18n: I18n,
        locale: str,
        sample_size: int,
    ) -> None:
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
            query = (
                select(Audit).where(col(Audit.start) <= last, col(Audit.end) >= first).order_by(col(Audit.id))
            )
            return list((await session.execute(query)).scalars())

    async def programme(self) -> list[tuple[PlannedAudit, Audit | None]]:
        """The audit programme of the municipality file, each with the audit made for it (the
        latest of that team and period), if any."""
        planned = self.nonconformities.municipality.audit_programme
        async with self.database.read() as session:
            made = list(
                (
                    await session.execute(
                        select(Audit)
                        .where(col(Audit.team_id).in_([p.team for p in planned]))
                        .order_by(col(Audit.id))
                    )
                ).scalars()
            )
        return [
            (p, next((a for a in reversed(made) if a.team_id == p.team and a.period == p.period), None))
            for p in planned
        ]

    async def auditor_name(self, planned: PlannedAudit) -> str:
        return await self.teams.member_name(self.nonconformities.quality_team, planned.auditor)

    async def _independent(self, team_id: str, person: Clerk) -> None:
        """An auditor never audits their own team: not the start, nor an answer, nor a finding."""
        if (await self.teams.role(person.id, self.nonconformities.team(team_id))).acts:
            raise NcError(
                __("An auditor never audits their own team; please ask another member of the quality staff.")
            )

    async def start(self, team_id: str, period: Period, auditor: Clerk) -> Audit:
        team = self.nonconformities.team(team_id)
        await self._independent(team.id, auditor)
        planned = next(
            (
                p
                for p in self.nonconformities.municipality.audit_programme
                if p.team == team.id and p.period == period_key(period)
            ),
            None,
        )
        if planned is not None and planned.auditor != auditor.id:
            raise NcError(
                __("The audit programme names another auditor for this audit: {auditor}."),
                auditor=await self.auditor_name(planned),
            )
        start, end = (
            self.calendar.midnight(period.start),
            self.calendar.midnight(period.end + timedelta(days=1)),
        )
        mine = col(Case.team_id) == team.id
        async with self.database.write() as session:
            query = select(col(Case.id)).where(col(Case.received_at) >= start, col(Case.received_at) < end)
            query = query.where(
                or_(mine, col(Case.team_id).is_(None)) if team.id == self.teams.default.id else mine
            )
            population = list((await session.execute(query)).scalars())
            seed = secrets.randbits(48)
            audit = Audit(
                team_id=team.id,
                period=period_key(period),
                start=period.start,
                end=period.end,
                auditor_id=auditor.id,
                auditor_name=auditor.name,
                seed=seed,
                sample_size=self.sample_size,
                population=len(population),
                case_ids=draw(population, seed, self.sample_size),
            )
            session.add(audit)
            await session.flush()
            cases = list(
                (
                    await session.execute(
                        select(Case).where(col(Case.id).in_(audit.case_ids)).order_by(col(Case.id))
                    )
                ).scalars()
            )
            events = list(
                (
                    await session.execute(
                        select(CaseEvent)
                        .where(col(CaseEvent.case_id).in_(audit.case_ids))
                        .order_by(col(CaseEvent.id))
                    )
                ).scalars()
            )
            chat = self.nonconformities.quality_chat()
            enqueue(
                session,
                MessagePayload(text=self._heading(audit, team.name.get(self.locale))),
                chat,
                key=group_key(chat),
            )
            for case in cases:
                payload = MessagePayload(
                    text=self._case_text(case, [e for e in events if e.case_id == case.id]),
                    keyboard=self.checklist_keyboard(audit, case.id).model_dump(
                        mode="json", exclude_none=True
                    ),
                )
                enqueue(session, payload, chat, key=group_key(chat))
        return audit

    async def get(self, audit_id: int) -> Audit:
        async with self.database.read() as session:
            audit = await session.get(Audit, audit_id)
        if audit is None:
            raise NcError(__("There is no internal audit #{id}."), id=audit_id)
        return audit

    async def answer(self, audit_id: int, case_id: int, item: int, yes: bool, by: Clerk) -> Audit:
        """The auditor's answer to one checklist item for one sampled case (a later answer replaces it)."""
        async with self.database.write() as session:
            audit = await session.get(Audit, audit_id, with_for_update=True)
            if audit is None or case_id not in audit.case_ids or not 1 <= item <= len(CHECKLIST):
                raise NcError(__("This checklist no longer matches the audit."))
            await self._independent(audit.team_id, by)
            answers = {
                key: dict(value) for key, value in audit.checklist.items()
            }  # a new value, so that the JSON column is written
            answers.setdefault(str(case_id), {})[str(item)] = yes
            audit.checklist = answers
        return audit

    def checklist_keyboard(self, audit: Audit, case_id: int) -> InlineKeyboardMarkup:
        """A row per checklist item: yes and no, the answer given marked."""
        given = audit.checklist.get(str(case_id), {})
        builder = InlineKeyboardBuilder()
        for item in range(1, len(CHECKLIST) + 1):
            for yes, mark in ((1, "✅"), (0, "❌")):
                chosen = given.get(str(item)) == bool(yes)
                builder.button(
                    text=f"{'● ' if chosen else ''}{item} {mark}",
                    callback_data=AuditButton(audit_id=audit.id, case_id=case_id, item=item, yes=yes),
                )
        builder.adjust(2)
        return builder.as_markup()

    async def add_finding(self, audit_id: int, kind: str, text: str, author: Clerk) -> AuditFinding:
        """A finding on the audit; `text` may start with a sampled case's number, which links the
        case. A nonconformity's finding opens the nonconformity in the same transaction."""
        try:
            finding_kind = FindingKind(kind.strip().lower())
        except ValueError:
            raise NcError(
                __(
                    "The kind of a finding is nc (nonconformity), obs (observation) or ofi (opportunity for improvement)."
                )
            ) from None
        audit = await self.get(audit_id)
        await self._independent(audit.team_id, author)
        first, _space, rest = text.strip().partition(" ")
        async with self.database.write() as session:
            sampled = (
                await session.execute(
                    select(col(Case.number), col(Case.id)).where(col(Case.id).in_(audit.case_ids))
                )
            ).all()
            case_id = next((row[1] for row in sampled if row[0].lower() == first.lower()), None)
            if case_id is None and CASE_NUMBER.fullmatch(first):  # a case number, but not of the sample
                raise NcError(
                    __("Case {number} is not in the sample of audit #{id}."), number=first, id=audit.id
                )
            description = check_text(rest if case_id is not None else text)
            finding = AuditFinding(
                audit_id=audit.id,
                kind=finding_kind,
                text=description,
                case_id=case_id,
                author_id=author.id,
                author_name=author.name,
            )
            if finding_kind == FindingKind.NONCONFORMITY:
                with self.i18n.context(), self.i18n.use_locale(self.locale):
                    opened = _("Internal audit #{id}: {finding}").format(id=audit.id, finding=description)
                nc = await self.nonconformities.open_in(
                    session,
                    NcSource.AUDIT,
                    texts.shorten(opened, 3000),
                    audit.team_id,
                    author,
                    [case_id] if case_id else [],
                )
                finding.nonconformity_id = nc.id
            session.add(finding)
        return finding

    async def findings(self, audit_ids: list[int]) -> list[AuditFinding]:
        async with self.database.read() as session:
            query = (
                select(AuditFinding)
                .where(col(AuditFinding.audit_id).in_(audit_ids))
                .order_by(col(AuditFinding.audit_id), col(AuditFinding.id))
            )
            return list((await session.execute(query)).scalars())

    def finding_label(self, finding: AuditFinding) -> str:
        return str(FINDING_LABELS[FindingKind(finding.kind)])

    # --- the audit's report ---

    async def report_tables(self, audit_id: int) -> list[tuple[str, list[str], list[list[Any]]]]:
        """The audit, its sample (with the checklist's answers) and its findings, as (title, headers, rows)."""
        audit = await self.get(audit_id)
        async with self.database.read() as session:
            cases = list(
                (
                    await session.execute(
                        select(Case).where(col(Case.id).in_(audit.case_ids)).order_by(col(Case.id))
                    )
                ).scalars()
            )
            events = list(
                (
                    await session.execute(select(CaseEvent).where(col(CaseEvent.case_id).in_(audit.case_ids)))
                ).scalars()
            )
        findings = await self.findings([audit.id])
        numbers = {case.id: case.number for case in cases}
        municipality = self.nonconformities.municipality
        with self.i18n.context(), self.i18n.use_locale(self.locale):
            yes_no = {True: _("yes"), False: _("no")}
            summary: list[list[Any]] = [
                [_("Internal audit"), audit.id],
                [_("Team"), self.teams.get(audit.team_id).name.get(self.locale)],
                [_("Period"), audit.period],
                [_("Auditor"), audit.auditor_name or str(audit.auditor_id)],
                [_("Cases in the period"), audit.population],
                [_("Cases drawn"), len(audit.case_ids)],
                [_("Seed"), str(audit.seed)],
                [_("Findings"), len(findings)],
            ]
            sample = []
            for case in cases:
                mine = [e for e in events if e.case_id == case.id]
                closed = self.calendar.local_date(case.closed_at) if case.closed_at else None
                verdict = (
                    _("not closed")
                    if closed is None
                    else (_("closed on time") if closed <= case.due else _("closed late"))
                )
                given = audit.checklist.get(str(case.id), {})
                category = municipality.category_by_id.get(case.category_id)
                sample.append(
                    [
                        case.number,
                        category.get(self.locale) if category else case.category_id,
                        self.calendar.local_date(case.received_at).isoformat(),
                        case.due.isoformat(),
                        closed.isoformat() if closed else "",
                        verdict,
                        sum(1 for e in mine if e.kind == EventKind.PASSED),
                        sum(1 for e in mine if e.kind == EventKind.EXTENDED),
                        sum(1 for e in mine if e.kind == EventKind.MESSAGE_OUT),
                        *(
                            yes_no[given[str(item)]] if str(item) in given else ""
                            for item in range(1, len(CHECKLIST) + 1)
                        ),
                    ]
                )
            found = [
                [
                    f.id,
                    self.finding_label(f),
                    numbers.get(f.case_id, "") if f.case_id else "",
                    f.text,
                    f.nonconformity_id or "",
                    f.author_name or str(f.author_id),
                    self.calendar.local_date(f.created_at).isoformat(),
                ]
                for f in findings
            ]
            sample_headers = [
                _("Case"),
                _("Category"),
                _("Received"),
                _("Due"),
                _("Closed"),
                _("On time"),
                _("Passed on"),
                _("Extensions"),
                _("Answers sent"),
                *(str(item) for item in CHECKLIST),
            ]
            return [
                (_("Audit"), [_("Item"), _("Value")], summary),
                (_("Sample"), sample_headers, sample),
                (
                    _("Findings"),
                    [
                        _("No."),
                        _("Kind"),
                        _("Case"),
                        _("Finding"),
                        _("Nonconformity"),
                        _("Author"),
                        _("Date"),
                    ],
                    found,
                ),
            ]

    async def report(self, audit_id: int) -> bytes:
        """The audit's report as one XLSX."""
        named = await self.report_tables(audit_id)
        buffer = io.BytesIO()
        tables_workbook(named).save(buffer)
        return buffer.getvalue()

    def _heading(self, audit: Audit, team: str) -> str:
        with self.i18n.context(), self.i18n.use_locale(self.locale):
            return _(
                "🧾 <b>Internal audit #{id}</b> of {team}, {period}: {sample} of {population} cases drawn (seed {seed}). Auditor: {auditor}."
            ).format(
                id=audit.id,
                team=escape(team),
                period=audit.period,
                sample=len(audit.case_ids),
                population=audit.population,
                seed=audit.seed,
                auditor=escape(audit.auditor_name or str(audit.auditor_id)),
            )

    def _case_text(self, case: Case, events: list[CaseEvent]) -> str:
        with self.i18n.context(), self.i18n.use_locale(self.locale):
            closed = self.calendar.local_date(case.closed_at) if case.closed_at else None
            verdict = (
                _("not closed")
                if closed is None
                else (_("closed on time") if closed <= case.due else _("closed late"))
            )
            checklist = "\n".join(f"☐ {number}. {item}" for number, item in enumerate(CHECKLIST, start=1))
            footer = (
                "\n\n"
                + _("Due: {date} · {verdict}").format(date=texts.day(case.due), verdict=verdict)
                + "\n"
                + checklist
            )
        return self.clerk_texts.trail(case, events, budget=4000 - len(footer)) + footer
