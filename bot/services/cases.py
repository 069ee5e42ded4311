"""Cases from the resident's side: opening one (a gap-free number, the legal deadline, the first
audit event, idempotently), reading one's own, adding information, reopening."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from bot.config import Municipality
from bot.services.deadlines import WorkingCalendar
from bot.store import cases as case_rows
from bot.store.db import Database
from bot.store.models import CLOSED_STATUSES, Attachment, Case, CaseEvent, CaseStatus, EventKind


@dataclass(frozen=True)
class AttachmentDraft:
    kind: str  # photo | document
    file_id: str
    file_unique_id: str
    caption: str | None = None
    media_group_id: str | None = None


@dataclass(frozen=True)
class CaseDraft:
    resident_id: int
    locale: str
    kind: str
    category_id: str
    description: str
    eldership_id: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    address: str | None = None
    attachments: tuple[AttachmentDraft, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class OpenedCase:
    case: Case
    created: bool  # False when the same update had already opened it


class NotReopenable(Exception):
    """The case is open, or closed longer ago than the reopening window."""


def format_case_number(prefix: str, year: int, seq: int) -> str:
    return f"{prefix}-{year}-{seq:06d}"


class CaseService:
    def __init__(
        self,
        database: Database,
        calendar: WorkingCalendar,
        municipality: Municipality,
        prefix: str,
        reopen_days: int = 14,
    ) -> None:
        self.database = database
        self.calendar = calendar
        self.municipality = municipality
        self.prefix = prefix
        self.reopen_days = reopen_days

    # --- reading one's own cases ---

    async def opened_today(self, resident_id: int, now: datetime) -> int:
        """How many cases the resident opened on the municipality's current day."""
        start = datetime.combine(self.calendar.local_date(now), time(), tzinfo=self.calendar.tz)
        async with self.database.read() as session:
            return await session.scalar(
                select(func.count()).select_from(Case).where(Case.resident_id == resident_id, Case.received_at >= start)
            )

    async def page_for_resident(self, resident_id: int, page: int, per_page: int) -> tuple[list[Case], int]:
        """One page of the resident's cases, newest first, and the total."""
        async with self.database.read() as session:
            total = await session.scalar(select(func.count()).select_from(Case).where(Case.resident_id == resident_id))
            rows = await session.execute(
                select(Case)
                .where(Case.resident_id == resident_id)
                .order_by(Case.received_at.desc(), Case.id.desc())
                .offset(page * per_page)
                .limit(per_page)
            )
            return list(rows.scalars()), total or 0

    async def own_case(self, resident_id: int, *, case_id: int | None = None, number: str | None = None) -> Case | None:
        """The case if it is the resident's; None otherwise, whether it exists or not."""
        query = select(Case).where(Case.resident_id == resident_id)
        query = query.where(Case.id == case_id) if case_id is not None else query.where(Case.number == number)
        async with self.database.read() as session:
            return (await session.execute(query)).scalar_one_or_none()

    async def case_for_update(self, update_id: int) -> Case | None:
        async with self.database.read() as session:
            return await case_rows.case_by_update(session, update_id)

    async def history(self, case_id: int) -> list[CaseEvent]:
        async with self.database.read() as session:
            return await case_rows.case_events(session, case_id)

    def can_reopen(self, case: Case, now: datetime) -> bool:
        return (
            case.status in CLOSED_STATUSES
            and case.closed_at is not None
            and now - case.closed_at <= timedelta(days=self.reopen_days)
        )

    # --- what residents change ---

    async def add_information(
        self,
        case: Case,
        text: str | None,
        attachments: tuple[AttachmentDraft, ...] = (),
        resident_message_id: int | None = None,
    ) -> CaseEvent:
        """The resident adds text and/or files to their open case."""
        async with self.database.write() as session:
            event = CaseEvent(
                case_id=case.id, kind=EventKind.MESSAGE_IN, actor_id=case.resident_id, text=text,
                resident_message_id=resident_message_id,
            )  # fmt: skip
            session.add(event)
            await session.flush()
            session.add_all(attachment_rows(case.id, event.id, attachments))
        return event

    async def reopen(self, case: Case, reason: str, now: datetime) -> Case:
        async with self.database.write() as session:
            current = await session.get(Case, case.id, with_for_update=True)
            if current is None or not self.can_reopen(current, now):
                raise NotReopenable(case.number)
            previous = current.status
            current.status = CaseStatus.REOPENED
            current.closed_at = None
            session.add(
                CaseEvent(
                    case_id=current.id, at=now, kind=EventKind.STATUS, actor_id=current.resident_id, text=reason,
                    data={"from": previous, "to": CaseStatus.REOPENED},
                )
            )  # fmt: skip
        return current

    # --- opening ---

    async def open(self, draft: CaseDraft, received_at: datetime, update_id: int | None = None) -> OpenedCase:
        """Store a new case; the same `update_id` delivered again returns the first case."""
        if update_id is not None:
            async with self.database.read() as session:
                existing = await case_rows.case_by_update(session, update_id)
            if existing:
                return OpenedCase(existing, created=False)
        try:
            return OpenedCase(await self._insert(draft, received_at, update_id), created=True)
        except IntegrityError:
            # A concurrent delivery of the same update won the race; its case is the answer.
            if update_id is None:
                raise
            async with self.database.read() as session:
                existing = await case_rows.case_by_update(session, update_id)
            if existing is None:
                raise
            return OpenedCase(existing, created=False)

    async def _insert(self, draft: CaseDraft, received_at: datetime, update_id: int | None) -> Case:
        rules = self.municipality.kinds[draft.kind]
        year = self.calendar.local_date(received_at).year
        async with self.database.write() as session:
            seq = await case_rows.allocate_sequence(session, year)
            case = Case(
                number=format_case_number(self.prefix, year, seq),
                year=year,
                seq=seq,
                resident_id=draft.resident_id,
                locale=draft.locale,
                kind=draft.kind,
                category_id=draft.category_id,
                eldership_id=draft.eldership_id,
                description=draft.description,
                latitude=draft.latitude,
                longitude=draft.longitude,
                address=draft.address,
                received_at=received_at,
                deadline=self.calendar.deadline(received_at, rules.deadline_days),
                source_update_id=update_id,
            )
            session.add(case)
            await session.flush()
            created = CaseEvent(case_id=case.id, at=received_at, kind=EventKind.CREATED, actor_id=draft.resident_id)
            session.add(created)
            await session.flush()
            session.add_all(attachment_rows(case.id, created.id, draft.attachments))
        return case


def attachment_rows(case_id: int, event_id: int, drafts: tuple[AttachmentDraft, ...]) -> list[Attachment]:
    return [
        Attachment(
            case_id=case_id, event_id=event_id, kind=item.kind, file_id=item.file_id,
            file_unique_id=item.file_unique_id, caption=item.caption, media_group_id=item.media_group_id,
        )
        for item in drafts
    ]  # fmt: skip
