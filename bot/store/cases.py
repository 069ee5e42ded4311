"""Case rows: numbering and look-ups. Rules (deadlines, idempotency) live in bot.services.cases."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.store.db import insert_for
from bot.store.models import CLOSED_STATUSES, Attachment, Case, CaseCounter, CaseEvent, CaseTrace, Channel, EventKind, OutboxMessage, Resident, TraceKind


def owned_by(resident_id: int) -> ColumnElement[bool]:
    """The resident's own cases: those received since they last erased their profile (/forget).
    Older ones stay on record for the municipality, apart from the person (see `kept_apart`)."""
    erased_at = select(col(Resident.erased_at)).where(col(Resident.id) == resident_id).scalar_subquery()
    return and_(col(Case.resident_id) == resident_id, or_(erased_at.is_(None), col(Case.received_at) > erased_at))


async def resident_of(session: AsyncSession, case: Case) -> Resident | None:
    """The case's resident; None once the retention period took the link (or the row is gone)."""
    return await session.get(Resident, case.resident_id) if case.resident_id is not None else None


async def created_event(session: AsyncSession, case: Case) -> CaseEvent | None:
    """The CREATED event of a case that came outside Telegram (it names the clerk who registered
    it); None for a resident's case, which needs no look-up."""
    if case.channel == Channel.TELEGRAM:
        return None
    query = select(CaseEvent).where(col(CaseEvent.case_id) == case.id, col(CaseEvent.kind) == EventKind.CREATED).order_by(col(CaseEvent.id)).limit(1)
    return (await session.execute(query)).scalars().first()


def kept_apart(case: Case, resident: Resident | None) -> bool:
    """The resident erased their profile after this case came in (the rule of `owned_by`)."""
    return resident is not None and resident.erased_at is not None and case.received_at <= resident.erased_at


async def allocate_sequence(session: AsyncSession, year: int) -> int:
    """The next number of `year`, inside the caller's transaction.

    The counter row stays locked until the transaction ends, so concurrent creators wait for
    each other, and a transaction that rolls back gives its number back: no gaps, no repeats.
    """
    await session.execute(insert_for(session, CaseCounter).values(year=year, last=0).on_conflict_do_nothing(index_elements=["year"]))
    result = await session.execute(update(CaseCounter).where(col(CaseCounter.year) == year).values(last=CaseCounter.last + 1).returning(col(CaseCounter.last)))
    return result.scalar_one()


async def opened_since(session: AsyncSession, resident_id: int, start: datetime) -> int:
    """How many cases the resident opened since `start`."""
    query = select(func.count()).select_from(Case).where(col(Case.resident_id) == resident_id, col(Case.received_at) >= start)
    return await session.scalar(query) or 0


async def case_by_update(session: AsyncSession, update_id: int) -> Case | None:
    return (await session.execute(select(Case).where(col(Case.source_update_id) == update_id))).scalar_one_or_none()


async def case_events(session: AsyncSession, case_id: int) -> list[CaseEvent]:
    """The audit trail of a case, oldest first."""
    rows = await session.execute(select(CaseEvent).where(col(CaseEvent.case_id) == case_id).order_by(col(CaseEvent.at), col(CaseEvent.id)))
    return list(rows.scalars())


async def case_by_number(session: AsyncSession, number: str) -> Case | None:
    return (await session.execute(select(Case).where(col(Case.number) == number))).scalar_one_or_none()


def add_trace(session: AsyncSession, case_id: int, kind: TraceKind, chat_id: int, *, topic_id: int | None = None, message_id: int | None = None) -> None:
    """Remember a topic, card or post of the case in a team group (see CaseTrace)."""
    session.add(CaseTrace(case_id=case_id, kind=kind, chat_id=chat_id, topic_id=topic_id, message_id=message_id))


async def traces_of(session: AsyncSession, case_ids: list[int]) -> list[CaseTrace]:
    """Every topic, card and post these cases ever had in the team groups, oldest first."""
    query = select(CaseTrace).where(col(CaseTrace.case_id).in_(case_ids)).order_by(col(CaseTrace.id))
    return list((await session.execute(query)).scalars())


