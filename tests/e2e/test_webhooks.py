"""Webhooks for the document management system, end to end: the real bot process posts a case's
events to two receivers on 127.0.0.1. One is down (connection refused) while the case is
opened, extended and answered, then comes up answering 503 to its first requests; the other
takes every event at once. Each receiver gets each event exactly once per delivery id, in the
case's order, signed with its own secret; nothing is lost, nothing is held up."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select
from sqlmodel import col

from bot.sandbox.emulator import Emulator
from bot.store.db import Database
from bot.store.models import OutboxMessage, OutboxStatus
from tests.e2e.conftest import BotProcess
from tests.support.driver import Person, Telegram
from tests.support.helpers import free_port, onboard, submit_case, wait_until

DMS_SECRET = "dms-secret-5f0c7d1e9a2b4c6d"
ARCHIVE_SECRET = "archive-secret-8e7d6c5b4a39"
DESCRIPTION = "Dziura w jezdni przy szkole „Źródło” & <parking>"


@dataclass
class Receiver:
    """A receiver as docs/webhooks.md tells one to write it: verify the signature on the raw body, store
    each delivery once, answer 2xx. The first `failures` requests get a 503."""

    secret: str
    failures: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    accepted: list[dict[str, Any]] = field(default_factory=list)
    runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        sent = request.headers.get("X-Petent-Timestamp", "")
        expected = (
            "sha256=" + hmac.new(self.secret.encode(), sent.encode() + b"." + raw, hashlib.sha256).hexdigest()
        )
        # Signed with the time (the bot's clock is frozen by the test: the replay window is checked in tests/unit/test_webhooks.py).
        valid = sent.isdigit() and hmac.compare_digest(
            expected, request.headers.get("X-Petent-Signature", "")
        )
        self.requests.append({"headers": dict(request.headers), "valid": valid})
        if len(self.requests) <= self.failures:
            return web.Response(status=503)
        if not valid:
            return web.Response(status=401)
        body = json.loads(raw)
        assert (
            str(body["delivery"]) == request.headers["X-Petent-Delivery"]
            and body["event"] == request.headers["X-Petent-Event"]
        )
        self.accepted.append(body)
        return web.Response(status=204)

    async def start(self, port: int) -> None:
        app = web.Application()
        app.router.add_post("/petent", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def archive() -> AsyncIterator[tuple[Receiver, int]]:
    receiver, port = Receiver(ARCHIVE_SECRET), free_port()
    await receiver.start(port)
    yield receiver, port
    await receiver.stop()


async def test_a_receiver_that_is_down_then_failing_gets_every_event_once_in_order(
    emulator: Emulator,
    telegram: Telegram,
    settings_env,
    tmp_path,
    store: Database,
    clerks: Person,
    archive: tuple[Receiver, int],
) -> None:
    archive_receiver, archive_port = archive
    dms, dms_port = Receiver(DMS_SECRET, failures=3), free_port()  # nobody listens there yet
    hooks = f"dms=http://127.0.0.1:{dms_port}/petent|{DMS_SECRET},archive=http://127.0.0.1:{archive_port}/petent|{ARCHIVE_SECRET}"
    env = {**settings_env, "CASE_WEBHOOKS": hooks, "CASE_WEBHOOK_MAX_BACKOFF_SECONDS": "1"}
    bot = BotProcess(emulator, env, tmp_path / "bot.log")
    await bot.start()
    try:
        anna = await telegram.resident("Anna", language_code="pl")
        await onboard(anna, "pl")
        await submit_case(anna, "pl", "🚧 Zgłoszenie problemu", "Drogi, ulice i transport", DESCRIPTION)
        card = await clerks.receive_one()

        # The clerk extends the deadline by 10 working days, then answers (which closes the case).
        await clerks.click("⏳ Pratęsti", card)
        await clerks.click("10", await clerks.receive_one())
        await clerks.edited()
        await clerks.receive_one()  # the prompt for the reason
        await clerks.send("Reikia kelių tarnybos išvados", thread_id=card.thread_id)
        await clerks.click("✅ Atsakyti ir užbaigti", card)
        await clerks.receive_one()  # the prompt for the answer
        await clerks.send("Dziura zostanie załatana do 5 grudnia.", thread_id=card.thread_id)
        await anna.receive(3)  # extended, the answer (the case is closed), the satisfaction question

        # The archive has had everything while the DMS is down: one receiver holds up no other.
        await wait_until(lambda: len(archive_receiver.accepted) == 3, 20, what="the archive's three events")
        assert dms.requests == []
        await asyncio.sleep(2)  # the point: the DMS's rows are retried (connection refused) meanwhile

        # The DMS comes up, answers 503 three times, then takes the backlog.
        await dms.start(dms_port)
        await wait_until(lambda: len(dms.accepted) == 3, 30, what="the DMS's three events")
        await asyncio.sleep(3)  # the point: anything sent twice would come now
    finally:
        await bot.stop()
        await dms.stop()

    for receiver in (dms, archive_receiver):
        assert all(request["valid"] for request in receiver.requests), (
            "every request is signed with the receiver's own secret"
        )
        assert [body["event"] for body in receiver.accepted] == [
            "case.opened",
            "case.extended",
            "case.answered",
        ]
        deliveries = [body["delivery"] for body in receiver.accepted]
        assert len(set(deliveries)) == 3 and deliveries == sorted(deliveries), "each delivery once, in order"
    assert [r["headers"]["X-Petent-Delivery"] for r in dms.requests[:4]] == [
        str(dms.accepted[0]["delivery"])
    ] * 4  # 503 ×3: the same delivery again
    assert len(dms.requests) == 3 + 3
    assert [b["id"] for b in dms.accepted] == [
        b["id"] for b in archive_receiver.accepted
    ]  # one event, one id for every receiver

    opened, extended, answered = dms.accepted
    assert (
        opened["case"]["number"] == "VRS-2026-000001" and opened["case"]["description"] == DESCRIPTION
    )  # as typed: no HTML escaping
    assert (opened["case"]["kind"], opened["case"]["category"], opened["case"]["channel"]) == (
        "report",
        "roads",
        "telegram",
    )
    assert opened["case"]["resident"]["name"] == "Anna"
    assert extended["detail"]["until"] == "2027-01-07" and extended["case"]["due"] == "2027-01-07"
    assert extended["detail"]["reason"] == "Reikia kelių tarnybos išvados"
    assert answered["detail"]["answer"] == "Dziura zostanie załatana do 5 grudnia."
    assert answered["case"]["status"] == "answered" and answered["case"]["closed_at"]

    async with store.read() as session:
        rows = (
            (await session.execute(select(OutboxMessage).where(col(OutboxMessage.kind) == "webhook")))
            .scalars()
            .all()
        )
    assert {row.status for row in rows} == {OutboxStatus.SENT} and len(rows) == 6
    assert all("body" not in row.payload for row in rows), "delivered rows keep no personal data"
    assert max(row.attempts for row in rows if row.key.startswith("hook:dms:")) > 3, "the outage was retried"
    log = (tmp_path / "bot.log").read_text()
    assert "case event delivered" in log
    assert "Dziura" not in log and DMS_SECRET not in log, "bodies and secrets are never logged"
