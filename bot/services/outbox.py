"""The outbox: every message that matters, stored with the change that causes it, sent until
Telegram gives a permanent answer.

A change to a case writes its messages (the resident's notice, the card edit, a post in the
team's group) as `OutboxMessage` rows in the same transaction, so a crash after the commit loses
nothing: the rows are still pending when the process comes back. Senders claim due rows and send
each through the limiter; the outcome is recorded at once, with the sent message's chat and id.
A row's kind and payload are one typed model (bot.services.outbox_payloads); who sends each kind
is one table (bot.services.senders).

- Order: rows sharing a `key` (one case's posts in one group, one resident's notices) go out in
  id order: a row is claimed only when no earlier row of its key is unfinished.
- 429: the lane is paused by the limiter and the row waits `retry_after`; it never fails.
- 5xx, timeouts, network errors: retried with backoff, for as long as it takes.
- Permanent answers (blocked, chat not found, a bad request) fail the row, with the error kept.
- Pools: some kinds (the webhooks to the document management system) are sent by workers of
  their own, with their own concurrency and backoff, so a slow or unreachable receiver never
  takes a slot from Telegram's rows; the rest share the main workers.
- Crash: rows a sender held stay `sending`; the same instance (INSTANCE_NAME, default the host
  name) takes its own back at once on restart, other instances' after `lease`. A row sent just
  before a crash and not yet recorded is sent again: at least once, with that one window.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from bot.aio import finish_or_cancel, wait_for_event
from bot.services.outbox_payloads import BadPayload, Kind, Payload
from bot.store.db import Database, rowcount
from bot.store.leases import LeasedQueue
from bot.store.models import OutboxMessage, OutboxStatus, utcnow
from bot.telegram import Outcome, Verdict, classify, single_attempt

log = logging.getLogger(__name__)

UNFINISHED = (OutboxStatus.PENDING, OutboxStatus.SENDING)


NO_CHAT = 0  # the chat_id of rows that send nothing to a chat (WEBHOOK, STORE_FILE, DELETE_FILES)
_ADDED_KINDS = "petent_outbox_kinds"  # session.info: the kinds of the rows a transaction added


def resident_key(resident_id: int) -> str:
    return f"r:{resident_id}"


def group_key(chat_id: int, case_id: int | None = None) -> str:
    return f"g:{chat_id}:{case_id}" if case_id is not None else f"g:{chat_id}"


def enqueue(
    session: AsyncSession,
    payload: Payload,
    chat_id: int,
    *,
    key: str,
    case_id: int | None = None,
    due_at: datetime | None = None,
) -> OutboxMessage:
    """Add a row of the payload's kind (bot.services.outbox_payloads) inside the caller's
    transaction: once it commits, the senders of its kind wake."""
    kind = payload.KIND
    row = OutboxMessage(
        kind=kind, key=key, chat_id=chat_id, case_id=case_id, payload=payload.dump(), due_at=due_at
    )
    session.add(row)
    session.info.setdefault(_ADDED_KINDS, set()).add(kind)
    return row


async def release_now(session: AsyncSession, kind: Kind, key: str) -> bool:
    """The pending, unclaimed rows of this kind and key are due at once (a gathering window the
    person ended); the senders wake when the transaction commits. False if there was none."""
    result = await session.execute(
        update(OutboxMessage)
        .where(
            col(OutboxMessage.key) == key,
            col(OutboxMessage.kind) == kind,
            col(OutboxMessage.status) == OutboxStatus.PENDING,
        )
        .values(due_at=None)
    )
    if rowcount(result) == 0:
        return False
    session.info.setdefault(_ADDED_KINDS, set()).add(kind)
    return True


async def pending_row(session: AsyncSession, kind: Kind, key: str) -> OutboxMessage | None:
    """The last unsent, unclaimed row of this kind and key: to gather into instead of adding one."""
    query = (
        select(OutboxMessage)
        .where(
            col(OutboxMessage.key) == key,
            col(OutboxMessage.kind) == kind,
            col(OutboxMessage.status) == OutboxStatus.PENDING,
        )
        .order_by(col(OutboxMessage.id).desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


@dataclass
class Sent:
    """What Telegram answered; `record` writes what follows from it in the same transaction."""

    chat_id: int | None = None
    message_id: int | None = None
    record: Callable[[AsyncSession], Awaitable[None]] | None = None


Handler = Callable[[OutboxMessage], Awaitable[Sent]]


class Permanent(Exception):
    """A handler's own verdict that the row can never be sent (e.g. its case is gone)."""


