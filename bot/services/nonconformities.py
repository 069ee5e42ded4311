"""Nonconformities and corrective actions (ISO 9001, 10.2), and the quality loop's daily work.

A nonconformity is opened by an objective not met at its period's end, by a clerk from a case's
topic (`/nc`, the case linked) or by the quality staff (`/nc <team> …` in the quality group). Its
owner (the team's head by default) writes the immediate correction and the root cause, adds
corrective actions (what, who, by when) and marks them done; after the last one the
effectiveness check is set 30, 60 or 90 days on. On that day, a nonconformity that came from an
objective has the objective's figure measured again for the latest full period, and "effective"
or "not effective" is proposed to the quality manager (a head or an admin of the quality team);
otherwise the manager decides. Not effective reopens it for new actions. Each change is in its
trail (NcEvent: who, when, why) and brings its card up to date in the quality group and the team's
group (an NC_CARD outbox row: posted the first time, edited in place after, see NcCardSender).
The daily run also opens one per team and ISO week from the cases themselves (`from_cases`, the
municipality file's `nc_rules`). Bad input raises NcError and changes nothing.

Where quality matters go: `Municipality.quality_team` (the team marked `quality = true`, else
the default team).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from html import escape
from typing import TYPE_CHECKING, Any

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import lazy_gettext as __
from sqlalchemy import select
from sqlmodel import col

from bot.keyboards import InlineKeyboardBuilder
from bot.municipality import Municipality, Objective, Team
from bot.services import texts
from bot.services.case_commands import Clerk
from bot.services.deadlines import WorkingCalendar
from bot.services.html_text import truncate_html
from bot.services.numbers import RowId
from bot.services.objectives import Measured, ObjectiveMeter, latest_full, period_key
from bot.services.outbox import Kind, Permanent, Sent, enqueue, group_key, pending_row
from bot.services.outbox_payloads import MessagePayload, NcCardPayload
from bot.services.quality import MIN_GROUP
from bot.services.teams import Role, TeamDirectory
from bot.store.db import Database
from bot.store.models import (
    Case,
    CorrectiveAction,
    NcCard,
    NcEvent,
    NcSource,
    NcStatus,
    Nonconformity,
    ObjectiveReview,
    OutboxMessage,
    ResolvedAnswer,
    SatisfactionAnswer,
    utcnow,
)

if TYPE_CHECKING:
    from babel.support import LazyProxy
    from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger(__name__)

TEXT_MIN, TEXT_MAX = 3, 3000
CHECK_DAYS = (30, 60, 90)  # the effectiveness check, after the last action is done
WORKS_ON = (NcStatus.ANALYSED, NcStatus.ACTIONS, NcStatus.REOPENED)  # actions may be added

STATUS_LABELS: dict[str, LazyProxy] = {
    NcStatus.OPEN: __("open"),
    NcStatus.ANALYSED: __("analysed"),
    NcStatus.ACTIONS: __("actions under way"),
    NcStatus.VERIFYING: __("being verified"),
    NcStatus.CLOSED: __("closed, effective"),
    NcStatus.REOPENED: __("reopened, not effective"),
}
SOURCE_LABELS: dict[str, LazyProxy] = {
    NcSource.OBJECTIVE: __("objective not met"),
    NcSource.CLERK: __("reported by a clerk"),
    NcSource.QUALITY: __("quality staff"),
    NcSource.AUDIT: __("internal audit"),
    NcSource.CASES: __("cases' rules, weekly"),
}


def iso_week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def iso_week(day: date) -> str:
    """2026-W49: the ISO week that holds `day`."""
    year, week, _weekday = day.isocalendar()
    return f"{year}-W{week:02d}"


class NcButton(CallbackData, prefix="nc"):
    """A button of a nonconformity's card: analyse, add, done (with the action), check (days),
    effective, not_effective, owner (the action's owner), cancel."""

    nc_id: RowId
    do: str
    value: int = 0


class NcError(ValueError):
    """Why something cannot be done; str() in the gettext locale current when it is shown."""

    def __init__(self, reason: LazyProxy, **values: object) -> None:
        super().__init__()
        self.reason, self.values = reason, values

    def __str__(self) -> str:
        return str(self.reason).format(**self.values)


def check_text(text: str) -> str:
    text = text.strip()
    if not TEXT_MIN <= len(text) <= TEXT_MAX:
        raise NcError(
            __("Please write {min} to {max} character.", "Please write {min} to {max} characters.", TEXT_MAX),
            min=TEXT_MIN,
            max=TEXT_MAX,
        )
    return text


def parse_due(text: str, today: date) -> date:
    """A due date typed as YYYY-MM-DD, today or later."""
    try:
        due = date.fromisoformat(text.strip())
    except ValueError:
        raise NcError(
            __("Write the date as YYYY-MM-DD, e.g. {example}."),
            example=(today + timedelta(days=14)).isoformat(),
        ) from None
    if due < today:
        raise NcError(
            __("The due date {date} is in the past; choose today or a later day."), date=due.isoformat()
        )
    if due > today + timedelta(days=3 * 366):
        raise NcError(__("Choose a due date within three years."))
    return due


class Nonconformities:
    def __init__(
        self,
        database: Database,
        calendar: WorkingCalendar,
        municipality: Municipality,
        teams: TeamDirectory,
        i18n: I18n,
        meter: ObjectiveMeter,
        locale: str,
    ) -> None:
        self.database = database
        self.calendar = calendar
        self.municipality = municipality
        self.teams = teams
        self.i18n = i18n
        self.meter = meter
        self.locale = locale

    # --- who ---

    @property
    def quality_team(self) -> Team:
        return self.municipality.quality_team

    def quality_chat(self) -> int:
        return self.teams.chat_of(self.quality_team)

    def is_quality_chat(self, chat_id: int) -> bool:
        return chat_id == self.quality_chat()

    async def is_quality_staff(self, user_id: int) -> bool:
        return (await self.teams.role(user_id, self.quality_team)).acts

    async def is_manager(self, user_id: int) -> bool:
        """The quality manager: a head of the quality team, or an admin of its group."""
        return await self.teams.role(user_id, self.quality_team) in (Role.HEAD, Role.ADMIN)

    async def may_work_on(self, user_id: int, nc: Nonconformity) -> bool:
        """The nonconformity's team (its members, heads, group admins) and the quality staff."""
        return (
            await self.teams.role(user_id, self.teams.get(nc.team_id))
        ).acts or await self.is_quality_staff(user_id)

    def team(self, team_id: str) -> Team:
        team = self.municipality.team_by_id.get(team_id)
        if team is None:
            known = ", ".join(t.id for t in self.teams.teams)
            raise NcError(__("There is no team {team}. Teams: {teams}."), team=team_id, teams=known)
        return team

    # --- reading ---

    async def get(self, nc_id: int) -> Nonconformity | None:
        async with self.database.read() as session:
            return await session.get(Nonconformity, nc_id)

    async def actions(self, nc_id: int) -> list[CorrectiveAction]:
        async with self.database.read() as session:
            return list(
                (
                    await session.execute(
                        select(CorrectiveAction)
                        .where(col(CorrectiveAction.nonconformity_id) == nc_id)
                        .order_by(col(CorrectiveAction.id))
                    )
                ).scalars()
            )

    async def trail(self, nc_id: int) -> list[NcEvent]:
        async with self.database.read() as session:
            return list(
                (
                    await session.execute(
                        select(NcEvent)
                        .where(col(NcEvent.nonconformity_id) == nc_id)
                        .order_by(col(NcEvent.id))
                    )
                ).scalars()
            )

    async def actions_due(self, team_id: str, until: date) -> list[tuple[Nonconformity, CorrectiveAction]]:
        """The team's corrective actions not done and due by `until` (the overdue ones too)."""
        query = (
            select(Nonconformity, CorrectiveAction)
            .join(CorrectiveAction, col(CorrectiveAction.nonconformity_id) == col(Nonconformity.id))
            .where(
                col(Nonconformity.team_id) == team_id,
                col(CorrectiveAction.done_at).is_(None),
                col(CorrectiveAction.due) <= until,
            )
            .order_by(col(CorrectiveAction.due), col(CorrectiveAction.id))
        )
        async with self.database.read() as session:
            return [(row[0], row[1]) for row in (await session.execute(query)).all()]

    async def opened_between(
        self, start: datetime, end: datetime
    ) -> list[tuple[Nonconformity, list[CorrectiveAction]]]:
        """Nonconformities opened in [start, end), or still not closed at `start`, with their actions."""
        async with self.database.read() as session:
            rows = list(
                (
                    await session.execute(
                        select(Nonconformity)
                        .where(col(Nonconformity.opened_at) < end)
                        .order_by(col(Nonconformity.id))
                    )
                ).scalars()
            )
            rows = [
                nc for nc in rows if nc.opened_at >= start or nc.closed_at is None or nc.closed_at >= start
            ]
            actions = list(
                (
                    await session.execute(
                        select(CorrectiveAction).where(
                            col(CorrectiveAction.nonconformity_id).in_([nc.id for nc in rows])
                        )
                    )
                ).scalars()
            )
        return [
            (nc, sorted((a for a in actions if a.nonconformity_id == nc.id), key=lambda a: a.id))
            for nc in rows
        ]

    # --- changes ---

    async def open(
        self,
        source: NcSource,
        description: str,
        team_id: str,
        actor: Clerk | None,
        case_ids: Iterable[int] = (),
        measured: Measured | None = None,
    ) -> Nonconformity:
        async with self.database.write() as session:
            nc = await self.open_in(session, source, description, team_id, actor, case_ids, measured)
        log.info("nonconformity opened", extra={"nc_id": nc.id, "source": str(source), "team": nc.team_id})
        return nc

    async def open_in(
        self,
        session: AsyncSession,
        source: NcSource,
        description: str,
        team_id: str,
        actor: Clerk | None,
        case_ids: Iterable[int] = (),
        measured: Measured | None = None,
        low_ratings: int = 0,
        period: str | None = None,
    ) -> Nonconformity:
        """`open` within the caller's transaction (an audit's finding, the cases' rules)."""
        team = self.team(team_id)
        description = check_text(description)
        nc = Nonconformity(
            source=source,
            description=description,
            team_id=team.id,
            owner_id=team.heads[0] if team.heads else None,
            opened_by=actor.id if actor else None,
            case_ids=list(case_ids),
            objective_id=measured.objective.id if measured else None,
            period=measured.key if measured else period,
            figure=measured.figure if measured else None,
            low_ratings=low_ratings,
        )
        session.add(nc)
        await session.flush()
        self._event(session, nc, "opened", actor, source=str(source))
        await self._post_card(session, nc)
        return nc

    async def analyse(self, nc_id: int, actor: Clerk, correction: str, root_cause: str) -> Nonconformity:
        correction, root_cause = check_text(correction), check_text(root_cause)
        async with self.database.write() as session:
            nc = await self._locked(session, nc_id, (NcStatus.OPEN, NcStatus.REOPENED))
            nc.correction, nc.root_cause = correction, root_cause
            nc.status = NcStatus.ANALYSED
            self._event(session, nc, "analysed", actor)
            await self._post_card(session, nc)
        return nc

    async def add_action(
        self, nc_id: int, actor: Clerk, what: str, due: date, owner: Clerk
    ) -> CorrectiveAction:
        what = check_text(what)
        due = parse_due(due.isoformat(), self.calendar.local_date(utcnow()))
        async with self.database.write() as session:
            nc = await self._locked(session, nc_id, WORKS_ON)
            action = CorrectiveAction(
                nonconformity_id=nc.id, what=what, owner_id=owner.id, owner_name=owner.name, due=due
            )
            session.add(action)
            await session.flush()
            nc.status = NcStatus.ACTIONS
            self._event(
                session, nc, "action_added", actor, action=action.id, owner=owner.id, due=due.isoformat()
            )
            await self._post_card(session, nc)
        return action

    async def action_done(
        self, nc_id: int, action_id: int, actor: Clerk, note: str, check_days: int
    ) -> Nonconformity:
        """The action is done; when it was the last open one, the check is set `check_days` on."""
        note = check_text(note)
        if check_days not in CHECK_DAYS:
            raise NcError(__("This cannot be done with the nonconformity now."))
        async with self.database.write() as session:
            nc = await self._locked(session, nc_id, (NcStatus.ACTIONS,))
            action = await session.get(CorrectiveAction, action_id)
            if action is None or action.nonconformity_id != nc.id or action.done_at is not None:
                raise NcError(__("This action is done already, or it is not of this nonconformity."))
            now = utcnow()
            action.done_at, action.done_note = now, note
            self._event(session, nc, "action_done", actor, action=action.id)
            left = (
                await session.execute(
                    select(col(CorrectiveAction.id)).where(
                        col(CorrectiveAction.nonconformity_id) == nc.id,
                        col(CorrectiveAction.done_at).is_(None),
                    )
                )
            ).first()
            if left is None:
                nc.status = NcStatus.VERIFYING
                nc.check_on = self.calendar.local_date(now) + timedelta(days=check_days)
                nc.check_posted_on = None
                self._event(session, nc, "check_set", actor, check_on=nc.check_on.isoformat())
            await self._post_card(session, nc)
        return nc

    async def verify(self, nc_id: int, actor: Clerk, effective: bool) -> Nonconformity:
        """The quality manager's decision: closed, or reopened for new actions."""
        async with self.database.write() as session:
            nc = await self._locked(session, nc_id, (NcStatus.VERIFYING,))
            nc.status = NcStatus.CLOSED if effective else NcStatus.REOPENED
            nc.closed_at = utcnow() if effective else None
            self._event(
                session,
                nc,
                "effective" if effective else "not_effective",
                actor,
                figure=nc.figure,
                check_on=nc.check_on.isoformat() if nc.check_on else None,
            )
            await self._post_card(session, nc)
        return nc

    async def _locked(self, session: AsyncSession, nc_id: int, statuses: Iterable[str]) -> Nonconformity:
        nc = await session.get(Nonconformity, nc_id, with_for_update=True)
        if nc is None or nc.status not in statuses:
            raise NcError(__("This cannot be done with the nonconformity now."))
        return nc

    def _event(
        self, session: AsyncSession, nc: Nonconformity, kind: str, actor: Clerk | None, **data: Any
    ) -> None:
        session.add(
            NcEvent(
                nonconformity_id=nc.id,
                kind=kind,
                actor_id=actor.id if actor else None,
                actor_name=actor.name if actor else None,
                data=data,
            )
        )

    # --- the daily work (once across replicas: bot.services.schedule under the leader) ---

    async def daily(self, today: date) -> None:
        await self.review_objectives(today)
        await self.from_cases(today)
        await self.checks_due(today)
        await self.overdue_actions(today)

    async def review_objectives(self, today: date) -> list[Measured]:
        """Each objective's latest full period, reviewed once: the review to the quality group,
        a nonconformity for each objective not met."""
        measured = await self._measured(today)
        async with self.database.write() as session:
            done = {
                (r.objective_id, r.period)
                for r in (
                    await session.execute(
                        select(ObjectiveReview).where(
                            col(ObjectiveReview.objective_id).in_([m.objective.id for m in measured])
                        )
                    )
                ).scalars()
            }
            new = [m for m in measured if (m.objective.id, m.key) not in done]
            for m in new:
                session.add(
                    ObjectiveReview(objective_id=m.objective.id, period=m.key, figure=m.figure, met=m.met)
                )
            if new:
                enqueue(
                    session,
                    MessagePayload(text=self.review_text(new)),
                    self.quality_chat(),
                    key=group_key(self.quality_chat()),
                )
            # In the review's transaction: a period marked reviewed always has its nonconformities.
            for m in new:
                if m.met is False:
                    await self.open_in(
                        session,
                        NcSource.OBJECTIVE,
                        self._objective_description(m),
                        m.objective.team or self.quality_team.id,
                        None,
                        measured=m,
                    )
        return new

    async def from_cases(self, today: date) -> list[Nonconformity]:
        """The municipality file's rules over cases (`nc_rules`), from this ISO week and the one
        before (a case closed late after yesterday's run is still counted; low ratings once their
        week has ended): one nonconformity per team and week, a later case added to it (its card
        edited). Returns those opened or changed."""
        rules = self.municipality.nc_rules
        first = iso_week_start(today) - timedelta(days=7)
        late: dict[tuple[str, str], list[int]] = {}
        low: dict[tuple[str, str], int] = {}
        async with self.database.read() as session:
            if rules.closed_late:
                query = select(Case).where(
                    col(Case.closed_at) >= self.calendar.midnight(first),
                    col(Case.closed_at) < self.calendar.midnight(today + timedelta(days=1)),
                )
                for case in (await session.execute(query.order_by(col(Case.id)))).scalars():
                    closed = self.calendar.local_date(case.closed_at) if case.closed_at else None
                    if closed is not None and closed > case.due:
                        late.setdefault((self.teams.get(case.team_id).id, iso_week(closed)), []).append(
                            case.id
                        )
            if rules.low_rating:
                # Only weeks that have ended: a count that moved day by day would tell a team which
                # resident (whose case it closed that day) gave the low rating. And only where the
                # team's week has MIN_GROUP answers, the rule of every satisfaction breakdown.
                ratings = select(SatisfactionAnswer).where(
                    col(SatisfactionAnswer.answered_on) >= first,
                    col(SatisfactionAnswer.answered_on) < iso_week_start(today),
                )
                answers: dict[tuple[str, str], int] = {}
                for answer in (await session.execute(ratings)).scalars():
                    key = (
                        self.teams.route(answer.kind, answer.category_id, answer.eldership_id).id,
                        iso_week(answer.answered_on),
                    )
                    answers[key] = answers.get(key, 0) + 1
                    if answer.score <= 2 and answer.resolved == ResolvedAnswer.NO:
                        low[key] = low.get(key, 0) + 1
                low = {key: count for key, count in low.items() if answers[key] >= MIN_GROUP}
        changed = []
        for team_id, week in sorted({*late, *low}):
            nc = await self._week_record(
                team_id, week, late.get((team_id, week), []), low.get((team_id, week), 0)
            )
            if nc is not None:
                changed.append(nc)
        return changed

    async def _week_record(
        self, team_id: str, week: str, case_ids: list[int], low_ratings: int
    ) -> Nonconformity | None:
        """The team's record of the week, opened or brought up to date; None when nothing is new."""
        async with self.database.write() as session:
            query = select(Nonconformity).where(
                col(Nonconformity.source) == NcSource.CASES,
                col(Nonconformity.team_id) == team_id,
                col(Nonconformity.period) == week,
            )
            nc = (await session.execute(query.with_for_update())).scalars().first()
            if nc is None:
                with self.i18n.context(), self.i18n.use_locale(self.locale):
                    description = _(
                        "Cases of week {week} that broke the municipality file's rules: closed after their deadline, "
                        "or rated 1 or 2 with the matter not resolved."
                    ).format(week=week)
                return await self.open_in(
                    session,
                    NcSource.CASES,
                    description,
                    team_id,
                    None,
                    case_ids,
                    low_ratings=low_ratings,
                    period=week,
                )
            added = [case_id for case_id in case_ids if case_id not in nc.case_ids]
            if not added and low_ratings <= nc.low_ratings:
                return None
            nc.case_ids = [*nc.case_ids, *added]  # a new list, so that the JSON column is written
            nc.low_ratings = max(nc.low_ratings, low_ratings)
            self._event(session, nc, "cases_added", None, cases=added, low_ratings=nc.low_ratings)
            await self._post_card(session, nc)
        log.info(
            "nonconformity of the week extended", extra={"nc_id": nc.id, "team": team_id, "cases": len(added)}
        )
        return nc

    async def _measured(self, today: date) -> list[Measured]:
        with self.i18n.context(), self.i18n.use_locale(self.locale):
            return await self.meter.review(today, self.locale)

    async def checks_due(self, today: date) -> None:
        """Nonconformities whose effectiveness check is due: put to the quality manager once."""
        async with self.database.read() as session:
            due = list(
                (
                    await session.execute(
                        select(Nonconformity).where(
                            col(Nonconformity.status) == NcStatus.VERIFYING,
                            col(Nonconformity.check_on) <= today,
                            col(Nonconformity.check_posted_on).is_(None),
                        )
                    )
                ).scalars()
            )
        for nc in due:
            measured = await self.recheck(nc, today)
            async with self.database.write() as session:
                locked = await session.get(Nonconformity, nc.id, with_for_update=True)
                if locked is None or locked.check_posted_on is not None:
                    continue
                locked.check_posted_on = today
                proposal = None if measured is None else measured.met
                self._event(
                    session,
                    locked,
                    "check_due",
                    None,
                    figure=measured.figure if measured else None,
                    period=measured.key if measured else None,
                    proposal=proposal,
                )
                chat = self.quality_chat()
                payload = MessagePayload(
                    text=self.check_message(locked, measured),
                    keyboard=self._verify_keyboard(locked).model_dump(mode="json", exclude_none=True),
                )
                enqueue(session, payload, chat, key=group_key(chat))

    async def recheck(self, nc: Nonconformity, today: date) -> Measured | None:
        """A nonconformity from an objective: the objective measured again for its team and the
        latest full period. None for any other (the manager decides)."""
        objective = self.municipality.objective_by_id.get(nc.objective_id or "")
        if objective is None:
            return None
        with self.i18n.context(), self.i18n.use_locale(self.locale):
            return await self.meter.measure(objective, latest_full(objective.period, today), self.locale)

    async def overdue_actions(self, today: date) -> None:
        """Corrective actions `nc_rules.overdue_action_days` working days past their due date and
        not done: the quality group is told once."""
        days = self.municipality.nc_rules.overdue_action_days
        async with self.database.write() as session:
            late = [
                action
                for action in (
                    await session.execute(
                        select(CorrectiveAction).where(
                            col(CorrectiveAction.done_at).is_(None),
                            col(CorrectiveAction.due) < today,
                            col(CorrectiveAction.overdue_told_at).is_(None),
                        )
                    )
                ).scalars()
                if self.calendar.add_working_days(action.due, days) <= today
            ]
            for action in late:
                action.overdue_told_at = utcnow()
                nc = await session.get(Nonconformity, action.nonconformity_id)
                assert nc is not None
                self._event(session, nc, "action_overdue", None, action=action.id)
                with self.i18n.context(), self.i18n.use_locale(self.locale):
                    text = _(
                        "⏰ Corrective action of nonconformity #{id} is overdue: {what} (responsible: {owner}, due {date})."
                    ).format(
                        id=nc.id,
                        what=escape(action.what),
                        owner=escape(action.owner_name or "—"),
                        date=texts.day(action.due),
                    )
                enqueue(
                    session,
                    MessagePayload(text=text),
                    self.quality_chat(),
                    key=group_key(self.quality_chat()),
                )

    # --- texts (ADMIN_LOCALE) ---

    def objective_line(self, m: Measured) -> str:
        objective = m.objective
        mark = "—" if m.met is None else ("✅" if m.met else "❌")
        previous = " · ".join(f"{period_key(p)}: {self.number(objective, value)}" for p, value in m.previous)
        line = _("{mark} {name} ({scope}), {period}: <b>{figure}</b>, target {comparison} {target}").format(
            mark=mark,
            name=escape(objective.name.get(self.locale)),
            scope=escape(self.scope(objective)),
            period=m.key,
            figure=self.number(objective, m.figure),
            comparison=objective.comparison.replace(">=", "≥").replace("<=", "≤"),
            target=self.number(objective, objective.target),
        )
        return f"{line}\n    " + _("before: {previous}").format(previous=previous) if previous else line

    def review_text(self, measured: list[Measured]) -> str:
        with self.i18n.context(), self.i18n.use_locale(self.locale):
            met = sum(1 for m in measured if m.met)
            lines = [
                _("📏 <b>Review of quality objectives</b>: {met} of {count} met").format(
                    met=met, count=len(measured)
                ),
                "",
            ]
            lines += [self.objective_line(m) for m in measured]
            if any(m.met is False for m in measured):
                lines += ["", _("Each objective not met opens a nonconformity.")]
            return truncate_html("\n".join(lines))

    def _objective_description(self, m: Measured) -> str:
        with self.i18n.context(), self.i18n.use_locale(self.locale):
            return _("Objective not met: {name}, {period}: {figure} (target {comparison} {target}).").format(
                name=m.objective.name.get(self.locale),
                period=m.key,
                figure=self.number(m.objective, m.figure),
                comparison=m.objective.comparison.replace(">=", "≥").replace("<=", "≤"),
                target=self.number(m.objective, m.objective.target),
            )

    def scope(self, objective: Objective) -> str:
        return (
            self.teams.get(objective.team).name.get(self.locale)
            if objective.team
            else _("whole municipality")
        )

    def number(self, objective: Objective, value: float | None) -> str:
        if value is None:
            return _("no data")
        from babel.numbers import format_decimal

        shown = format_decimal(round(value, 2), format="#,##0.##", locale=self.locale)
        return f"{shown}%" if objective.metric in ("on_time_share", "milestones_on_time") else shown

    def check_message(self, nc: Nonconformity, measured: Measured | None) -> str:
        with self.i18n.context(), self.i18n.use_locale(self.locale):
            lines = [
                _("🔍 <b>Effectiveness check</b> of nonconformity #{id} is due.").format(id=nc.id),
                escape(texts.shorten(nc.description, 300)),
            ]
            if measured is None:
                lines.append(_("The quality manager decides whether the actions were effective."))
            else:
                lines.append(self.objective_line(measured))
                proposal = _("effective") if measured.met else _("not effective")
                lines.append(
                    _("Proposed: <b>{proposal}</b>. The quality manager decides.").format(proposal=proposal)
                )
            return "\n".join(lines)

    def card(
        self, nc: Nonconformity, actions: list[CorrectiveAction], case_numbers: list[str]
    ) -> tuple[str, InlineKeyboardMarkup | None]:
        with self.i18n.context(), self.i18n.use_locale(self.locale):
            team = self.teams.get(nc.team_id)
            owner = (
                f'<a href="tg://user?id={nc.owner_id}">{escape(_("head"))}</a>'
                if nc.owner_id
                else _("the team's head")
            )
            lines = [
                _("⚠️ <b>Nonconformity #{id}</b> · {status}").format(
                    id=nc.id, status=STATUS_LABELS[nc.status]
                ),
                _("Team: {team} · owner: {owner}").format(
                    team=escape(team.name.get(self.locale)), owner=owner
                ),
                _("Source: {source} · opened {date}").format(
                    source=SOURCE_LABELS[nc.source], date=texts.day(self.calendar.local_date(nc.opened_at))
                ),
            ]
            if case_numbers:
                lines.append(_("Cases: {cases}").format(cases=", ".join(case_numbers)))
            if nc.low_ratings:
                lines.append(
                    _(
                        "{count} satisfaction rating of 1 or 2, not resolved",
                        "{count} satisfaction ratings of 1 or 2, not resolved",
                        nc.low_ratings,
                    ).format(count=nc.low_ratings)
                )
            lines += ["", escape(nc.description)]
            if nc.correction:
                lines += ["", _("<b>Correction</b>: {text}").format(text=escape(nc.correction))]
            if nc.root_cause:
                lines.append(_("<b>Root cause</b>: {text}").format(text=escape(nc.root_cause)))
            if actions:
                lines += ["", _("<b>Corrective actions</b>:")]
                for number, action in enumerate(actions, start=1):
                    state = ("✅ " + escape(action.done_note or "")) if action.done_at else "⏳"
                    lines.append(
                        f"{number}. {escape(action.what)} · {escape(action.owner_name or '—')} · {texts.day(action.due)} · {state}"
                    )
            if nc.check_on and nc.status == NcStatus.VERIFYING:
                lines += ["", _("Effectiveness check: {date}").format(date=texts.day(nc.check_on))]
            return truncate_html("\n".join(lines)), self.keyboard(nc, actions)

    def keyboard(self, nc: Nonconformity, actions: list[CorrectiveAction]) -> InlineKeyboardMarkup | None:
        builder = InlineKeyboardBuilder()
        if nc.status in (NcStatus.OPEN, NcStatus.REOPENED):
            builder.button(text=_("🔎 Analyse"), callback_data=NcButton(nc_id=nc.id, do="analyse"))
        if nc.status in WORKS_ON:
            builder.button(text=_("➕ Add an action"), callback_data=NcButton(nc_id=nc.id, do="add"))
        if nc.status == NcStatus.ACTIONS and any(a.done_at is None for a in actions):
            builder.button(text=_("✔️ Action done"), callback_data=NcButton(nc_id=nc.id, do="done"))
        if nc.status == NcStatus.VERIFYING:
            return self._verify_keyboard(nc)
        builder.adjust(1)
        markup = builder.as_markup()
        return markup if markup.inline_keyboard else None

    def _verify_keyboard(self, nc: Nonconformity) -> InlineKeyboardMarkup:
        with self.i18n.context(), self.i18n.use_locale(self.locale):
            builder = InlineKeyboardBuilder()
            builder.button(text=_("✅ Effective"), callback_data=NcButton(nc_id=nc.id, do="effective"))
            builder.button(
                text=_("❌ Not effective"), callback_data=NcButton(nc_id=nc.id, do="not_effective")
            )
            return builder.as_markup()

    async def rendered_card(
        self, session: AsyncSession, nc: Nonconformity
    ) -> tuple[str, InlineKeyboardMarkup | None]:
        actions = list(
            (
                await session.execute(
                    select(CorrectiveAction)
                    .where(col(CorrectiveAction.nonconformity_id) == nc.id)
                    .order_by(col(CorrectiveAction.id))
                )
            ).scalars()
        )
        numbers = (
            list(
                (
                    await session.execute(
                        select(col(Case.number)).where(col(Case.id).in_(nc.case_ids)).order_by(col(Case.id))
                    )
                ).scalars()
            )
            if nc.case_ids
            else []
        )
        return self.card(nc, actions, numbers)

    async def _post_card(self, session: AsyncSession, nc: Nonconformity) -> None:
        """The card brought up to date in the quality group and the team's group (once if they share
        one): rendered when sent, so one pending row per group is enough."""
        await session.flush()
        for chat in dict.fromkeys((self.quality_chat(), self.teams.chat_of(self.teams.get(nc.team_id)))):
            key = f"nc:{nc.id}:{chat}"
            if await pending_row(session, Kind.NC_CARD, key) is None:
                enqueue(session, NcCardPayload(nc_id=nc.id), chat, key=key)


class NcCardSender:
    """Sends NC_CARD rows: the card as the record is now, edited where it was posted (NcCard), or
    posted when it never was or its message is gone."""

    def __init__(self, bot: Bot, database: Database, nonconformities: Nonconformities) -> None:
        self.bot = bot
        self.database = database
        self.nonconformities = nonconformities

    async def send(self, row: OutboxMessage) -> Sent:
        async with self.database.read() as session:
            nc = await session.get(Nonconformity, NcCardPayload.of(row).nc_id)
            if nc is None:
                raise Permanent("the nonconformity is gone")
            text, keyboard = await self.nonconformities.rendered_card(session, nc)
            placed = (
                await session.execute(
                    select(NcCard).where(
                        col(NcCard.nonconformity_id) == nc.id, col(NcCard.chat_id) == row.chat_id
                    )
                )
            ).scalar_one_or_none()
        if placed is not None:
            try:
                await self.bot.edit_message_text(
                    text=text, chat_id=row.chat_id, message_id=placed.message_id, reply_markup=keyboard
                )
                return Sent(row.chat_id, placed.message_id)
            except TelegramBadRequest as exc:
                if "not modified" in exc.message.lower():
                    return Sent(row.chat_id, placed.message_id)
                log.info(
                    "nonconformity card posted again", extra={"nc_id": nc.id, "chat_id": row.chat_id}
                )  # deleted, or too old to edit
        message_id = (await self.bot.send_message(row.chat_id, text, reply_markup=keyboard)).message_id
        nc_id, chat_id = nc.id, row.chat_id

        async def record(session: AsyncSession) -> None:
            existing = (
                await session.execute(
                    select(NcCard).where(
                        col(NcCard.nonconformity_id) == nc_id, col(NcCard.chat_id) == chat_id
                    )
                )
            ).scalar_one_or_none()
            if existing is None:
                session.add(NcCard(nonconformity_id=nc_id, chat_id=chat_id, message_id=message_id))
            else:
                existing.message_id = message_id

        return Sent(row.chat_id, message_id, record)
