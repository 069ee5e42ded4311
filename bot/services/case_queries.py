"""Finding cases: every look-up of a case, its trail and its people, for the flows and the other
services. Nothing here changes a case (bot.services.case_commands does).

The functions taking a session read inside the caller's transaction; `CaseQueries` opens its own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.municipality import Team
from bot.services.teams import TeamDirectory
from bot.store.db import Database
from bot.store.models import (
    CLOSED_STATUSES,
    Attachment,
    Case,
    CaseEvent,
    CaseStatus,
    CaseTrace,
    Channel,
    EventKind,
    OutboxMessage,
    Resident,
)

OPEN_STATUSES = frozenset(CaseStatus) - CLOSED_STATUSES


# --- in the caller's transaction ---


def owned_by(resident_id: int) -> ColumnElement[bool]:
    """The resident's own cases: those received since they last erased their profile (/forget).
    Older ones stay on record for the municipality, apart from the person (see `kept_apart`)."""
    erased_at = select(col(Resident.erased_at)).where(col(Resident.id) == resident_id).scalar_subquery()
    return and_(
        col(Case.resident_id) == resident_id, or_(erased_at.is_(None), col(Case.received_at) > erased_at)
    )


async def resident_of(session: AsyncSession, case: Case) -> Resident | None:
    """The case's resident; None once the retention period took the link (or the row is gone)."""
    return await session.get(Resident, case.resident_id) if case.resident_id is not None else None


async def resident_locale(session: AsyncSession, case: Case) -> str:
    """The language the case's resident is written to in: theirs, or after /forget the case's."""
    resident = await resident_of(session, case)
    return resident.locale if resident and resident.locale else case.locale


async def created_event(session: AsyncSession, case: Case) -> CaseEvent | None:
    """The CREATED event of a case that came outside Telegram (it names the clerk who registered
    it); None for a resident's case, which needs no look-up."""
    if case.channel == Channel.TELEGRAM:
        return None
    query = (
        select(CaseEvent)
        .where(col(CaseEvent.case_id) == case.id, col(CaseEvent.kind) == EventKind.CREATED)
        .order_by(col(CaseEvent.id))
        .limit(1)
    )
    return (await session.execute(query)).scalars().first()


def kept_apart(case: Case, resident: Resident | None) -> bool:
    """The resident erased their profile after this case came in (the rule of `owned_by`)."""
    return resident is not None and resident.erased_at is not None and case.received_at <= resident.erased_at


async def opened_since(session: AsyncSession, resident_id: int, start: datetime) -> int:
    """How many cases the resident opened since `start`."""
    query = (
        select(func.count())
        .select_from(Case)
        .where(col(Case.resident_id) == resident_id, col(Case.received_at) >= start)
    )
    return await session.scalar(query) or 0


async def case_by_update(session: AsyncSession, update_id: int) -> Case | None:
    return (
        await session.execute(select(Case).where(col(Case.source_update_id) == update_id))
    ).scalar_one_or_none()


async def case_events(session: AsyncSession, case_id: int) -> list[CaseEvent]:
    """The audit trail of a case, oldest first."""
    rows = await session.execute(
        select(CaseEvent)
        .where(col(CaseEvent.case_id) == case_id)
        .order_by(col(CaseEvent.at), col(CaseEvent.id))
    )
    return list(rows.scalars())


async def case_by_number(session: AsyncSession, number: str) -> Case | None:
    return (await session.execute(select(Case).where(col(Case.number) == number))).scalar_one_or_none()


async def traces_of(session: AsyncSession, case_ids: list[int]) -> list[CaseTrace]:
    """Every topic, card and post these cases ever had in the team groups, oldest first."""
    query = select(CaseTrace).where(col(CaseTrace.case_id).in_(case_ids)).order_by(col(CaseTrace.id))
    return list((await session.execute(query)).scalars())


async def clerk_messages(session: AsyncSession, case_ids: list[int]) -> list[tuple[int, int, int]]:
    """(case id, chat id, message id) of the group messages in these cases' trails: what clerks
    wrote (relayed to the resident, or notes)."""
    query = select(
        col(CaseEvent.case_id), col(CaseEvent.group_chat_id), col(CaseEvent.group_message_id)
    ).where(
        col(CaseEvent.case_id).in_(case_ids),
        col(CaseEvent.group_chat_id).is_not(None),
        col(CaseEvent.group_message_id).is_not(None),
    )
    rows = (await session.execute(query)).all()
    return [
        (case_id, chat, message)
        for case_id, chat, message in rows
        if chat is not None and message is not None
    ]


async def files_of_case(session: AsyncSession, case_id: int) -> tuple[int, int, set[str]]:
    """How many files the case holds, their bytes (as announced or stored), and their file_unique_ids."""
    query = select(col(Attachment.file_unique_id), func.coalesce(col(Attachment.size), 0)).where(
        col(Attachment.case_id) == case_id
    )
    rows = (await session.execute(query)).all()
    return len(rows), sum(int(size) for _, size in rows), {str(unique) for unique, _ in rows}