async def clerk_messages(session: AsyncSession, case_ids: list[int]) -> list[tuple[int, int, int]]:
    """(case id, chat id, message id) of the group messages in these cases' trails: what clerks
    wrote (relayed to the resident, or notes)."""
    query = select(col(CaseEvent.case_id), col(CaseEvent.group_chat_id), col(CaseEvent.group_message_id)).where(
        col(CaseEvent.case_id).in_(case_ids), col(CaseEvent.group_chat_id).is_not(None), col(CaseEvent.group_message_id).is_not(None)
    )
    rows = (await session.execute(query)).all()
    return [(case_id, chat, message) for case_id, chat, message in rows if chat is not None and message is not None]


async def forget_traces(session: AsyncSession, case_ids: list[int]) -> None:
    """The cases' topics and messages are being deleted: their references go too."""
    await session.execute(delete(CaseTrace).where(col(CaseTrace.case_id).in_(case_ids)))


async def files_of_case(session: AsyncSession, case_id: int) -> tuple[int, int, set[str]]:
    """How many files the case holds, their bytes (as announced or stored), and their file_unique_ids."""
    query = select(col(Attachment.file_unique_id), func.coalesce(col(Attachment.size), 0)).where(col(Attachment.case_id) == case_id)
    rows = (await session.execute(query)).all()
    return len(rows), sum(int(size) for _, size in rows), {str(unique) for unique, _ in rows}


async def files_sent_since(session: AsyncSession, resident_id: int, start: datetime) -> tuple[int, int]:
    """How many files the resident sent (with a new case or added to one) since `start`, and their bytes."""
    query = (
        select(func.count(), func.coalesce(func.sum(func.coalesce(col(Attachment.size), 0)), 0))
        .select_from(Attachment)
        .join(CaseEvent, col(CaseEvent.id) == col(Attachment.event_id))
        .where(col(CaseEvent.actor_id) == resident_id, col(CaseEvent.kind).in_([EventKind.CREATED, EventKind.MESSAGE_IN]), col(Attachment.created_at) >= start)
    )
    count, size = (await session.execute(query)).one()
    return int(count or 0), int(size or 0)


async def open_cases_of(session: AsyncSession, resident_id: int) -> list[Case]:
    """The resident's own cases still being handled, newest first."""
    query = (
        select(Case)
        .where(owned_by(resident_id), col(Case.status).not_in(sorted(CLOSED_STATUSES)), col(Case.purged_at).is_(None))
        .order_by(col(Case.received_at).desc(), col(Case.id).desc())
    )
    return list((await session.execute(query)).scalars())


async def case_of_private_message(session: AsyncSession, resident_id: int, message_id: int) -> Case | None:
    """The resident's own case that a message in their private chat is about: one the bot sent
    about it (a notice, a relayed answer: recorded on its outbox row) or one they added to it."""
    sent = select(col(OutboxMessage.case_id)).where(
        col(OutboxMessage.sent_chat_id) == resident_id, col(OutboxMessage.sent_message_id) == message_id, col(OutboxMessage.case_id).is_not(None)
    )
    recorded = select(col(CaseEvent.case_id)).where(col(CaseEvent.resident_message_id) == message_id)
    for source in (sent, recorded):
        for case_id in (await session.execute(source.limit(5))).scalars():
            case = (await session.execute(select(Case).where(col(Case.id) == case_id, owned_by(resident_id)))).scalar_one_or_none()
            if case is not None:
                return case
    return None


async def closing_event(session: AsyncSession, case: Case) -> CaseEvent | None:
    """The STATUS event that closed a closed case (it names who closed it); None for an open case."""
    if case.status not in CLOSED_STATUSES:
        return None
    query = select(CaseEvent).where(col(CaseEvent.case_id) == case.id, col(CaseEvent.kind) == EventKind.STATUS).order_by(col(CaseEvent.id).desc()).limit(1)
    event = (await session.execute(query)).scalars().first()
    return event if event is not None and (event.data or {}).get("to") == case.status else None


async def case_left_topic(session: AsyncSession, chat_id: int, topic_id: int) -> Case | None:
    """The case that was passed on from this forum topic (its PASSED event names the topic it left)."""
    query = (
        select(col(CaseEvent.case_id))
        .where(col(CaseEvent.kind) == EventKind.PASSED, col(CaseEvent.group_chat_id) == chat_id, col(CaseEvent.group_message_id) == topic_id)
        .order_by(col(CaseEvent.id).desc())
        .limit(1)
    )
    case_id = (await session.execute(query)).scalars().first()
    return await session.get(Case, case_id) if case_id is not None else None
