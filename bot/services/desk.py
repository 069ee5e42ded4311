"""The clerks' side of a case: what may happen to it in each status, and the audit trail.

The allowed transitions are one table (`ACTIONS`); every change writes a CaseEvent with who did
it and when. Nothing here talks to Telegram.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select

from bot.config import Municipality
from bot.services.cases import AttachmentDraft, attachment_rows
from bot.services.deadlines import ExtensionNotAllowed, WorkingCalendar
from bot.store import cases as case_rows
from bot.store.db import Database
from bot.store.models import CLOSED_STATUSES, Attachment, Case, CaseEvent, CaseStatus, EventKind, utcnow

OPEN_STATUSES = frozenset(CaseStatus) - CLOSED_STATUSES


@dataclass(frozen=True)
class Action:
    allowed_from: frozenset[CaseStatus]
    to: CaseStatus | None  # None: the status stays (an extension)
    needs_text: bool = False  # a reason, or the final answer


ACTIONS: dict[str, Action] = {
    "take": Action(frozenset({CaseStatus.NEW, CaseStatus.REOPENED, CaseStatus.IN_PROGRESS, CaseStatus.ASSIGNED}), CaseStatus.ASSIGNED),
    "progress": Action(frozenset({CaseStatus.NEW, CaseStatus.ASSIGNED, CaseStatus.REOPENED}), CaseStatus.IN_PROGRESS),
    "extend": Action(OPEN_STATUSES, None, needs_text=True),
    "answer": Action(OPEN_STATUSES, CaseStatus.ANSWERED, needs_text=True),
    "redirect": Action(OPEN_STATUSES, CaseStatus.REDIRECTED, needs_text=True),
    "reject": Action(OPEN_STATUSES, CaseStatus.REJECTED, needs_text=True),
    "reopen": Action(CLOSED_STATUSES, CaseStatus.REOPENED),
}


class NotAllowed(Exception):
    """The case does not exist, or the action does not fit its status."""


@dataclass(frozen=True)
class Clerk:
    id: int
    name: str


def allowed_actions(case: Case) -> list[str]:
    return [name for name, action in ACTIONS.items() if case.status in action.allowed_from]


class DeskService:
    def __init__(self, database: Database, calendar: WorkingCalendar, municipality: Municipality) -> None:
        self.database = database
        self.calendar = calendar
        self.municipality = municipality

    def extension_left(self, case: Case) -> int:
        return self.municipality.kinds[case.kind].max_extension_days - case.extension_days

    async def act(self, case_id: int, action_name: str, clerk: Clerk, text: str | None = None, days: int | None = None) -> tuple[Case, CaseEvent]:
        """Apply a clerk's action; raise NotAllowed if the case or the transition is wrong."""
        action = ACTIONS.get(action_name)
        if action is None:
            raise NotAllowed(action_name)
        now = utcnow()
        async with self.database.write() as session:
            case = await session.get(Case, case_id, with_for_update=True)
            if case is None or case.status not in action.allowed_from:
                raise NotAllowed(action_name)
            if action_name == "extend":
                try:
                    extension = self.calendar.extend(case.due, days or 0, case.extension_days, self.municipality.kinds[case.kind].max_extension_days)
                except ExtensionNotAllowed as exc:
                    raise NotAllowed(str(exc)) from None
                case.extended_until, case.extension_days, case.extension_reason = extension.until, extension.total_days, text
                event = CaseEvent(
                    case_id=case.id, at=now, kind=EventKind.EXTENDED, actor_id=clerk.id, actor_name=clerk.name,
                    text=text, data={"until": extension.until.isoformat(), "days": days},
                )  # fmt: skip
            else:
                previous = case.status
                case.status = action.to
                if action_name == "take":
                    case.assignee_id, case.assignee_name = clerk.id, clerk.name
                case.closed_at = now if action.to in CLOSED_STATUSES else None
                event = CaseEvent(
                    case_id=case.id, at=now, kind=EventKind.STATUS, actor_id=clerk.id, actor_name=clerk.name,
                    text=text, data={"from": previous, "to": action.to},
                )  # fmt: skip
            session.add(event)
        return case, event

    async def record(
        self, case: Case, kind: EventKind, clerk: Clerk | None, text: str | None,
        attachments: tuple[AttachmentDraft, ...] = (), **fields: object,
    ) -> CaseEvent:  # fmt: skip
        """Add an event to the trail: a relayed message (with its files), a note, a reminder."""
        async with self.database.write() as session:
            event = CaseEvent(
                case_id=case.id, kind=kind, actor_id=clerk.id if clerk else None, actor_name=clerk.name if clerk else None,
                text=text, **fields,
            )  # fmt: skip
            session.add(event)
            await session.flush()
            session.add_all(attachment_rows(case.id, event.id, attachments))
        return event

    async def set_card(self, case_id: int, topic_id: int | None, card_message_id: int) -> None:
        async with self.database.write() as session:
            case = await session.get(Case, case_id)
            case.topic_id, case.card_message_id = topic_id, card_message_id

    # --- finding cases ---

    async def get(self, case_id: int) -> Case | None:
        async with self.database.read() as session:
            return await session.get(Case, case_id)

    async def by_number(self, number: str) -> Case | None:
        async with self.database.read() as session:
            return await case_rows.case_by_number(session, number)

    async def by_topic(self, topic_id: int) -> Case | None:
        async with self.database.read() as session:
            return (await session.execute(select(Case).where(Case.topic_id == topic_id))).scalar_one_or_none()

    async def by_group_message(self, message_id: int) -> Case | None:
        """The case whose card, or one of whose relayed messages, is this group message."""
        async with self.database.read() as session:
            case = (await session.execute(select(Case).where(Case.card_message_id == message_id))).scalar_one_or_none()
            if case is None:
                event = (await session.execute(select(CaseEvent).where(CaseEvent.group_message_id == message_id))).scalars().first()
                case = await session.get(Case, event.case_id) if event else None
            return case

    async def attachments(self, case_id: int) -> list[Attachment]:
        async with self.database.read() as session:
            return list((await session.execute(select(Attachment).where(Attachment.case_id == case_id).order_by(Attachment.id))).scalars())

    async def history(self, case_id: int) -> list[CaseEvent]:
        async with self.database.read() as session:
            return await case_rows.case_events(session, case_id)

    async def open_cases(self, assignee_id: int | None = None) -> list[Case]:
        """Open cases, the nearest deadline first."""
        query = select(Case).where(Case.status.in_([s.value for s in OPEN_STATUSES]))
        if assignee_id is not None:
            query = query.where(Case.assignee_id == assignee_id)
        async with self.database.read() as session:
            cases = list((await session.execute(query)).scalars())
        return sorted(cases, key=lambda c: (c.due, c.id))

    async def without_card(self) -> list[Case]:
        """Cases whose card never reached the clerks (a crash in between): posted on start."""
        async with self.database.read() as session:
            return list((await session.execute(select(Case).where(Case.card_message_id.is_(None)).order_by(Case.id))).scalars())

    async def due_soon_and_overdue(self, today: date, within: int = 3) -> tuple[list[Case], list[Case]]:
        horizon = self.calendar.add_working_days(today, within)
        cases = await self.open_cases()
        overdue = [c for c in cases if c.due < today]
        soon = [c for c in cases if today <= c.due <= horizon]
        return soon, overdue
