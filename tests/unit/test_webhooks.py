"""Webhooks for the document management system: the setting, the events a case's changes queue
(one outbox row per receiver, in the change's transaction), the signed body, what each answer of
a receiver does to the row, and the pool that keeps a hanging receiver away from Telegram's rows."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select
from sqlmodel import col

from bot import clock
from bot.app import Services, build_services
from bot.config import load_config
from bot.services.case_commands import Action, Clerk, RegisteredBy
from bot.services.cases import AnswerBy, CaseDraft, Contact, ReceivedBy
from bot.services.outbox import Kind, Outbox, Pool, Sent, enqueue
from bot.services.outbox_payloads import MessagePayload, WebhookPayload
from bot.services.webhooks import WebhookSender, serialise, signature, verify
from bot.settings import ConfigError
from bot.store.db import Database
from bot.store.models import Channel, OutboxMessage, OutboxStatus, Resident
from tests.conftest import ADMIN_CHAT_ID, COMMS_CHAT_ID, SECRET_KEY, TOKEN
from tests.unit.test_config import env  # noqa: F401  (the fixture)

ONA = Clerk(id=501, name="Ona")
DMS_SECRET = "dms-secret-0123456789abcdef"
ARCHIVE_SECRET = "archive-secret-0123456789"
HOOKS = f"dms=https://dms.example.lt/petent?source=bot|{DMS_SECRET}, archive=http://127.0.0.1:9/in|{ARCHIVE_SECRET}"


# --- the setting ---


def test_receivers_come_from_the_setting(env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASE_WEBHOOKS", HOOKS)
    settings = load_config().settings
    dms, archive = settings.webhook_receivers
    assert (dms.name, dms.url, dms.secret.get_secret_value()) == (
        "dms",
        "https://dms.example.lt/petent?source=bot",
        DMS_SECRET,
    )
    assert (archive.name, archive.url) == ("archive", "http://127.0.0.1:9/in")
    assert DMS_SECRET not in repr(settings) and DMS_SECRET not in repr(dms)
    assert (settings.case_webhook_timeout_seconds, settings.case_webhook_max_backoff_seconds) == (10.0, 300.0)


def test_no_receivers_by_default(env) -> None:
    assert load_config().settings.webhook_receivers == ()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            f"dms=ftp://dms.example.lt/x|{DMS_SECRET}",
            "CASE_WEBHOOKS: entry 1 (dms): the URL must be https://",
        ),
        (f"dms=dms.example.lt/x|{DMS_SECRET}", "CASE_WEBHOOKS: entry 1 (dms): the URL must be https://"),
        (
            f"dms=http://dms.example.lt/x|{DMS_SECRET}",
            "CASE_WEBHOOKS: entry 1 (dms): the URL must be https:// (the body carries residents' data)",
        ),
        (f"dms=http://10.0.0.5/x|{DMS_SECRET}", "CASE_WEBHOOKS: entry 1 (dms): the URL must be https://"),
        (
            "dms=https://dms.example.lt/x|a-long-random-secret-of-16-or-more",
            "CASE_WEBHOOKS: entry 1 (dms): the secret is the example value from .env.example",
        ),
        (
            "dms=https://dms.example.lt/x",
            "CASE_WEBHOOKS: entry 1 (dms): must be name=https://host/path|secret",
        ),
        (
            f"https://dms.example.lt/x|{DMS_SECRET}",
            "CASE_WEBHOOKS: entry 1: must be name=https://host/path|secret",
        ),
        (
            f"DMS=https://dms.example.lt/x|{DMS_SECRET}",
            "CASE_WEBHOOKS: entry 1: the name must be 1-16 of a-z 0-9 _ -",
        ),
        ("dms=https://dms.example.lt/x|short", "CASE_WEBHOOKS: entry 1 (dms): the secret must be 16-256"),
        (
            f"{HOOKS},dms=https://other.example.lt/|{DMS_SECRET}",
            "CASE_WEBHOOKS: entry 3 (dms): the name is used twice",
        ),
    ],
)
def test_a_bad_receiver_stops_the_start_naming_the_setting(
    env, monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    monkeypatch.setenv("CASE_WEBHOOKS", value)
    with pytest.raises(ConfigError) as error:
        load_config()
    assert str(error.value).startswith(message), str(error.value)
    assert DMS_SECRET not in str(error.value)


# --- signing ---


def test_the_signature_is_hmac_sha256_of_the_time_and_the_raw_body() -> None:
    body = json.dumps(
        {"event": "case.opened", "case": {"description": "Duobė prie mokyklos"}}, ensure_ascii=False
    ).encode()
    sent = 1_796_367_600
    expected = "sha256=" + hmac.new(DMS_SECRET.encode(), b"1796367600." + body, hashlib.sha256).hexdigest()
    assert signature(DMS_SECRET, body, sent) == expected
    assert verify(DMS_SECRET, body, expected, "1796367600", now=sent + 10)
    assert not verify(ARCHIVE_SECRET, body, expected, "1796367600", now=sent)  # another receiver's secret
    assert not verify(DMS_SECRET, body + b" ", expected, "1796367600", now=sent)  # a changed body
    assert not verify(
        DMS_SECRET, body, expected, "1796367601", now=sent
    )  # another time under the same signature
    assert not verify(DMS_SECRET, body, None, "1796367600", now=sent)
    assert not verify(DMS_SECRET, body, expected, None, now=sent)


def test_a_request_replayed_later_fails_verify() -> None:
    body, sent = b'{"event":"case.opened"}', 1_796_367_600
    signed = signature(DMS_SECRET, body, sent)
    assert verify(DMS_SECRET, body, signed, str(sent), now=sent + 299)
    assert not verify(
        DMS_SECRET, body, signed, str(sent), now=sent + 301
    )  # captured and played again six minutes on
    assert not verify(DMS_SECRET, body, signed, str(sent), now=sent - 301)  # or dated ahead
    for forged in ("-1", "1e9", "١٧٩٦٣٦٧٦٠٠", "", "9" * 40):
        assert not verify(DMS_SECRET, body, signed, forged, now=sent)


def test_the_body_carries_the_delivery_and_the_time_it_was_sent_as_utf8() -> None:
    row = OutboxMessage(
        id=42,
        kind=Kind.WEBHOOK,
        key="hook:dms:1",
        chat_id=0,
        payload={"receiver": "dms", "body": {"event": "case.opened", "id": 7}},
    )
    raw = serialise(row, datetime(2026, 11, 23, 7, 0, 5, tzinfo=UTC))
    assert json.loads(raw) == {
        "event": "case.opened",
        "id": 7,
        "delivery": 42,
        "sent_at": "2026-11-23T07:00:05+00:00",
    }
    row.payload["body"]["case"] = {"description": "Dziura <przy> szkole & „most”"}
    assert "Dziura <przy> szkole & „most”".encode() in serialise(
        row, datetime.now(UTC)
    )  # as typed: JSON, no HTML escaping


# --- the events a case's changes queue ---


@pytest.fixture
async def wired(database: Database) -> AsyncIterator[Services]:
    config = load_config(
        bot_token=TOKEN,
        telegram_api_url="http://127.0.0.1:9",
        admin_chat_id=ADMIN_CHAT_ID,
        comms_chat_id=COMMS_CHAT_ID,
        secret_key=SECRET_KEY,
        database_url=database.url.render_as_string(hide_password=False),
        redis_url=None,
        case_webhooks=HOOKS,
    )
    wired = build_services(config, database)
    yield wired
    await wired.webhooks.close()
    await wired.bot.session.close()


async def _hooks(database: Database) -> list[OutboxMessage]:
    async with database.read() as session:
        return list(
            (
                await session.execute(
                    select(OutboxMessage)
                    .where(col(OutboxMessage.kind) == Kind.WEBHOOK)
                    .order_by(col(OutboxMessage.id))
                )
            ).scalars()
        )


async def test_each_change_queues_its_event_for_every_receiver(wired: Services, database: Database) -> None:
    async with database.write() as session:
        session.add(Resident(id=4242, locale="lt", display_name="Jonas Jonaitis", phone="+37060000000"))
    draft = CaseDraft(4242, "lt", "report", "roads", "Duobė prie <mokyklos> & tilto", address="Mokyklos g. 1")
    case = (await wired.commands.open(draft, datetime(2026, 11, 23, 7, tzinfo=UTC))).case
    await wired.commands.act(case.id, Action.TAKE, ONA)  # not an event for the DMS
    await wired.commands.act(case.id, Action.EXTEND, ONA, text="Reikia kelių tarnybos išvados", days=10)
    await wired.commands.act(case.id, Action.ANSWER, ONA, text="Duobė bus užtaisyta iki gruodžio 5 d.")
    await wired.commands.act(case.id, Action.REOPEN, ONA)
    await wired.commands.act(case.id, Action.REJECT, ONA, text="Ne savivaldybės kelias")

    rows = await _hooks(database)
    assert {(row.chat_id, row.case_id, row.status) for row in rows} == {(0, case.id, OutboxStatus.PENDING)}
    by_receiver = {
        name: [row for row in rows if row.payload["receiver"] == name] for name in ("dms", "archive")
    }
    assert {row.key for row in by_receiver["dms"]} == {f"hook:dms:{case.id}"}
    assert {row.key for row in by_receiver["archive"]} == {f"hook:archive:{case.id}"}
    events = ["case.opened", "case.extended", "case.answered", "case.reopened", "case.closed"]
    for name, queued in by_receiver.items():
        assert [row.payload["body"]["event"] for row in queued] == events, name
    opened, extended, answered, reopened, closed = (row.payload["body"] for row in by_receiver["dms"])
    assert [b["id"] for b in (opened, extended)] == [
        r.payload["body"]["id"] for r in by_receiver["archive"][:2]
    ]  # one event, one id

    assert opened["at"] == "2026-11-23T07:00:00+00:00"
    assert opened["case"] | {"resident": None} == {
        "number": "VRS-2026-000001",
        "kind": "report",
        "category": "roads",
        "eldership": None,
        "team": "desk",
        "status": "new",
        "channel": "telegram",
        "received_at": "2026-11-23T07:00:00+00:00",
        "deadline": "2026-12-21",
        "extended_until": None,
        "due": "2026-12-21",
        "closed_at": None,
        "answered_via": None,
        "assignee": None,
        "description": "Duobė prie <mokyklos> & tilto",
        "address": "Mokyklos g. 1",
        "location": None,
        "attachments": 0,
        "resident": None,
    }
    assert opened["case"]["resident"] == {
        "name": "Jonas Jonaitis",
        "phone": "+37060000000",
        "email": None,
        "postal_address": None,
        "answer_by": "telegram",
    }
    assert extended["detail"] == {
        "until": "2027-01-07",
        "days": 10,
        "reason": "Reikia kelių tarnybos išvados",
        "by": {"role": "clerk", "name": "Ona"},
    }
    assert (extended["case"]["due"], extended["case"]["status"], extended["case"]["assignee"]) == (
        "2027-01-07",
        "assigned",
        "Ona",
    )
    assert answered["detail"] == {
        "answer": "Duobė bus užtaisyta iki gruodžio 5 d.",
        "by": {"role": "clerk", "name": "Ona"},
    }
    assert answered["case"]["status"] == "answered" and answered["case"]["closed_at"] is not None
    assert reopened["case"]["status"] == "reopened" and reopened["detail"]["reason"] is None
    assert closed["detail"] == {
        "outcome": "rejected",
        "reason": "Ne savivaldybės kelias",
        "by": {"role": "clerk", "name": "Ona"},
    }


async def test_a_staff_case_names_its_contact(wired: Services, database: Database) -> None:
    contact = Contact("Petras Petraitis", AnswerBy.EMAIL, email="petras@example.lt")
    draft = CaseDraft(
        None, "lt", "request", "other", "Prašau pažymos", channel=Channel.STAFF, contact=contact
    )
    await wired.commands.open(
        draft,
        datetime(2026, 11, 23, 7, tzinfo=UTC),
        registered_by=RegisteredBy(Clerk(7, "Ona"), ReceivedBy.EMAIL),
    )
    opened = (await _hooks(database))[0].payload["body"]
    assert opened["case"]["channel"] == "staff"
    assert opened["case"]["resident"] == {
        "name": "Petras Petraitis",
        "phone": None,
        "email": "petras@example.lt",
        "postal_address": None,
        "answer_by": "email",
    }


async def test_without_receivers_nothing_is_queued(database: Database) -> None:
    from tests.factories import services

    wired = services(database)
    async with database.write() as session:
        session.add(Resident(id=4242, locale="lt", display_name="Jonas"))
    await wired.commands.open(
        CaseDraft(4242, "lt", "report", "roads", "Duobė"), datetime(2026, 11, 23, 7, tzinfo=UTC)
    )
    assert await _hooks(database) == []
    await wired.bot.session.close()


# --- what a receiver's answer does to the row ---


class Receiver:
    """An httpx transport that answers with the given statuses in turn (or raises), recording requests."""

    def __init__(self, *answers: int | Exception, headers: dict[str, str] | None = None) -> None:
        self.answers = list(answers)
        self.headers = headers or {}
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer, headers=self.headers)


async def _one_event(wired: Services, database: Database, receiver: Receiver) -> OutboxMessage:
    """A case opened; its event for the DMS is sent through `receiver` (the archive's is dropped)."""
    sender = WebhookSender(
        wired.config.settings.webhook_receivers[:1], timeout=5, transport=httpx.MockTransport(receiver)
    )
    wired.outbox.handle(Kind.WEBHOOK, sender.send)
    async with database.write() as session:
        session.add(Resident(id=4242, locale="lt", display_name="Jonas", phone="+37060000000"))
    await wired.commands.open(
        CaseDraft(4242, "lt", "report", "roads", "Duobė"), datetime(2026, 11, 23, 7, tzinfo=UTC)
    )
    async with database.write() as session:
        for row in (
            await session.execute(
                select(OutboxMessage).where(col(OutboxMessage.key).startswith("hook:archive:"))
            )
        ).scalars():
            await session.delete(row)
    [row] = await _hooks(database)
    return row


async def _send_hooks(outbox: Outbox) -> list[OutboxMessage]:
    for row in await outbox.claim(10, kinds=frozenset({Kind.WEBHOOK})):
        await outbox._send(row)
    return await _hooks(outbox.database)


async def test_a_2xx_delivers_signed_and_the_row_forgets_the_body(
    wired: Services, database: Database
) -> None:
    receiver = Receiver(204)
    row = await _one_event(wired, database, receiver)
    delivered = {"receiver": "dms", "outcome": "delivered"}
    before = REGISTRY.get_sample_value("petent_webhook_attempts_total", delivered) or 0
    [sent] = await _send_hooks(wired.outbox)
    assert REGISTRY.get_sample_value("petent_webhook_attempts_total", delivered) == before + 1
    assert (sent.status, sent.attempts) == (OutboxStatus.SENT, 1)
    assert sent.payload == {
        "receiver": "dms",
        "event": "case.opened",
        "id": row.payload["body"]["id"],
    }  # the personal data went
    [request] = receiver.requests
    assert str(request.url) == "https://dms.example.lt/petent?source=bot" and request.method == "POST"
    assert request.headers["X-Petent-Event"] == "case.opened"
    assert request.headers["X-Petent-Delivery"] == str(row.id)
    assert request.headers["Content-Type"] == "application/json; charset=utf-8"
    now = clock.now().timestamp()  # the bot's clock (the test may have moved it)
    assert abs(int(request.headers["X-Petent-Timestamp"]) - now) < 60
    assert verify(
        DMS_SECRET,
        request.content,
        request.headers["X-Petent-Signature"],
        request.headers["X-Petent-Timestamp"],
        now=now,
    )
    body = json.loads(request.content)
    assert (body["delivery"], body["event"], body["case"]["resident"]["phone"]) == (
        row.id,
        "case.opened",
        "+37060000000",
    )


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (503, "dms: HTTP 503"),
        (500, "dms: HTTP 500"),
        (408, "dms: HTTP 408"),
        (404, "dms: HTTP 404"),  # the receiver is misconfigured: kept and retried, logged as an error
        (301, "dms: HTTP 301"),  # redirects are not followed
        (httpx.ConnectError("refused"), "dms: ConnectError"),
        (httpx.ReadTimeout("slow"), "dms: ReadTimeout"),
    ],
)
async def test_anything_but_a_2xx_is_retried_with_backoff(
    wired: Services, database: Database, answer, error: str
) -> None:
    receiver = Receiver(answer, 200)
    await _one_event(wired, database, receiver)
    [row] = await _send_hooks(wired.outbox)
    assert (row.status, row.attempts, row.last_error) == (OutboxStatus.PENDING, 1, error)
    assert row.due_at is not None and "body" in row.payload
    await _send_hooks(wired.outbox)  # not due yet: nothing is claimed
    assert len(receiver.requests) == 1