class Retry(Exception):
    """A handler's own verdict that the row could not be sent now (e.g. a receiver answered 503):
    it is tried again after `delay` seconds, or the usual backoff."""

    def __init__(self, error: str, delay: float | None = None) -> None:
        super().__init__(error)
        self.delay = delay


@dataclass(frozen=True)
class Pool:
    """Kinds sent by workers of their own (at most `concurrency` rows at once), retried with
    backoff up to `max_backoff` seconds."""

    kinds: frozenset[str]
    concurrency: int
    max_backoff: float


@dataclass
class _Workers:
    """One claiming loop: the pool's kinds (None: every kind no pool takes)."""

    kinds: frozenset[str] | None
    exclude: frozenset[str]
    concurrency: int
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    in_flight: set[asyncio.Task[None]] = field(default_factory=set)

    def takes(self, kind: str) -> bool:
        return kind in self.kinds if self.kinds is not None else kind not in self.exclude


class Outbox:
    def __init__(
        self,
        database: Database,
        worker: str,
        *,
        concurrency: int = 32,
        lease: timedelta = timedelta(minutes=2),
        max_backoff: float = 30.0,
        on_blocked: Callable[[OutboxMessage], Awaitable[None]] | None = None,
        on_migrated: Callable[[int, int], Awaitable[None]] | None = None,
        pools: Iterable[Pool] = (),
    ) -> None:
        self.database = database
        self.worker = worker
        self.concurrency = concurrency
        self.lease = lease
        self.max_backoff = max_backoff
        self.on_blocked = on_blocked
        self.on_migrated = on_migrated
        self.handlers: dict[str, Handler] = {}
        pools = list(pools)
        pooled = frozenset(kind for pool in pools for kind in pool.kinds)
        self._workers = [_Workers(None, pooled, concurrency)]
        self._workers += [_Workers(pool.kinds, frozenset(), pool.concurrency) for pool in pools]
        self._backoff_of = {kind: pool.max_backoff for pool in pools for kind in pool.kinds}
        self._stopping = False
        self._queue = LeasedQueue(OutboxMessage, worker, lease)
        database.after_commit.append(self._added)

    def handle(self, kind: Kind, handler: Handler) -> None:
        """`handler` sends the rows of `kind` from now on (a test's stand-in replaces the sender)."""
        self.handlers[kind] = handler

    def handle_all(self, senders: Mapping[Kind, Handler]) -> None:
        """The application's senders, one per kind (bot.services.senders.outbox_senders)."""
        if twice := sorted(set(senders) & set(self.handlers)):
            raise ValueError(f"the outbox already has a sender for {', '.join(twice)}")
        for kind, handler in senders.items():
            self.handlers[kind] = handler

    def wake(self, kinds: Iterable[str] | None = None) -> None:
        """Look for work now rather than at the next tick: the senders of `kinds`, or all of them."""
        for workers in self._workers:
            if kinds is None or any(workers.takes(kind) for kind in kinds):
                workers.wake.set()

    def _added(self, session: AsyncSession) -> None:
        """A transaction committed: the senders of the kinds it added wake (not every pool: each
        pool that wakes claims, a write transaction, for nothing if it has no new rows)."""
        if kinds := session.info.pop(_ADDED_KINDS, None):
            self.wake(kinds)

    def close(self) -> None:
        if self._added in self.database.after_commit:
            self.database.after_commit.remove(self._added)

    # --- claiming ---

    async def claim(
        self, limit: int, kinds: frozenset[str] | None = None, exclude: frozenset[str] = frozenset()
    ) -> list[OutboxMessage]:
        """Claim up to `limit` due rows (of `kinds` only, if given; never of `exclude`)."""
        earlier = aliased(OutboxMessage)
        blocked_by_earlier = (
            select(col(earlier.id))
            .where(
                col(earlier.key) == OutboxMessage.key,
                col(earlier.id) < OutboxMessage.id,
                col(earlier.status).in_(UNFINISHED),
            )
            .exists()
        )
        conditions = [
            col(OutboxMessage.status) == OutboxStatus.PENDING,
            or_(col(OutboxMessage.due_at).is_(None), col(OutboxMessage.due_at) <= utcnow()),
            ~blocked_by_earlier,
        ]
        if kinds is not None:
            conditions.append(col(OutboxMessage.kind).in_(sorted(kinds)))
        if exclude:
            conditions.append(col(OutboxMessage.kind).not_in(sorted(exclude)))
        return await self._queue.claim(
            self.database,
            select(col(OutboxMessage.id)).where(*conditions).order_by(col(OutboxMessage.id)).limit(limit),
        )

    async def resume_own(self) -> int:
        """On start: what this instance held when it stopped is pending again, at once."""
        return await self._queue.resume_own(self.database, "outbox rows of this instance resumed")

    async def recover(self) -> int:
        """Rows held by an instance that died (its lease expired) are pending again."""
        return await self._queue.recover(self.database, "outbox rows of a stopped instance resumed")

    # --- sending ---

    async def run(self) -> None:
        """Send until stopped (`stop`, even before this started) or cancelled."""
        await self.resume_own()
        await asyncio.gather(
            *(self._run(workers, recovers=index == 0) for index, workers in enumerate(self._workers))
        )

    def stop(self) -> None:
        """`run` returns at its next tick, never amid a claim: a task cancelled inside a SQLite
        transaction can leave it open (aiosqlite finishes the statement in its thread), and the
        next write, `drain`'s included, then waits out the busy timeout."""
        self._stopping = True
        self.wake()

    async def _run(self, workers: _Workers, recovers: bool) -> None:
        ticks = 0
        while not self._stopping:
            free = workers.concurrency - len(workers.in_flight)
            if free > 0:
                for row in await self._claim_safely(free, workers):
                    task = asyncio.create_task(self._send(row))
                    workers.in_flight.add(task)
                    task.add_done_callback(functools.partial(self._done, workers))
            ticks += 1
            if recovers and ticks % 30 == 0:
                await self.recover()
            workers.wake.clear()
            if self._stopping:  # read after the clear: a stop's wake-up is not lost
                return
            await wait_for_event(workers.wake, 1.0)  # else a tick: due times and leases are looked at again

    def _done(self, workers: _Workers, task: asyncio.Task[None]) -> None:
        workers.in_flight.discard(task)
        workers.wake.set()  # the next row of its key may be due now

    async def _claim_safely(self, limit: int, workers: _Workers) -> list[OutboxMessage]:
        try:
            return await self.claim(limit, workers.kinds, workers.exclude)
        except Exception:  # a database hiccup: try again at the next tick
            log.exception("could not claim outbox rows")
            return []

    async def drain(self, timeout: float = 10.0) -> None:
        """On a graceful stop: let sends in flight finish; what is left is resumed on the next start."""
        await finish_or_cancel([task for workers in self._workers for task in workers.in_flight], timeout)
        await self._queue.resume_own(self.database, "outbox rows left for the next start")

    async def send_due_now(self) -> None:
        """Claim and send what is due, once, and wait for it (tests and `petent` commands)."""
        while rows := await self.claim(self.concurrency):
            await asyncio.gather(*(self._send(row) for row in rows))

    async def _send(self, row: OutboxMessage) -> None:
        handler = self.handlers.get(row.kind)
        try:
            if handler is None:
                raise Permanent(f"no handler for {row.kind}")
            with single_attempt():
                sent = await handler(row)
        except asyncio.CancelledError:
            raise
        except Retry as exc:
            await self._retry(row, self._backoff(row) if exc.delay is None else exc.delay, str(exc))
        except (Permanent, BadPayload) as exc:
            await self._fail(row, str(exc))
        except Exception as exc:
            outcome = classify(exc)
            if outcome.verdict is Verdict.UNEXPECTED:  # a bug or the database: say so
                log.exception("outbox row could not be sent", extra={"row": row.id, "kind": row.kind})
            await self._after(row, outcome)
        else:
            await self._record_sent(row, sent)

    async def _after(self, row: OutboxMessage, outcome: Outcome) -> None:
        """What Telegram's answer (bot.telegram.classify) means for the row."""
        match outcome.verdict:
            case Verdict.MOVED:
                assert outcome.chat_id is not None
                if self.on_migrated is not None:
                    await self.on_migrated(row.chat_id, outcome.chat_id)
                await self._retry(row, 0.0, outcome.error, chat_id=outcome.chat_id)
            case Verdict.PACED:
                await self._retry(row, outcome.retry_after, outcome.error, count=False)
            case Verdict.BLOCKED:
                await self._fail(row, outcome.error)
                if self.on_blocked is not None:
                    await self.on_blocked(row)
            case Verdict.PERMANENT:
                await self._fail(row, outcome.error)
            case Verdict.TRANSIENT | Verdict.UNEXPECTED:  # keep the row, try later
                await self._retry(row, self._backoff(row), outcome.error)

    def _backoff(self, row: OutboxMessage) -> float:
        return min(
            self._backoff_of.get(row.kind, self.max_backoff), 0.5 * 2.0 ** max(0, min(row.attempts, 30) - 1)
        )

    async def _record_sent(self, row: OutboxMessage, sent: Sent) -> None:
        async with self.database.write() as session:
            await session.execute(
                update(OutboxMessage)
                .where(col(OutboxMessage.id) == row.id)
                .values(
                    status=OutboxStatus.SENT,
                    claimed_by=None,
                    sent_at=utcnow(),
                    sent_chat_id=sent.chat_id,
                    sent_message_id=sent.message_id,
                    last_error=None,
                )
            )
            if sent.record is not None:
                await sent.record(session)

    async def _retry(
        self, row: OutboxMessage, delay: float, error: str, *, count: bool = True, chat_id: int | None = None
    ) -> None:
        values: dict[str, Any] = {
            "status": OutboxStatus.PENDING,
            "claimed_by": None,
            "last_error": error,
            "due_at": utcnow() + timedelta(seconds=delay),
        }
        if not count:
            values["attempts"] = OutboxMessage.attempts - 1  # a 429 is Telegram's pacing, not a failure
        if chat_id is not None:
            values["chat_id"] = chat_id
        log.info(
            "outbox row will be retried",
            extra={"row": row.id, "kind": row.kind, "error": error, "delay": round(delay, 1)},
        )
        await self._write_outcome(row, values)

    async def _fail(self, row: OutboxMessage, error: str) -> None:
        log.warning(
            "outbox row failed for good",
            extra={"row": row.id, "kind": row.kind, "chat_id": row.chat_id, "error": error},
        )
        await self._write_outcome(
            row, {"status": OutboxStatus.FAILED, "claimed_by": None, "last_error": error}
        )

    async def _write_outcome(self, row: OutboxMessage, values: dict[str, Any]) -> None:
        # The database may be what failed: keep trying, the row is ours until we say otherwise.
        for attempt in range(1, 6):
            try:
                async with self.database.write() as session:
                    await session.execute(
                        update(OutboxMessage).where(col(OutboxMessage.id) == row.id).values(**values)
                    )
                return
            except Exception:
                log.exception("could not record an outbox outcome", extra={"row": row.id, "attempt": attempt})
                await asyncio.sleep(min(10, attempt * 2))


async def follow_migration(session: AsyncSession, old_chat_id: int, new_chat_id: int) -> None:
    """A group became a supergroup: its unsent rows go to the new id."""
    await session.execute(
        update(OutboxMessage)
        .where(col(OutboxMessage.chat_id) == old_chat_id, col(OutboxMessage.status).in_(UNFINISHED))
        .values(chat_id=new_chat_id)
    )