async def attachment_ids(session: AsyncSession, case_id: int) -> list[int]:
    """The case's files, oldest first."""
    return list(
        (
            await session.execute(
                select(col(Attachment.id))
                .where(col(Attachment.case_id) == case_id)
                .order_by(col(Attachment.id))
            )
        ).scalars()
    )


async def files_sent_since(session: AsyncSession, resident_id: int, start: datetime) -> tuple[int, int]:
    """How many files the resident sent (with a new case or added to one) since `start`, and their bytes."""
    query = (
        select(func.count(), func.coalesce(func.sum(func.coalesce(col(Attachment.size), 0)), 0))
        .select_from(Attachment)
        .join(CaseEvent, col(CaseEvent.id) == col(Attachment.event_id))
        .where(
            col(CaseEvent.actor_id) == resident_id,
            col(CaseEvent.kind).in_([EventKind.CREATED, EventKind.MESSAGE_IN]),
            col(Attachment.created_at) >= start,
        )
    )
    count, size = (await session.execute(query)).one()
    return int(count or 0), int(size or 0)


async def open_cases_of(session: AsyncSession, resident_id: int) -> list[Case]:
    """The resident's own cases still being handled, newest first."""
    query = (
        select(Case)
        .where(
            owned_by(resident_id),
            col(Case.status).not_in(sorted(CLOSED_STATUSES)),
            col(Case.purged_at).is_(None),
        )
        .order_by(col(Case.received_at).desc(), col(Case.id).desc())
    )
    return list((await session.execute(query)).scalars())


async def case_of_private_message(session: AsyncSession, resident_id: int, message_id: int) -> Case | None:
    """The resident's own case that a message in their private chat is about: one the bot sent
    about it (a notice, a relayed answer: recorded on its outbox row) or one they added to it."""
    sent = select(col(OutboxMessage.case_id)).where(
        col(OutboxMessage.sent_chat_id) == resident_id,
        col(OutboxMessage.sent_message_id) == message_id,
        col(OutboxMessage.case_id).is_not(None),
    )
    # Message ids count per chat: the same id is in every resident's chat, so only their own cases.
    recorded = (
        select(col(CaseEvent.case_id))
        .join(Case, col(Case.id) == col(CaseEvent.case_id))
        .where(col(CaseEvent.resident_message_id) == message_id, owned_by(resident_id))
    )
    for source in (sent, recorded):
        for case_id in (await session.execute(source.limit(5))).scalars():
            case = (
                await session.execute(select(Case).where(col(Case.id) == case_id, owned_by(resident_id)))
            ).scalar_one_or_none()
            if case is not None:
                return case
    return None


async def closing_event(session: AsyncSession, case: Case) -> CaseEvent | None:
    """The STATUS event that closed a closed case (it names who closed it); None for an open case."""
    if case.status not in CLOSED_STATUSES:
        return None
    query = (
        select(CaseEvent)
        .where(col(CaseEvent.case_id) == case.id, col(CaseEvent.kind) == EventKind.STATUS)
        .order_by(col(CaseEvent.id).desc())
        .limit(1)
    )
    event = (await session.execute(query)).scalars().first()
    return event if event is not None and (event.data or {}).get("to") == case.status else None


async def case_left_topic(session: AsyncSession, chat_id: int, topic_id: int) -> Case | None:
    """The case that was passed on from this forum topic (its PASSED event names the topic it left)."""
    query = (
        select(col(CaseEvent.case_id))
        .where(
            col(CaseEvent.kind) == EventKind.PASSED,
            col(CaseEvent.group_chat_id) == chat_id,
            col(CaseEvent.group_message_id) == topic_id,
        )
        .order_by(col(CaseEvent.id).desc())
        .limit(1)
    )
    case_id = (await session.execute(query)).scalars().first()
    return await session.get(Case, case_id) if case_id is not None else None


# --- a team's load ---


@dataclass(frozen=True)
class ClerkLoad:
    """A responsible clerk's open cases in a team, and how many of them are overdue."""

    name: str | None  # None: the cases nobody is responsible for
    open: int
    overdue: int


def load_per_clerk(cases: list[Case], today: date) -> list[ClerkLoad]:
    """Open cases per responsible clerk, the busiest first (cases in the order given within equal counts)."""
    load: dict[str | None, list[Case]] = {}
    for case in cases:
        load.setdefault(case.assignee_name or None, []).append(case)
    rows = [ClerkLoad(name, len(own), sum(1 for c in own if c.due < today)) for name, own in load.items()]
    return sorted(rows, key=lambda row: -row.open)


