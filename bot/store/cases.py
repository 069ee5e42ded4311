"""Case rows: numbering and look-ups. Rules (deadlines, idempotency) live in bot.services.cases."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.db import insert_for
from bot.store.models import Case, CaseCounter, CaseEvent, Channel, EventKind, Resident


def owned_by(resident_id: int) -> ColumnElement[bool]:
    """The resident's own cases: those received since they last erased their profile (/forget).
    Older ones stay on record for the municipality, apart from the person (see `kept_apart`)."""
    erased_at = select(Resident.erased_at).where(Resident.id == resident_id).scalar_subquery()
    return and_(Case.resident_id == resident_id, or_(erased_at.is_(None), Case.received_at > erased_at))


async def resident_of(session: AsyncSession, case: Case) -> Resident | None:
    """The case's resident; None once the retention period took the link (or the row is gone)."""
    return await session.get(Resident, case.resident_id) if case.resident_id is not None else None


async def created_event(session: AsyncSession, case: Case) -> CaseEvent | None:
    """The CREATED event of a case that came outside Telegram (it names the clerk who registered
    it); None for a resident's case, which needs no look-up."""
    if case.channel == Channel.TELEGRAM:
        return None
    query = select(CaseEvent).where(CaseEvent.case_id == case.id, CaseEvent.kind == EventKind.CREATED).order_by(CaseEvent.id).limit(1)
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
    result = await session.execute(update(CaseCounter).where(CaseCounter.year == year).values(last=CaseCounter.last + 1).returning(CaseCounter.last))
    return result.scalar_one()


async def case_by_update(session: AsyncSession, update_id: int) -> Case | None:
    return (await session.execute(select(Case).where(Case.source_update_id == update_id))).scalar_one_or_none()


async def case_events(session: AsyncSession, case_id: int) -> list[CaseEvent]:
    """The audit trail of a case, oldest first."""
    rows = await session.execute(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.at, CaseEvent.id))
    return list(rows.scalars())


async def case_by_number(session: AsyncSession, number: str) -> Case | None:
    return (await session.execute(select(Case).where(Case.number == number))).scalar_one_or_none()
