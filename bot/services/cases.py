"""Opening cases: a gap-free number, the legal deadline, the first audit event, idempotently."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from bot.config import Municipality
from bot.services.deadlines import WorkingCalendar
from bot.store import cases as case_rows
from bot.store.db import Database
from bot.store.models import Attachment, Case, CaseEvent, EventKind


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


def format_case_number(prefix: str, year: int, seq: int) -> str:
    return f"{prefix}-{year}-{seq:06d}"


class CaseService:
    def __init__(self, database: Database, calendar: WorkingCalendar, municipality: Municipality, prefix: str) -> None:
        self.database = database
        self.calendar = calendar
        self.municipality = municipality
        self.prefix = prefix

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
            for item in draft.attachments:
                session.add(
                    Attachment(
                        case_id=case.id,
                        event_id=created.id,
                        kind=item.kind,
                        file_id=item.file_id,
                        file_unique_id=item.file_unique_id,
                        caption=item.caption,
                        media_group_id=item.media_group_id,
                    )
                )
        return case
