"""Residents' rights over their data, and how long the municipality keeps it.

- `/mydata`: everything stored about the person, as JSON and as a text in their language;
  internal notes and the clerks' handling records (reminders, escalations, assignments) are the
  municipality's own and are not included; anonymous survey answers cannot be, by design.
- `/forget`: the profile (name, phone, language, subscriptions, what they follow) is erased at once and the person
  leaves every audience. Their cases stay on record, as the law on handling submissions
  requires; answers to those still being handled are still sent to the chat, nothing else is.
  The person starts afresh: older cases no longer show as theirs (`bot.services.case_queries.owned_by`),
  and polls sent before are no longer theirs to answer; the receipts of the polls they answered
  go (their anonymous answers stay counted, see bot.services.surveys). Nothing about them waits
  anywhere: every card their cases left in other teams' groups is blanked, pending events for the
  document management system lose their name and phone, their conversations go (SQL or Redis).
- Retention: once a closed case is older than its kind's `retention_years`, its personal data
  goes (the resident link, or the contact of a person without Telegram; the texts, the files, the
  location); what the quality reports count stays (dates, kind, category, eldership, team,
  status, channel, the trail's kinds and dates). Every topic the case ever had, in every group, is
  deleted (or its messages, in a group without topics), and satisfaction comments as old as the
  kind's period are blanked (docs/erasure.md).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiogram.utils.i18n import gettext as _
from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.config import Config
from bot.services import case_queries, texts
from bot.services.case_notices import CaseNotices
from bot.services.deadlines import WorkingCalendar
from bot.services.files import queue_deletions, stored_files
from bot.services.outbox import UNFINISHED, Kind
from bot.services.outbox_payloads import BadPayload, WebhookPayload
from bot.services.surveys import SurveyService
from bot.store.db import Database, rowcount
from bot.store.models import (
    CLOSED_STATUSES,
    Attachment,
    Case,
    CaseEvent,
    Delivery,
    DeliveryStatus,
    EventKind,
    Follow,
    FollowKind,
    OutboxMessage,
    OutboxStatus,
    Project,
    Resident,
    SatisfactionAnswer,
)

log = logging.getLogger(__name__)

EXPORTS_PER_DAY = 3
PURGE_BATCH = 1000  # cases per transaction of the retention purge
# The trail as the resident knows it; the rest is the municipality's internal handling.
EXPORTED_EVENTS = (
    EventKind.CREATED,
    EventKind.STATUS,
    EventKind.MESSAGE_IN,
    EventKind.MESSAGE_OUT,
    EventKind.EXTENDED,
)


class TooManyExports(Exception):
    pass


@dataclass(frozen=True)
class Purged:
    cases: int
    texts: int
    files: int
    residents: int
    comments: int = 0  # satisfaction comments blanked (their answers stay counted)


def years_before(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year - years)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year - years, day=28)


class DataRights:
    def __init__(
        self,
        database: Database,
        config: Config,
        calendar: WorkingCalendar,
        notices: CaseNotices,
        surveys: SurveyService,
    ) -> None:
        self.database = database
        self.municipality = config.municipality
        self.calendar = calendar
        self.notices = notices
        self.surveys = surveys
        # A person's conversations in the FSM storage (SQL or Redis), by chat: set by bot.app,
        # where the storage is made (bot.store.fsm.forget_conversations).
        self.conversations: Callable[[int], Awaitable[None]] | None = None

    # --- /mydata ---

    async def export(self, resident_id: int, now: datetime) -> dict[str, Any]:
        """Everything about the resident; counted, at most EXPORTS_PER_DAY a day."""
        today = self.calendar.local_date(now)
        async with self.database.write() as session:
            resident = await session.get(Resident, resident_id, with_for_update=True)
            if resident is None:
                raise LookupError(resident_id)
            if resident.exports_on == today and resident.exports_that_day >= EXPORTS_PER_DAY:
                raise TooManyExports
            resident.exports_that_day = resident.exports_that_day + 1 if resident.exports_on == today else 1
            resident.exports_on = today
            cases = list(
                (
                    await session.execute(
                        select(Case)
                        .where(case_queries.owned_by(resident_id))
                        .order_by(col(Case.received_at), col(Case.id))
                    )
                ).scalars()
            )
            ids = [case.id for case in cases]
            # The trail's columns the export shows, as plain rows: a resident with hundreds of cases
            # has thousands of events, and whole ORM objects of them cost more than the query.
            events = (
                await session.execute(
                    select(
                        col(CaseEvent.case_id),
                        col(CaseEvent.at),
                        col(CaseEvent.kind),
                        col(CaseEvent.actor_id),
                        col(CaseEvent.text),
                        col(CaseEvent.data),
                    )
                    .where(col(CaseEvent.case_id).in_(ids), col(CaseEvent.kind).in_(EXPORTED_EVENTS))
                    .order_by(col(CaseEvent.at), col(CaseEvent.id))
                )
            ).all()
            follows = (
                await session.execute(
                    select(Follow).where(col(Follow.resident_id) == resident_id).order_by(col(Follow.id))
                )
            ).scalars()
            followed: list[dict[str, Any]] = [
                {"kind": f.kind, "target": f.target, "since": f.created_at.isoformat()} for f in follows
            ]
            # What is followed, in one query per kind (not one per follow).
            targets = {
                kind: [int(e["target"]) for e in followed if e["kind"] == kind]
                for kind in (FollowKind.PROJECT, FollowKind.CASE)
            }
            projects: dict[int, Project] = {}
            numbers: dict[int, str] = {}
            if targets[FollowKind.PROJECT]:
                projects = {
                    p.id: p
                    for p in (
                        await session.execute(
                            select(Project).where(col(Project.id).in_(targets[FollowKind.PROJECT]))
                        )
                    ).scalars()
                }
            if targets[FollowKind.CASE]:
                numbers = dict(
                    (
                        await session.execute(
                            select(col(Case.id), col(Case.number)).where(
                                col(Case.id).in_(targets[FollowKind.CASE])
                            )
                        )
                    )
                    .tuples()
                    .all()
                )
            for entry in followed:
                if (
                    entry["kind"] == FollowKind.PROJECT
                    and (project := projects.get(int(entry["target"]))) is not None
                ):
                    entry["project"] = {
                        "code": project.external_id,
                        "pl": project.name_pl,
                        "lt": project.name_lt,
                    }
                if (
                    entry["kind"] == FollowKind.CASE
                    and (number := numbers.get(int(entry["target"]))) is not None
                ):
                    entry["case"] = number  # the number only: the case is someone else's
            files = (
                await session.execute(
                    select(Attachment).where(col(Attachment.case_id).in_(ids)).order_by(col(Attachment.id))
                )
            ).scalars()
            by_case: dict[int, dict[str, list[dict[str, Any]]]] = {
                case_id: {"events": [], "files": []} for case_id in ids
            }
            for event in events:
                by_case[event.case_id]["events"].append(_event(event, resident_id))
            for file in files:
                by_case[file.case_id]["files"].append(
                    {
                        "kind": file.kind,
                        "caption": file.caption,
                        "received_at": file.created_at.isoformat(),
                        "file_name": file.file_name,
                        "size": file.size,
                        "sha256": file.sha256,
                        "kept_by_municipality": file.stored_at is not None,
                    }
                )
        return {
            "exported_at": now.isoformat(),
            "controller": self.municipality.privacy.controller.get(resident.locale or "lt"),
            "profile": {
                "telegram_id": resident.id,
                "name": resident.display_name,
                "phone": resident.phone,
                "language": resident.locale,
                "privacy_notice_acknowledged_at": resident.consent_at.isoformat()
                if resident.consent_at
                else None,
                "first_contact_at": resident.created_at.isoformat(),
            },
            "subscriptions": {
                "news_topics": list(resident.news_topics),
                "news_eldership": resident.eldership_id,
                "follows": followed,
            },
            "cases": [_case(case) | by_case[case.id] for case in cases],
            "not_linked_to_you": ["satisfaction answers", "poll answers", "visit survey answers"],
        }

    def readable(self, data: dict[str, Any]) -> str:
        """The export as a text in the current locale."""
        profile, subscriptions = data["profile"], data["subscriptions"]
        topics = {topic.id: topic for topic in self.municipality.news_topics}
        locale = texts.current_locale()
        lines = [
            _("Your data kept by {controller}").format(controller=data["controller"]),
            _("Prepared: {date}").format(date=self._when(data["exported_at"])),
            "",
            _("PROFILE"),
            _("Telegram account number: {value}").format(value=profile["telegram_id"]),
            _("Name: {value}").format(value=profile["name"] or "—"),
            _("Phone: {value}").format(value=profile["phone"] or "—"),
            _("Language: {value}").format(value=texts.LANGUAGE_NAMES.get(profile["language"] or "", "—")),
            _("Privacy notice acknowledged: {value}").format(
                value=self._when(profile["privacy_notice_acknowledged_at"])
            ),
            _("News subscriptions: {value}").format(
                value=", ".join(topics[t].get(locale) for t in subscriptions["news_topics"] if t in topics)
                or "—"
            ),
            _("Following: {value}").format(
                value=", ".join(self._followed(f, locale) for f in subscriptions.get("follows", [])) or "—"
            ),
            "",
            _("CASES ({count})").format(count=len(data["cases"])),
        ]
        for case in data["cases"]:
            lines += [
                "",
                f"{case['number']} · {texts.kind_label(case['kind'])} · {texts.status_label(case['status'])}",
            ]
            category, eldership = (
                self.municipality.category_by_id.get(case["category"]),
                self.municipality.eldership_by_id.get(case["eldership"] or ""),
            )
            lines.append(
                _("Category: {value}").format(value=category.get(locale) if category else case["category"])
            )
            if case["eldership"]:
                lines.append(
                    _("Eldership: {value}").format(
                        value=eldership.get(locale) if eldership else case["eldership"]
                    )
                )
            lines.append(_("Received: {date}").format(date=self._when(case["received_at"])))
            if case["location"]:
                lines.append(_("Location: {latitude}, {longitude}").format(**case["location"]))
            if case["address"]:
                lines.append(_("Address: {value}").format(value=case["address"]))
            lines.append(_("Description: {value}").format(value=case["description"]))
            for event in case["events"]:
                lines.append(f"  {self._when(event['at'])} · {_event_line(event)}")
            for file in case["files"]:
                label = _("Photo: {caption}") if file["kind"] == "photo" else _("Document: {caption}")
                line = "  " + label.format(caption=file["caption"] or "—")
                if file.get("kept_by_municipality"):
                    line += " · " + _("a copy is kept by the municipality")
                lines.append(line)
        lines += [
            "",
            _(
                "Answers to satisfaction questions and polls are stored without any link to you, so they cannot be included."
            ),
            _(
                "Visit surveys (the QR code at our desks and offices) are anonymous: we keep nothing about you from them."
            ),
        ]
        return "\n".join(lines) + "\n"

    def _followed(self, follow: dict[str, Any], locale: str) -> str:
        if follow["kind"] == FollowKind.CASE:
            return _("case {number} (“me too”)").format(number=follow.get("case") or follow["target"])
        if follow["kind"] == FollowKind.ELDERSHIP_PROJECTS:
            eldership = self.municipality.eldership_by_id.get(follow["target"])
            return _("projects of {eldership}").format(
                eldership=eldership.get(locale) if eldership else follow["target"]
            )
        project = follow.get("project")
        return (
            (project["pl"] if locale == "pl" else project["lt"])
            if project
            else _("project no. {id}").format(id=follow["target"])
        )

    def _when(self, iso: str | None) -> str:
        if iso is None:
            return "—"
        local = datetime.fromisoformat(iso).astimezone(self.calendar.tz)
        return f"{texts.day(local.date())} {local:%H:%M}"

    # --- /forget ---

    async def forget(self, resident_id: int, now: datetime) -> int:
        """Erase the profile; return how many of the person's cases stay on record."""
        async with self.database.write() as session:
            resident = await session.get(Resident, resident_id, with_for_update=True)
            if resident is None:
                return 0
            cases = list(
                (await session.execute(select(Case).where(case_queries.owned_by(resident_id)))).scalars()
            )
            resident.display_name, resident.phone, resident.locale, resident.consent_at = "", None, None, None
            resident.news_topics, resident.eldership_id, resident.exports_on, resident.exports_that_day = (
                [],
                None,
                None,
                0,
            )
            resident.erased_at = resident.created_at = now  # a fresh start: not even when they first came
            resident.blocked_at = None
            followed = select(col(Follow.target)).where(
                col(Follow.resident_id) == resident_id, col(Follow.kind) == FollowKind.CASE
            )
            followed_ids = [int(target) for target in (await session.execute(followed)).scalars()]
            await session.execute(delete(Follow).where(col(Follow.resident_id) == resident_id))
            for followed_case in (
                await session.execute(select(Case).where(col(Case.id).in_(followed_ids)))
            ).scalars():
                await self.notices.refresh_card(
                    session, followed_case
                )  # one resident fewer affected ("me too")
            await session.execute(
                update(Delivery)
                .where(col(Delivery.chat_id) == resident_id, col(Delivery.status) == DeliveryStatus.PENDING)
                .values(status=DeliveryStatus.CANCELLED)
            )
            # Nothing more to the person but what concerns the cases still being handled.
            handled = [case.id for case in cases if case.status not in CLOSED_STATUSES]
            await session.execute(
                delete(OutboxMessage).where(
                    col(OutboxMessage.chat_id) == resident_id,
                    col(OutboxMessage.status) == OutboxStatus.PENDING,
                    or_(col(OutboxMessage.case_id).is_(None), col(OutboxMessage.case_id).not_in(handled)),
                )
            )
            for case in cases:
                await self.notices.tell_team_profile_erased(session, case)
            await self._scrub_pending_events(session, [case.id for case in cases])
            await self.surveys.forget_poll_receipts(session, resident_id)
        if self.conversations is not None:
            await self.conversations(resident_id)  # any step in progress, with what it gathered
        log.info("profile erased", extra={"cases_kept": len(cases)})
        return len(cases)

    @staticmethod
    async def _scrub_pending_events(session: AsyncSession, case_ids: list[int]) -> None:
        """Case events not yet delivered to the document management system (a receiver that is
        down) were written with the person's name and phone: they go out without them."""
        pending = select(OutboxMessage).where(
            col(OutboxMessage.case_id).in_(case_ids),
            col(OutboxMessage.kind) == Kind.WEBHOOK,
            col(OutboxMessage.status).in_(UNFINISHED),
        )
        for row in (await session.execute(pending)).scalars():
            try:
                payload = WebhookPayload.of(row)
            except BadPayload:
                log.warning("a pending case event could not be read to scrub it", extra={"row": row.id})
                continue
            scrubbed = payload.without_person()
            if scrubbed is not payload:
                await session.execute(
                    update(OutboxMessage)
                    .where(col(OutboxMessage.id) == row.id)
                    .values(payload=scrubbed.dump())
                )

    # --- retention ---

    async def purge_expired(self, now: datetime) -> Purged:
        """Remove the personal data of closed cases past their kind's retention period, PURGE_BATCH
        cases per transaction (locks held for a second, not for the minutes a backlog takes; an
        interrupted run leaves whole batches done, and the next one goes on from there: a purged
        case is never picked again)."""
        expired = select(Case).where(
            col(Case.status).in_(list(CLOSED_STATUSES)),
            col(Case.purged_at).is_(None),
            or_(
                *(
                    and_(
                        col(Case.kind) == kind, col(Case.closed_at) < years_before(now, rules.retention_years)
                    )
                    for kind, rules in self.municipality.kinds.items()
                )
            ),
        )
        cases = texts_removed = files = 0
        after = 0  # the batches go in id order: each starts past the last one's cases
        while True:
            async with self.database.write() as session:
                batch = list(
                    (
                        await session.execute(
                            expired.where(col(Case.id) > after).order_by(col(Case.id)).limit(PURGE_BATCH)
                        )
                    ).scalars()
                )
                if not batch:
                    break
                removed, batch_files = await self._purge_batch(session, batch, now)
            cases, texts_removed, files, after = (
                cases + len(batch),
                texts_removed + removed,
                files + batch_files,
                batch[-1].id,
            )
        async with self.database.write() as session:
            # Erased profiles that no case needs any more go altogether.
            unneeded = select(col(Resident.id)).where(
                col(Resident.erased_at).is_not(None),
                col(Resident.consent_at).is_(None),
                ~select(col(Case.id)).where(col(Case.resident_id) == Resident.id).exists(),
            )  # not one who came back since
            gone = list((await session.execute(unneeded)).scalars())
            await session.execute(
                delete(Delivery).where(col(Delivery.chat_id).in_(gone))
            )  # who got which announcement
            residents = rowcount(await session.execute(delete(Resident).where(col(Resident.id).in_(gone))))
            comments = await self._blank_comments(session, now)
        purged = Purged(cases, texts_removed, files, residents, comments)
        log.info(
            "retention",
            extra={
                "cases": purged.cases,
                "texts": purged.texts,
                "files": purged.files,
                "residents": purged.residents,
                "comments": comments,
            },
        )
        return purged

    async def _purge_batch(self, session: AsyncSession, cases: list[Case], now: datetime) -> tuple[int, int]:
        """One transaction's cases: their texts, files, pending messages and places go; (texts, files) removed."""
        ids = [case.id for case in cases]
        # Set-based, before the cases lose their resident (the trail's resident is found through them).
        of_resident = (
            col(CaseEvent.actor_id)
            == select(col(Case.resident_id)).where(col(Case.id) == CaseEvent.case_id).scalar_subquery()
        )
        await session.execute(
            update(CaseEvent).where(col(CaseEvent.case_id).in_(ids), of_resident).values(actor_id=None)
        )
        removed = rowcount(
            await session.execute(
                update(CaseEvent)
                .where(col(CaseEvent.case_id).in_(ids), col(CaseEvent.text).is_not(None))
                .values(text=None)
            )
        )
        stored = await stored_files(session, ids)
        files = rowcount(await session.execute(delete(Attachment).where(col(Attachment.case_id).in_(ids))))
        await session.execute(delete(OutboxMessage).where(col(OutboxMessage.case_id).in_(ids)))
        queue_deletions(session, stored)  # the municipality's stored copies go too (bot.services.files)
        await self.notices.retire_from_groups(session, cases)  # queues the deletions from the groups
        for case in cases:
            session.expunge(case)  # written below in one statement, not one UPDATE per case
        await session.execute(
            update(Case)
            .where(col(Case.id).in_(ids))
            .values(
                resident_id=None,
                description="",
                address=None,
                latitude=None,
                longitude=None,
                extension_reason=None,
                contact=None,
                public=False,  # whom to answer outside Telegram; nothing left to show
                topic_id=None,
                card_message_id=None,
                purged_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        await session.flush()
        return removed, files

    async def _blank_comments(self, session: AsyncSession, now: datetime) -> int:
        """Satisfaction comments go with the cases they are about. An answer names no case (the
        anonymity rule), but it is given after its case was closed: one answered longer ago than
        its kind's retention period is about a case past it. The score and the rest stay counted."""
        blanked = 0
        for kind, rules in self.municipality.kinds.items():
            before = self.calendar.local_date(years_before(now, rules.retention_years))
            result = await session.execute(
                update(SatisfactionAnswer)
                .where(
                    col(SatisfactionAnswer.kind) == kind,
                    col(SatisfactionAnswer.answered_on) < before,
                    col(SatisfactionAnswer.comment).is_not(None),
                )
                .values(comment=None)
            )
            blanked += rowcount(result)
        return blanked


def _case(case: Case) -> dict[str, Any]:
    return {
        "number": case.number,
        "kind": case.kind,
        "category": case.category_id,
        "eldership": case.eldership_id,
        "description": case.description,
        "address": case.address,
        "location": {"latitude": case.latitude, "longitude": case.longitude}
        if case.latitude is not None
        else None,
        "status": case.status,
        "received_at": case.received_at.isoformat(),
        "deadline": case.due.isoformat(),
        "extension_reason": case.extension_reason,
        "closed_at": case.closed_at.isoformat() if case.closed_at else None,
    }


def _event(event: Any, resident_id: int) -> dict[str, Any]:
    """One event of the trail (a row with at, kind, actor_id, text and data)."""
    data = event.data or {}
    return {
        "at": event.at.isoformat(),
        "kind": event.kind,
        "from": "you" if event.actor_id == resident_id else "municipality",
        "text": event.text,
        "status": data.get("to"),
        "until": data.get("until"),
    }


def _event_line(event: dict[str, Any]) -> str:
    detail = f": {event['text']}" if event["text"] else ""
    if event["kind"] == EventKind.CREATED:
        return _("the case was received")
    if event["kind"] == EventKind.STATUS:
        return _("status: {status}").format(status=texts.status_label(event["status"])) + detail
    if event["kind"] == EventKind.EXTENDED:
        return _("the deadline was extended to {date}").format(date=event["until"]) + detail
    if event["from"] == "you":
        return _("your message") + detail
    return _("the municipality's message") + detail


def as_json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False, indent=2).encode()
