"""The municipality's projects: the register, what staff change, and who is told.

A project has milestones with a baseline and a current due date; every change is a
`ProjectEvent` (who, when, what, why). Residents follow a project, or every project of an
eldership (`Follow`); each change that matters to them (a status, a milestone met or missed, a
due date moved with its reason, an update) is written with a notice to its followers in the same
transaction: a broadcast with one delivery per follower (the outbox's bulk lane,
bot.services.broadcaster), so each is told once, in their language, at Telegram's pace, and a
crash loses nobody. `on_fanout` starts the sending once the change is committed (the
announcements' runner; unfinished ones are resumed at start).

The daily check (`mark_missed`, from bot.services.schedule, once across replicas) marks a
milestone not met the day after its current due date and tells the team's group, its heads and
the followers, once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from html import escape

from aiogram.filters.callback_data import CallbackData
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from sqlalchemy import and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.config import Config
from bot.services import project_texts, texts
from bot.services.broadcaster import BroadcastFile, Button, FilesVersion, TextVersion, Version, add_broadcast
from bot.services.news import FOLLOWERS
from bot.services.outbox import NO_CHAT, enqueue, group_key
from bot.services.outbox_payloads import MessagePayload, StoreFilePayload
from bot.services.teams import TeamDirectory
from bot.settings import LOCALES
from bot.store.db import Database
from bot.store.models import (
    Broadcast,
    Follow,
    FollowKind,
    Milestone,
    MilestoneStatus,
    Project,
    ProjectEvent,
    ProjectEventKind,
    ProjectStatus,
    ProjectUpdate,
    Resident,
)

log = logging.getLogger(__name__)

REASON_MAX = 500
UPDATE_MAX = 3000
PHOTOS_MAX = 10  # an album
DAILY_CHECK = "daily check"  # the actor's name of the daily job's events


class ProjectButton(CallbackData, prefix="pj"):
    """Every project button, residents' and staff's (ids only: 64 bytes)."""

    action: str
    project: int = 0
    milestone: int = 0
    value: str = ""


class ProjectError(Exception):
    """A change that cannot be made; the message is for the person, in their language."""


@dataclass(frozen=True)
class Actor:
    id: int | None
    name: str


@dataclass
class Listed:
    project: Project
    milestones: list[Milestone]

    @property
    def slipped(self) -> int:
        return project_texts.project_slip_days(self.milestones)


def met_on_time(milestone: Milestone) -> bool:
    """Met by its baseline due date (as first planned: a moved date does not make it on time)."""
    return (
        milestone.status == MilestoneStatus.MET
        and milestone.met_on is not None
        and milestone.met_on <= milestone.baseline_due
    )


def milestones_on_time(
    listed: list[Listed], first: date, last: date, team_id: str | None = None
) -> float | None:
    """The share (%) of the milestones planned (baseline) from `first` to `last` that were met on
    time, of one team's projects or all; None when none was planned then."""
    planned = [
        m
        for item in listed
        if team_id is None or item.project.team_id == team_id
        for m in item.milestones
        if first <= m.baseline_due <= last
    ]
    return 100 * sum(1 for m in planned if met_on_time(m)) / len(planned) if planned else None