async def test_a_receiver_trickling_its_answer_is_cut_off_at_the_timeout(
    wired: Services, database: Database
) -> None:
    async def trickle(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        return httpx.Response(200)

    sender = WebhookSender(
        wired.config.settings.webhook_receivers[:1], timeout=0.2, transport=httpx.MockTransport(trickle)
    )
    await _one_event(wired, database, Receiver())
    wired.outbox.handle(Kind.WEBHOOK, sender.send)
    started = asyncio.get_running_loop().time()
    [row] = await _send_hooks(wired.outbox)
    assert asyncio.get_running_loop().time() - started < 2
    assert (row.status, row.last_error) == (OutboxStatus.PENDING, "dms: TimeoutError")


async def test_a_429_waits_for_its_retry_after(wired: Services, database: Database) -> None:
    receiver = Receiver(429, headers={"Retry-After": "120"})
    await _one_event(wired, database, receiver)
    before = datetime.now(UTC)
    [row] = await _send_hooks(wired.outbox)
    assert (
        row.status == OutboxStatus.PENDING
        and row.due_at is not None
        and 115 <= (row.due_at - before).total_seconds() <= 125
    )


async def test_a_4xx_is_logged_as_an_error_without_the_body(
    wired: Services, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    await _one_event(wired, database, Receiver(400))
    with caplog.at_level(logging.INFO):
        await _send_hooks(wired.outbox)
    [refused] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert refused.getMessage() == "case event refused by its receiver; it will be tried again"
    fields = refused.__dict__  # the log's extra fields
    assert (fields["receiver"], fields["status"], fields["event"]) == ("dms", 400, "case.opened")
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "Duobė" not in logged and "+37060000000" not in logged and DMS_SECRET not in logged


async def test_a_receiver_taken_out_of_the_setting_fails_its_rows(
    wired: Services, database: Database
) -> None:
    await _one_event(wired, database, Receiver())
    wired.outbox.handle(Kind.WEBHOOK, WebhookSender([], timeout=5).send)
    [row] = await _send_hooks(wired.outbox)
    assert (row.status, row.last_error) == (
        OutboxStatus.FAILED,
        "receiver dms is not in CASE_WEBHOOKS any more",
    )


async def test_backoff_of_webhooks_is_capped_by_their_pool(database: Database) -> None:
    outbox = Outbox(
        database, "w", max_backoff=30, pools=[Pool(frozenset({Kind.WEBHOOK}), 2, max_backoff=300)]
    )
    hook = OutboxMessage(kind=Kind.WEBHOOK, key="k", chat_id=0, attempts=40)
    message = OutboxMessage(kind=Kind.MESSAGE, key="k", chat_id=1, attempts=40)
    assert (outbox._backoff(hook), outbox._backoff(message)) == (300, 30)
    assert outbox._backoff(OutboxMessage(kind=Kind.WEBHOOK, key="k", chat_id=0, attempts=3)) == 2.0


# --- a hanging receiver and Telegram's rows ---


async def test_a_hanging_receiver_never_holds_up_telegram_rows(database: Database) -> None:
    outbox = Outbox(database, "w", concurrency=2, pools=[Pool(frozenset({Kind.WEBHOOK}), 2, max_backoff=1)])
    hanging = asyncio.Event()
    sent: list[int] = []

    async def webhook(row: OutboxMessage) -> Sent:
        await hanging.wait()  # the receiver accepted the connection and never answers
        return Sent()

    async def message(row: OutboxMessage) -> Sent:
        sent.append(row.chat_id)
        return Sent()

    outbox.handle(Kind.WEBHOOK, webhook)
    outbox.handle(Kind.MESSAGE, message)
    async with database.write() as session:
        for case in range(10):  # more events than both pools' slots together, queued first
            enqueue(
                session,
                WebhookPayload(receiver="dms", body={"event": "case.opened", "id": case}),
                0,
                key=f"hook:dms:{case}",
            )
        for chat in range(1, 6):
            enqueue(session, MessagePayload(text="x"), chat, key=f"r:{chat}")
    runner = asyncio.create_task(outbox.run())
    try:
        for _ in range(100):
            if len(sent) == 5:
                break
            await asyncio.sleep(0.05)
        assert sorted(sent) == [1, 2, 3, 4, 5]
        rows = await _hooks(database)
        assert sum(row.status == OutboxStatus.SENDING for row in rows) == 2  # the pool's two slots, no more
    finally:
        runner.cancel()
        hanging.set()
        await outbox.drain(timeout=1)
