"""Case events for the municipality's document management system (CASE_WEBHOOKS).

When a case is opened, passed to another team, extended, answered, closed otherwise (redirected,
rejected) or reopened, the case commands write one outbox row per receiver in the same transaction as
the change (`queue_event`). The row holds the event as it was then: the body is a snapshot, not
the case as it is when the row is finally sent. `WebhookSender` POSTs it as JSON, signed:

    X-Petent-Timestamp: 1796367600  (Unix seconds of this attempt)
    X-Petent-Signature: sha256=<hex HMAC-SHA256(receiver's secret, "<timestamp>." + the raw body)>
    X-Petent-Event: case.opened            X-Petent-Delivery: <the outbox row id>

A receiver refuses a timestamp more than REPLAY_WINDOW (5 minutes) from its own clock (`verify`):
a captured request cannot be played again later. Receivers are https://, or http:// on loopback.

Rows of one receiver and one case share a key, so each receiver gets each case's events in
order, and a receiver that is down holds up neither the others nor Telegram (the outbox sends
webhooks in a pool of their own). Anything but a 2xx answer is retried with backoff
(CASE_WEBHOOK_MAX_BACKOFF_SECONDS at most), for as long as it takes: an outage of the receiver
loses nothing. Delivery is at least once: a receiver drops a `delivery` it has already stored.
Once delivered, the row keeps only the event's name and id: the personal data stays in the case.
Bodies are never logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot import metrics
from bot.services.cases import Contact
from bot.services.outbox import Permanent, Retry, Sent, enqueue
from bot.services.outbox_payloads import WebhookPayload
from bot.settings import WebhookReceiver
from bot.store.models import Case, CaseEvent, OutboxMessage, Resident, utcnow

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Petent-Signature"
TIMESTAMP_HEADER = "X-Petent-Timestamp"  # Unix seconds of this attempt, signed with the body
REPLAY_WINDOW = 300  # seconds: a receiver refuses a request whose time is further from its own
EVENT_HEADER = "X-Petent-Event"
DELIVERY_HEADER = "X-Petent-Delivery"
USER_AGENT = "Petent-Webhooks/1"
ANSWER_MAX = 64 * 1024  # bytes of a receiver's answer read at most
VERSION = 1  # of the body; a change that could break a receiver gets a new one


class Event(StrEnum):
    OPENED = "case.opened"
    PASSED = "case.passed"  # to another team
    EXTENDED = "case.extended"  # the deadline
    ANSWERED = "case.answered"  # the answer was given: the case is closed
    CLOSED = "case.closed"  # closed without an answer of its own: redirected elsewhere or rejected
    REOPENED = "case.reopened"  # by the resident or a clerk, after closing


def hook_key(receiver: str, case_id: int) -> str:
    return f"hook:{receiver}:{case_id}"


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def case_snapshot(case: Case, resident: Resident | None, attachments: int) -> dict[str, Any]:
    """The case as the document management system registers it, personal data included: the
    record is the municipality's (see docs/privacy.md)."""
    contact = Contact.from_json(case.contact)
    person: dict[str, Any] | None = None
    if contact is not None:
        person = {
            "name": contact.name,
            "phone": contact.phone,
            "email": contact.email,
            "postal_address": contact.address,
            "answer_by": contact.answer_by.value,
        }
    elif case.resident_id is not None:
        person = {
            "name": (resident.display_name if resident else "") or None,
            "phone": resident.phone if resident else None,
            "email": None,
            "postal_address": None,
            "answer_by": "telegram",
        }
    return {
        "number": case.number,
        "kind": case.kind,
        "category": case.category_id,
        "eldership": case.eldership_id,
        "team": case.team_id,
        "status": case.status,
        "channel": case.channel,
        "received_at": _iso(case.received_at),
        "deadline": _iso(case.deadline),
        "extended_until": _iso(case.extended_until),
        "due": _iso(case.due),
        "closed_at": _iso(case.closed_at),
        "answered_via": case.answered_via,
        "assignee": case.assignee_name,
        "description": case.description,
        "address": case.address,
        "location": {"latitude": case.latitude, "longitude": case.longitude}
        if case.latitude is not None
        else None,
        "attachments": attachments,
        "resident": person,
    }


