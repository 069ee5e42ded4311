"""The receivers' verification helper with a forged header: a refusal, never an exception."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr

from bot.logs import setup_logging
from bot.services.outbox import Sent
from bot.services.webhooks import WebhookSender, signature, verify
from bot.settings import WebhookReceiver
from bot.store.models import OutboxMessage

SECRET = "dms-secret-0123456789abcdef"


def test_a_forged_signature_with_any_characters_is_refused_not_raised() -> None:
    body = b'{"event":"case.opened"}'
    now = 1_796_367_600
    assert verify(SECRET, body, signature(SECRET, body, now), str(now), now=now)
    for forged in ("sha256=é", "sha256=" + "ą" * 64, "", "sha256=\x00", signature(SECRET, body, now).upper()):
        assert verify(SECRET, body, forged, str(now), now=now) is False


async def test_a_delivery_logs_neither_the_url_nor_what_it_holds(capsys: pytest.CaptureFixture[str]) -> None:
    # A receiver's URL may carry its credentials (user:password@, ?apikey=): CASE_WEBHOOKS is a secret setting.
    url = "https://petent:pa55word@dms.example.lt/in?apikey=SECRET123"
    sender = WebhookSender(
        [WebhookReceiver("dms", url, SecretStr(SECRET))],
        5.0,
        transport=httpx.MockTransport(lambda request: httpx.Response(204)),
    )
    row = OutboxMessage(
        id=7,
        kind="webhook",
        chat_id=0,
        key="hook:dms:1",
        payload={"receiver": "dms", "body": {"event": "case.opened", "id": 3}},
    )
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        setup_logging("INFO")  # as the bot runs
        await sender.send(row)
    finally:
        root.setLevel(saved[1])
        root.handlers[:] = saved[0]
        await sender.close()
    logged = capsys.readouterr().err
    assert "case event delivered" in logged
    assert [secret for secret in ("pa55word", "SECRET123", "dms.example.lt") if secret in logged] == []


class _Endless(httpx.AsyncByteStream):
    """A response body that never ends (a broken or hostile receiver)."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            yield b"x" * 65536
            await asyncio.sleep(0)


async def test_the_answer_is_its_status_and_its_body_is_not_read() -> None:
    # A 2xx is a delivery however long the body that follows; reading it could fill the memory.
    answered = httpx.MockTransport(lambda request: httpx.Response(200, stream=_Endless()))
    sender = WebhookSender(
        [WebhookReceiver("dms", "https://dms.example.lt/in", SecretStr(SECRET))], 2.0, transport=answered
    )
    row = OutboxMessage(
        id=8,
        kind="webhook",
        chat_id=0,
        key="hook:dms:1",
        payload={"receiver": "dms", "body": {"event": "case.opened", "id": 4}},
    )
    try:
        sent = await asyncio.wait_for(sender.send(row), 10)
    finally:
        await sender.close()
    assert isinstance(sent, Sent) and sent.record is not None  # delivered: the row forgets the body
