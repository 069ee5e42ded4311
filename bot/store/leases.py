"""One leased queue for every table of things to send (the outbox's rows, a broadcast's
deliveries): a sender claims pending rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so two
processes never take the same row; SQLite has one writer at a time), marks them `sending` under
its name, and records the outcome. A row it held when it stopped is pending again: at once for
the same instance (`resume_own`), after the lease for another one's (`recover`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy import update
from sqlalchemy.sql import ColumnElement, Select
from sqlmodel import SQLModel, col

from bot.store.db import Database, rowcount
from bot.store.models import utcnow

log = logging.getLogger(__name__)

PENDING, SENDING = "pending", "sending"  # the same words in OutboxStatus and DeliveryStatus


# A table with id, status, claimed_by, claimed_at and attempts.
Row = TypeVar("Row", bound=SQLModel)


@dataclass(frozen=True)
class LeasedQueue(Generic[Row]):
    model: type[Row]
    worker: str
    lease: timedelta

    async def claim(self, database: Database, due: Select[Any]) -> list[Row]:
        """Claim the rows `due` selects (their ids, pending, ordered and limited by the caller)."""
        table: Any = self.model
        async with database.write() as session:
            result = await session.execute(
                update(table)
                .where(col(table.id).in_(due.with_for_update(skip_locked=True).scalar_subquery()))
                .values(
                    status=SENDING, claimed_by=self.worker, claimed_at=utcnow(), attempts=table.attempts + 1
                )
                .returning(table)
                .execution_options(synchronize_session=False)
            )
            return sorted(result.scalars(), key=lambda row: row.id)

    async def resume_own(self, database: Database, message: str) -> int:
        """On start (and on a graceful stop): what this instance holds is pending again, at once."""
        table: Any = self.model
        return await self.release(database, col(table.claimed_by) == self.worker, message)

    async def recover(self, database: Database, message: str) -> int:
        """Rows held by an instance that died (its lease expired) are pending again."""
        table: Any = self.model
        return await self.release(database, col(table.claimed_at) < utcnow() - self.lease, message)

    async def release(
        self, database: Database, condition: ColumnElement[bool], message: str | None = None
    ) -> int:
        table: Any = self.model
        async with database.write() as session:
            result = await session.execute(
                update(table)
                .where(col(table.status) == SENDING, condition)
                .values(status=PENDING, claimed_by=None)
            )
        if rowcount(result) and message:
            log.warning(message, extra={"rows": rowcount(result)})
        return rowcount(result)