class ProjectService:
    def __init__(self, database: Database, i18n: I18n, config: Config, teams: TeamDirectory) -> None:
        self.database = database
        self.i18n = i18n
        self.config = config
        self.municipality = config.municipality
        self.teams = teams
        self.on_fanout: Callable[[Broadcast], None] | None = (
            None  # set by the app: starts sending a committed broadcast
        )

    # --- reading ---

    async def listing(
        self, *, team_ids: list[str] | None = None, eldership: str | None = None, status: str | None = None
    ) -> list[Listed]:
        """Projects with their milestones: the most slipped first, then by name (Lithuanian order of ids)."""
        query = select(Project)
        if team_ids is not None:
            query = query.where(col(Project.team_id).in_(team_ids))
        if status is not None:
            query = query.where(col(Project.status) == status)
        async with self.database.read() as session:
            projects = list((await session.execute(query.order_by(col(Project.external_id)))).scalars())
            if eldership is not None:
                projects = [p for p in projects if eldership in p.elderships or not p.elderships]
            milestones = await self._milestones(session, [p.id for p in projects])
        listed = [Listed(p, milestones.get(p.id, [])) for p in projects]
        return sorted(listed, key=lambda item: -item.slipped)

    async def for_resident(self, eldership_id: str | None) -> tuple[list[Listed], list[Listed]]:
        """The projects of the resident's eldership, and the whole district's."""
        listed = await self.listing()
        own = [item for item in listed if eldership_id and eldership_id in item.project.elderships]
        district = [item for item in listed if not item.project.elderships]
        return own, district

    async def view(self, project_id: int) -> tuple[Project, list[Milestone], ProjectUpdate | None] | None:
        async with self.database.read() as session:
            project = await session.get(Project, project_id)
            if project is None:
                return None
            milestones = (await self._milestones(session, [project_id])).get(project_id, [])
            update = (
                await session.execute(
                    select(ProjectUpdate)
                    .where(col(ProjectUpdate.project_id) == project_id)
                    .order_by(col(ProjectUpdate.id).desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
            return project, milestones, update

    async def updates_of(self, project_ids: list[int]) -> dict[int, list[ProjectUpdate]]:
        """Every update of these projects, newest first."""
        async with self.database.read() as session:
            rows = await session.execute(
                select(ProjectUpdate)
                .where(col(ProjectUpdate.project_id).in_(project_ids))
                .order_by(col(ProjectUpdate.id).desc())
            )
            found: dict[int, list[ProjectUpdate]] = {}
            for update in rows.scalars():
                found.setdefault(update.project_id, []).append(update)
            return found

    async def milestone(self, milestone_id: int) -> Milestone | None:
        async with self.database.read() as session:
            return await session.get(Milestone, milestone_id)

    @staticmethod
    async def _milestones(session: AsyncSession, project_ids: list[int]) -> dict[int, list[Milestone]]:
        rows = await session.execute(
            select(Milestone)
            .where(col(Milestone.project_id).in_(project_ids))
            .order_by(col(Milestone.number))
        )
        found: dict[int, list[Milestone]] = {}
        for milestone in rows.scalars():
            found.setdefault(milestone.project_id, []).append(milestone)
        return found

    # --- following ---

    async def follows(self, resident_id: int) -> set[tuple[str, str]]:
        async with self.database.read() as session:
            rows = await session.execute(
                select(col(Follow.kind), col(Follow.target)).where(col(Follow.resident_id) == resident_id)
            )
            return {(kind, target) for kind, target in rows.all()}

    async def toggle_follow(self, resident_id: int, kind: FollowKind, target: str) -> bool:
        """Follow, or stop following; True if the resident follows it now."""
        async with self.database.write() as session:
            mine = and_(
                col(Follow.resident_id) == resident_id, col(Follow.kind) == kind, col(Follow.target) == target
            )
            existing = (await session.execute(select(Follow).where(mine))).scalar_one_or_none()
            if existing is not None:
                await session.execute(delete(Follow).where(mine))
                return False
            session.add(Follow(resident_id=resident_id, kind=kind, target=target))
            return True

    async def _followers(self, session: AsyncSession, project: Project) -> list[tuple[int, str]]:
        elderships = project.elderships or [
            e.id for e in self.municipality.elderships
        ]  # the whole district's: every eldership's followers
        query = (
            select(col(Resident.id), col(Resident.locale))
            .join(Follow, col(Follow.resident_id) == col(Resident.id))
            .where(
                col(Resident.consent_at).is_not(None),
                col(Resident.blocked_at).is_(None),
                or_(
                    and_(col(Follow.kind) == FollowKind.PROJECT, col(Follow.target) == str(project.id)),
                    and_(
                        col(Follow.kind) == FollowKind.ELDERSHIP_PROJECTS, col(Follow.target).in_(elderships)
                    ),
                ),
            )
            .order_by(col(Resident.id))
        )
        default = self.config.settings.default_locale
        return [
            (resident_id, locale or default) for resident_id, locale in (await session.execute(query)).all()
        ]

    async def _tell_followers(
        self, session: AsyncSession, project: Project, build: Callable[[], Version], started: list[Broadcast]
    ) -> None:
        """The notice in every language, one delivery per follower, in the caller's transaction."""
        recipients = await self._followers(session, project)
        if not recipients:
            return
        versions: dict[str, Version] = {}
        with self.i18n.context():
            for locale in LOCALES:
                with self.i18n.use_locale(locale):
                    versions[locale] = build()
        started.append(
            await add_broadcast(session, versions, recipients, audience={FOLLOWERS: f"project:{project.id}"})
        )

    def _start(self, started: list[Broadcast]) -> None:
        for broadcast in started:
            if self.on_fanout is not None:
                self.on_fanout(broadcast)

    def _text_notice(self, project: Project, render: Callable[[], str]) -> Callable[[], Version]:
        def build() -> Version:
            button = Button(
                text=_("🏗 Open the project"),
                callback_data=ProjectButton(action="view", project=project.id).pack(),
            )
            return TextVersion(text=render(), keyboard=[[button]])

        return build

    # --- changes (each with its event and its notice) ---

    async def move_due(self, milestone_id: int, new_due: date, reason: str, actor: Actor) -> Milestone:
        reason = reason.strip()
        if not reason:
            raise ProjectError(_("A reason is needed to move a due date."))
        if len(reason) > REASON_MAX:
            raise ProjectError(
                _(
                    "The reason is too long: at most {count} character.",
                    "The reason is too long: at most {count} characters.",
                    REASON_MAX,
                ).format(count=REASON_MAX)
            )
        started: list[Broadcast] = []
        async with self.database.write() as session:
            milestone, project = await self._locked(session, milestone_id)
            if milestone.status in (MilestoneStatus.MET, MilestoneStatus.PARTIALLY_MET):
                raise ProjectError(_("This milestone is already completed; its date cannot move."))
            if new_due == milestone.current_due:
                raise ProjectError(_("That is already its due date."))
            await self.moved(session, project, milestone, new_due, reason, actor, started)
        self._start(started)
        return milestone

    @staticmethod
    async def _locked(session: AsyncSession, milestone_id: int) -> tuple[Milestone, Project]:
        """The milestone, locked for the change, and its project."""
        milestone = await session.get(Milestone, milestone_id, with_for_update=True)
        if milestone is None:
            raise ProjectError(_("This milestone no longer exists."))
        return milestone, await session.get_one(Project, milestone.project_id)

    async def moved(
        self,
        session: AsyncSession,
        project: Project,
        milestone: Milestone,
        new_due: date,
        reason: str,
        actor: Actor,
        started: list[Broadcast],
    ) -> None:
        old = milestone.current_due
        milestone.current_due, milestone.reason = new_due, reason
        if milestone.status == MilestoneStatus.NOT_MET:
            milestone.status = MilestoneStatus.SCHEDULED  # missed, and planned again
        session.add(milestone)
        self._event(
            session,
            project,
            ProjectEventKind.MOVED,
            actor,
            reason,
            {"milestone": milestone.number, "from": old.isoformat(), "to": new_due.isoformat()},
            milestone,
        )
        await self._tell_followers(
            session,
            project,
            self._text_notice(project, lambda: project_texts.notice_moved(project, milestone, old, reason)),
            started,
        )

    async def complete(self, milestone_id: int, status: MilestoneStatus, on: date, actor: Actor) -> Milestone:
        """A milestone met or partly met on `on`."""
        started: list[Broadcast] = []
        async with self.database.write() as session:
            milestone, project = await self._locked(session, milestone_id)
            if milestone.status == status:
                raise ProjectError(_("This milestone is already marked so."))
            await self.milestone_status(session, project, milestone, status, on, actor, started)
        self._start(started)
        return milestone

    async def milestone_status(
        self,
        session: AsyncSession,
        project: Project,
        milestone: Milestone,
        status: str,
        met_on: date | None,
        actor: Actor,
        started: list[Broadcast],
        reason: str | None = None,
    ) -> None:
        old = milestone.status
        milestone.status = status
        milestone.met_on = met_on if status in (MilestoneStatus.MET, MilestoneStatus.PARTIALLY_MET) else None
        session.add(milestone)
        data = {
            "milestone": milestone.number,
            "from": old,
            "to": status,
            "met_on": milestone.met_on.isoformat() if milestone.met_on else None,
        }
        self._event(session, project, ProjectEventKind.MILESTONE, actor, reason, data, milestone)
        if status != MilestoneStatus.SCHEDULED:
            await self._tell_followers(
                session,
                project,
                self._text_notice(project, lambda: project_texts.notice_milestone(project, milestone)),
                started,
            )

    async def change_status(self, project_id: int, status: ProjectStatus, actor: Actor) -> Project:
        started: list[Broadcast] = []
        async with self.database.write() as session:
            project = await session.get(Project, project_id, with_for_update=True)
            if project is None:
                raise ProjectError(_("This project no longer exists."))
            if project.status == status:
                raise ProjectError(_("The project already has this status."))
            await self.status(session, project, status, actor, started)
        self._start(started)
        return project

    async def status(
        self, session: AsyncSession, project: Project, status: str, actor: Actor, started: list[Broadcast]
    ) -> None:
        old = project.status
        project.status = status
        if status == ProjectStatus.COMPLETED:
            project.progress = 100
        session.add(project)
        self._event(session, project, ProjectEventKind.STATUS, actor, None, {"from": old, "to": status})
        await self._tell_followers(
            session,
            project,
            self._text_notice(project, lambda: project_texts.notice_status(project, old)),
            started,
        )

    async def post_update(
        self, project_id: int, text_pl: str, text_lt: str, photos: list[dict[str, str]], actor: Actor
    ) -> ProjectUpdate:
        started: list[Broadcast] = []
        async with self.database.write() as session:
            project = await session.get(Project, project_id)
            if project is None:
                raise ProjectError(_("This project no longer exists."))
            update = ProjectUpdate(
                project_id=project_id,
                text_pl=text_pl,
                text_lt=text_lt,
                photos=photos[:PHOTOS_MAX],
                author_id=actor.id,
                author_name=actor.name,
            )
            session.add(update)
            await session.flush()
            self._event(session, project, ProjectEventKind.UPDATE, actor, None, {"update_id": update.id})
            for index in range(
                len(update.photos)
            ):  # the municipality keeps its own copies, as of cases' files
                enqueue(
                    session,
                    StoreFilePayload(project_update=update.id, index=index),
                    NO_CHAT,
                    key=f"file:project:{update.id}:{index}",
                )

            def build() -> Version:
                if not update.photos:
                    return self._text_notice(project, lambda: project_texts.notice_update(project, update))()
                files = [BroadcastFile(kind="photo", file_id=p["file_id"]) for p in update.photos]
                return FilesVersion(
                    files=files, caption=project_texts.notice_update(project, update, limit=800)
                )

            await self._tell_followers(session, project, build, started)
        self._start(started)
        return update

    @staticmethod
    def _event(
        session: AsyncSession,
        project: Project,
        kind: ProjectEventKind,
        actor: Actor,
        text: str | None,
        data: dict[str, object] | None = None,
        milestone: Milestone | None = None,
    ) -> None:
        session.add(
            ProjectEvent(
                project_id=project.id,
                milestone_id=milestone.id if milestone else None,
                kind=kind,
                actor_id=actor.id,
                actor_name=actor.name,
                text=text,
                data=data,
            )
        )

    # --- the daily check ---

    async def mark_missed(self, today: date) -> int:
        """Milestones still scheduled after their current due date become not met; the team's
        group (its heads named) and the followers are told, once: the next run finds them not met."""
        async with self.database.read() as session:
            due = (
                (
                    await session.execute(
                        select(col(Milestone.id)).where(
                            col(Milestone.status) == MilestoneStatus.SCHEDULED,
                            col(Milestone.current_due) < today,
                        )
                    )
                )
                .scalars()
                .all()
            )
        marked = 0
        for milestone_id in due:
            started: list[Broadcast] = []
            async with self.database.write() as session:
                milestone = await session.get(Milestone, milestone_id, with_for_update=True)
                if milestone is None or milestone.status != MilestoneStatus.SCHEDULED:
                    continue  # another replica's run, or staff, was first
                project = await session.get_one(Project, milestone.project_id)
                await self.milestone_status(
                    session,
                    project,
                    milestone,
                    MilestoneStatus.NOT_MET,
                    None,
                    Actor(None, DAILY_CHECK),
                    started,
                )
                team = self.teams.get(project.team_id)
                chat = self.teams.chat_of(team)
                enqueue(
                    session,
                    MessagePayload(text=self._missed_text(project, milestone, team.heads)),
                    chat,
                    key=group_key(chat),
                )
                marked += 1
            self._start(started)
        if marked:
            log.info("milestones marked not met", extra={"count": marked})
        return marked

    def _missed_text(self, project: Project, milestone: Milestone, heads: list[int]) -> str:
        locale = self.config.settings.admin_locale
        with self.i18n.context(), self.i18n.use_locale(locale):
            label = _("head")
            who = (
                ", ".join(f'<a href="tg://user?id={head}">{label}</a>' for head in heads)
                if heads
                else _("the team's head")
            )
            text = _(
                "🚨 {who}: the milestone “{title}” of {name} ({code}) was due {date} and is not met. Mark it met, or move its date with a reason: /projects"
            ).format(
                who=who,
                title=escape(project_texts.title(milestone, locale)),
                name=escape(project_texts.name(project, locale)),
                code=escape(project.external_id),
                date=texts.day(milestone.current_due),
            )
        return text