class CaseQueries:
    def __init__(self, database: Database, teams: TeamDirectory) -> None:
        self.database = database
        self.teams = teams  # the default team also holds the cases from before teams

    # --- a case by what points at it ---

    async def get(self, case_id: int) -> Case | None:
        async with self.database.read() as session:
            return await session.get(Case, case_id)

    async def by_number(self, number: str) -> Case | None:
        async with self.database.read() as session:
            return await case_by_number(session, number)

    async def by_update(self, update_id: int) -> Case | None:
        """The case this update opened already (a retried delivery)."""
        async with self.database.read() as session:
            return await case_by_update(session, update_id)

    async def by_topic(self, chat_id: int, topic_id: int) -> Case | None:
        async with self.database.read() as session:
            query = select(Case).where(col(Case.group_chat_id) == chat_id, col(Case.topic_id) == topic_id)
            return (await session.execute(query)).scalars().first()

    async def by_former_topic(self, chat_id: int, topic_id: int) -> Case | None:
        """The case that was passed on from this (now closed) forum topic."""
        async with self.database.read() as session:
            return await case_left_topic(session, chat_id, topic_id)

    async def by_group_message(self, chat_id: int, message_id: int) -> Case | None:
        """The case whose card, or one of whose relayed messages or notes, is this group message."""
        async with self.database.read() as session:
            query = select(Case).where(
                col(Case.group_chat_id) == chat_id, col(Case.card_message_id) == message_id
            )
            case = (await session.execute(query)).scalars().first()
            if case is None:
                event_query = select(col(CaseEvent.case_id)).where(
                    col(CaseEvent.group_chat_id) == chat_id, col(CaseEvent.group_message_id) == message_id
                )
                case_id = (await session.execute(event_query)).scalars().first()
                case = await session.get(Case, case_id) if case_id is not None else None
            return case

    # --- about a case ---

    async def history(self, case_id: int) -> list[CaseEvent]:
        async with self.database.read() as session:
            return await case_events(session, case_id)

    async def resident(self, case: Case) -> Resident | None:
        async with self.database.read() as session:
            return await resident_of(session, case)

    async def resident_locale(self, case: Case) -> str:
        """The language the case's resident is written to in (bot.services.case_notices uses the same rule)."""
        async with self.database.read() as session:
            return await resident_locale(session, case)

    async def closing(self, case: Case) -> CaseEvent | None:
        """The STATUS event that closed the case (who closed it), if it is closed."""
        async with self.database.read() as session:
            return await closing_event(session, case)

    async def registration(self, case: Case) -> CaseEvent | None:
        """The CREATED event of a case that came outside Telegram (it names the clerk who registered it)."""
        async with self.database.read() as session:
            return await created_event(session, case)

    # --- the teams' cases ---

    async def open_cases(self, team: Team | None = None, assignee_id: int | None = None) -> list[Case]:
        """Open cases (of a team, of a clerk), the nearest deadline first."""
        query = select(Case).where(col(Case.status).in_([s.value for s in OPEN_STATUSES]))
        if team is not None:
            mine = col(Case.team_id) == team.id
            query = query.where(
                or_(mine, col(Case.team_id).is_(None)) if team.id == self.teams.default.id else mine
            )
        if assignee_id is not None:
            query = query.where(col(Case.assignee_id) == assignee_id)
        async with self.database.read() as session:
            cases = list((await session.execute(query)).scalars())
        return sorted(cases, key=lambda c: (c.due, c.id))

    async def team_load(self, team: Team, today: date) -> tuple[int, list[ClerkLoad]]:
        """How many cases the team has open, and their load per responsible clerk."""
        cases = await self.open_cases(team)
        return len(cases), load_per_clerk(cases, today)

    # --- a resident's own cases ---

    async def page_for_resident(self, resident_id: int, page: int, per_page: int) -> tuple[list[Case], int]:
        """One page of the resident's cases, newest first, and the total."""
        async with self.database.read() as session:
            total = await session.scalar(select(func.count()).select_from(Case).where(owned_by(resident_id)))
            rows = await session.execute(
                select(Case)
                .where(owned_by(resident_id))
                .order_by(col(Case.received_at).desc(), col(Case.id).desc())
                .offset(page * per_page)
                .limit(per_page)
            )
            return list(rows.scalars()), total or 0

    async def own_case(
        self, resident_id: int, *, case_id: int | None = None, number: str | None = None
    ) -> Case | None:
        """The case if it is the resident's; None otherwise, whether it exists or not."""
        query = select(Case).where(owned_by(resident_id))
        query = (
            query.where(col(Case.id) == case_id)
            if case_id is not None
            else query.where(col(Case.number) == number)
        )
        async with self.database.read() as session:
            return (await session.execute(query)).scalar_one_or_none()

    async def resident_open_cases(self, resident_id: int) -> list[Case]:
        """The resident's cases still being handled, newest first."""
        async with self.database.read() as session:
            return await open_cases_of(session, resident_id)

    async def case_of_message(self, resident_id: int, message_id: int) -> Case | None:
        """The resident's own case that a message in their chat is about (the bot's notice or answer,
        or what they added); None for any other message."""
        async with self.database.read() as session:
            return await case_of_private_message(session, resident_id, message_id)