def queue_event(
    session: AsyncSession,
    receivers: Iterable[WebhookReceiver],
    event: Event,
    case: Case,
    case_event: CaseEvent,
    snapshot: dict[str, Any],
    detail: dict[str, Any] | None = None,
) -> list[OutboxMessage]:
    """One row per receiver, inside the change's transaction (`case_event` must have its id)."""
    assert case.id is not None and case_event.id is not None
    body = {
        "version": VERSION,
        "event": event.value,
        "id": case_event.id,
        "at": _iso(case_event.at),
        "case": snapshot,
        "detail": detail or {},
    }
    return [
        enqueue(
            session,
            WebhookPayload(receiver=receiver.name, body=body),
            0,
            key=hook_key(receiver.name, case.id),
            case_id=case.id,
        )
        for receiver in receivers
    ]


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The X-Petent-Signature header's value for `body` sent at `timestamp` (X-Petent-Timestamp,
    Unix seconds): signed together, so that a captured request cannot be replayed later as new."""
    return "sha256=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def verify(
    secret: str,
    body: bytes,
    header: str | None,
    timestamp: str | None,
    now: float | None = None,
    window: int = REPLAY_WINDOW,
) -> bool:
    """What a receiver does (the docs' sample is this): the time is recent (within `window` seconds
    either way), and the signature of that time and the raw body as received matches, compared in
    constant time. As bytes: a forged header with non-ASCII characters is a refusal, not a TypeError."""
    if (
        header is None
        or timestamp is None
        or not timestamp.isascii()
        or not timestamp.isdigit()
        or len(timestamp) > 12
    ):
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > window:
        return False
    return hmac.compare_digest(
        signature(secret, body, int(timestamp)).encode(), header.encode("utf-8", "surrogateescape")
    )


def serialise(row: OutboxMessage, sent_at: datetime) -> bytes:
    """The body of this attempt: the stored event, the delivery id and the time it is sent, as UTF-8 JSON."""
    stored = WebhookPayload.of(row).body
    if stored is None:
        raise Permanent("the event was already delivered")
    body = {**stored, "delivery": row.id, "sent_at": sent_at.isoformat()}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


class WebhookSender:
    """The outbox's handler for Kind.WEBHOOK: one POST per attempt, never through Telegram's limiter."""

    def __init__(
        self,
        receivers: Iterable[WebhookReceiver],
        timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.receivers = {receiver.name: receiver for receiver in receivers}
        self.timeout = timeout
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:  # made in the running loop (the process may have been forked)
            self._client = httpx.AsyncClient(
                timeout=self.timeout,
                follow_redirects=False,
                transport=self._transport,
                headers={"User-Agent": USER_AGENT},
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def send(self, row: OutboxMessage) -> Sent:
        payload = WebhookPayload.of(row)
        receiver = self.receivers.get(payload.receiver)
        if receiver is None:
            raise Permanent(f"receiver {payload.receiver} is not in CASE_WEBHOOKS any more")
        if payload.body is None:
            raise Permanent("the event was already delivered")
        sent_at = utcnow()
        body = serialise(row, sent_at)
        event = payload.body["event"]
        timestamp = int(sent_at.timestamp())
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            EVENT_HEADER: event,
            DELIVERY_HEADER: str(row.id),
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: signature(receiver.secret.get_secret_value(), body, timestamp),
        }
        where = {"receiver": receiver.name, "row": row.id, "event": event, "attempt": row.attempts}
        try:
            async with asyncio.timeout(
                self.timeout
            ):  # the whole attempt, however slowly a receiver trickles its answer
                # The status and headers are the answer. A short body is read (the connection is then
                # reused); one longer than ANSWER_MAX is left (it could be endless, or fill the memory).
                async with self._http().stream(
                    "POST", receiver.url, content=body, headers=headers
                ) as response:
                    read = 0
                    async for chunk in response.aiter_bytes():
                        read += len(chunk)
                        if read > ANSWER_MAX:
                            break
        except (
            httpx.HTTPError,
            TimeoutError,
        ) as exc:  # refused, timed out, reset, a bad certificate: the receiver is not there now
            metrics.WEBHOOK_ATTEMPTS.labels(receiver.name, "unavailable").inc()
            raise Retry(f"{receiver.name}: {type(exc).__name__}") from None
        status = response.status_code
        if 200 <= status < 300:
            metrics.WEBHOOK_ATTEMPTS.labels(receiver.name, "delivered").inc()
            log.info("case event delivered", extra={**where, "status": status})
            return Sent(record=_forget_body(row.id, payload))
        if status in (408, 429) or status >= 500:
            metrics.WEBHOOK_ATTEMPTS.labels(receiver.name, "unavailable").inc()
            raise Retry(
                f"{receiver.name}: HTTP {status}", _retry_after(response) if status in (429, 503) else None
            )
        # 3xx and the other 4xx: the receiver or its configuration is wrong. The event is kept and
        # tried again (a lost record is worse than a noisy log), and the error is logged each time.
        metrics.WEBHOOK_ATTEMPTS.labels(receiver.name, "refused").inc()
        log.error(
            "case event refused by its receiver; it will be tried again", extra={**where, "status": status}
        )
        raise Retry(f"{receiver.name}: HTTP {status}")


def _retry_after(response: httpx.Response) -> float | None:
    """A Retry-After in seconds (at most an hour); None if absent or a date."""
    try:
        return min(3600.0, max(0.0, float(response.headers.get("Retry-After", ""))))
    except ValueError:
        return None


def _forget_body(row_id: int | None, payload: WebhookPayload) -> Any:
    """After delivery, the row keeps the receiver, the event and its id; the snapshot with the personal data goes."""
    kept = payload.delivered().dump()

    async def record(session: AsyncSession) -> None:
        await session.execute(
            update(OutboxMessage).where(col(OutboxMessage.id) == row_id).values(payload=kept)
        )

    return record
