"""The public side of the web server tells nothing about a person and gives an attacker nothing to
hold on to: updated_datetime moves only with what the public sees, the Open311 key never travels
in a URL, a body over the limit is refused before it is read, and broken or foreign input (a
multipart that is not one, a secret header in another alphabet) is one refusal and at most one
line in the log, never a traceback."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any, cast

import pytest
from aiogram import Dispatcher
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.app import Services
from bot.open311 import API_PATH, BODY_MAX
from bot.services.case_commands import Action, Clerk, GroupMessage
from bot.settings import ConfigError
from bot.store.db import Database
from bot.store.models import Case
from bot.web import OPS, WebhookHandler, build_ops_app, build_web_app, serve
from tests.conftest import ADMIN_CHAT_ID
from tests.unit.test_open311 import (  # noqa: F401  # the fixtures too
    KEY,
    ONA,
    REPORT,
    T0,
    ApiClient,
    _telegram_case,
    api,
    frozen,
    get,
    post,
    wired,
)

PETRAS = Clerk(id=502, name="Petras")


async def raw_exchange(port: int, head: bytes, body: bytes = b"", wait: float = 5.0) -> bytes:
    """Send bytes as they are (headers a client library would refuse to send) and read the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head + body)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(65536), wait)
    finally:
        writer.close()


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.exc_info is not None or r.levelno >= logging.ERROR]


async def test_an_internal_note_a_message_or_an_assignment_leave_updated_datetime_alone(
    api: ApiClient,
    wired: Services,
    database: Database,
    frozen: Callable[[datetime], None],
) -> None:
    report = await _telegram_case(
        wired, database, "report", "roads", "Dziura w jezdni przy przystanku", latitude=54.7, longitude=25.3
    )
    await wired.commands.act(report.id, Action.PUBLISH, ONA)

    async def updated() -> str:
        [shown] = await get(api, f"requests/{report.number}.json")
        updated: str = shown["updated_datetime"]
        return updated

    assert await updated() == "2026-11-23T00:00:00+02:00"
    frozen(T0 + timedelta(days=1))
    await wired.commands.note(
        report.id, ONA, "Mieszkanka dzwoniła drugi raz, zdenerwowana", GroupMessage(ADMIN_CHAT_ID, 70)
    )
    await wired.commands.act(report.id, Action.ASSIGN, ONA, assignee=PETRAS)
    await wired.commands.relay(
        report.id,
        ONA,
        [GroupMessage(ADMIN_CHAT_ID, 71, "Czy dziura jest przy samym przystanku?")],
        "Czy dziura jest przy samym przystanku?",
    )
    assert await updated() == "2026-11-23T00:00:00+02:00"  # nothing the public sees changed
    frozen(T0 + timedelta(days=2))
    await wired.commands.act(report.id, Action.PROGRESS, ONA)
    assert await updated() == "2026-11-25T00:00:00+02:00"  # the status did: the day of it, never the minute


async def test_the_key_in_the_url_is_refused_and_a_header_or_the_body_carry_it(
    api: ApiClient, database: Database
) -> None:
    body = {name: value for name, value in REPORT.items() if name != "api_key"}
    response = await api.post(API_PATH + "requests.json", params={"api_key": KEY}, data=body)
    assert (response.status, json.loads(await response.text())) == (
        400,
        [
            {
                "code": 400,
                "description": "api_key: send it in the body of the POST (a form field) or in the X-Api-Key header, never in the URL (URLs are logged)",
            }
        ],
    )
    async with database.read() as session:
        assert (await session.execute(select(Case))).first() is None
    response = await api.post(API_PATH + "requests.json", headers={"X-Api-Key": KEY}, data=body)
    assert response.status == 200, await response.text()
    [posted] = await post(api, **REPORT)  # the body, as the specification has it
    assert posted["service_request_id"] == "VRS-2026-000002"
    response = await api.post(
        API_PATH + "requests.json", headers={"X-Api-Key": "guessed-key-0123456789"}, data=body
    )
    assert response.status == 403


async def test_a_post_over_the_limit_is_refused_before_its_body_is_read(
    api: ApiClient, database: Database
) -> None:
    # Only the headers go: the answer comes at once, without waiting for 10 MB that never arrive.
    head = (
        f"POST {API_PATH}requests.json HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {10 * BODY_MAX}\r\n\r\n"
    ).encode()
    assert api.port is not None
    answer = await raw_exchange(api.port, head, b"api_key=" + KEY.encode(), wait=5.0)
    status, _, rest = answer.partition(b"\r\n")
    assert status == b"HTTP/1.1 413 Request Entity Too Large"
    assert json.loads(rest.partition(b"\r\n\r\n")[2]) == [
        {"code": 413, "description": "request: the body is larger than the 1 MB allowed"}
    ]
    async with database.read() as session:
        assert (await session.execute(select(Case))).first() is None


async def test_a_broken_multipart_is_a_400_and_one_line(
    api: ApiClient, caplog: pytest.LogCaptureFixture
) -> None:
    broken = (
        b'--xyz\r\nContent-Disposition: form-data; name="api_key"\r\n\r\n'
        + KEY.encode()
        + b"\r\n--xyz\r\nno headers end here"
    )
    response = await api.post(
        API_PATH + "requests.json", data=broken, headers={"Content-Type": "multipart/form-data; boundary=xyz"}
    )
    assert (response.status, json.loads(await response.text())) == (
        400,
        [
            {
                "code": 400,
                "description": "request: the body is not a valid form (application/x-www-form-urlencoded or multipart/form-data)",
            }
        ],
    )
    assert tracebacks(caplog) == []
    assert [r.getMessage() for r in caplog.records if r.name == "bot.open311"] == [
        "open311 request refused: the body is not a form"
    ]


async def test_a_non_ascii_key_header_is_refused_without_a_traceback(
    api: ApiClient, caplog: pytest.LogCaptureFixture
) -> None:
    form = "&".join(
        f"{name}={value}"
        for name, value in REPORT.items()
        if name not in ("api_key", "address_string", "first_name", "last_name", "email", "phone")
    )
    head = (
        f"POST {API_PATH}requests.json HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(form.encode())}\r\nConnection: close\r\n"
    ).encode() + "X-Api-Key: klucz-żółć-0123456789\r\n\r\n".encode()
    assert api.port is not None
    answer = await raw_exchange(api.port, head, form.encode())
    assert answer.startswith(b"HTTP/1.1 403 ")
    assert b"api_key: not valid" in answer
    assert tracebacks(caplog) == []


@pytest.fixture
async def webhook(wired: Services) -> AsyncIterator[ApiClient]:
    app = web.Application()
    WebhookHandler(
        Dispatcher(), wired.bot, handle_in_background=False, secret_token="telegram-secret_123"
    ).register(app, path="/telegram")
    async with TestClient(TestServer(app)) as client:
        yield client


async def test_a_non_ascii_secret_header_gets_401_without_a_traceback(
    webhook: ApiClient, caplog: pytest.LogCaptureFixture
) -> None:
    update = b'{"update_id": 1}'
    for secret in ("sekretas-ąčę".encode(), "секрет".encode(), b"\xff\xfe"):
        head = (
            b"POST /telegram HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nConnection: close\r\n"
            b"Content-Length: "
            + str(len(update)).encode()
            + b"\r\nX-Telegram-Bot-Api-Secret-Token: "
            + secret
            + b"\r\n\r\n"
        )
        assert webhook.port is not None
        answer = await raw_exchange(webhook.port, head, update)
        assert answer.startswith(b"HTTP/1.1 401 "), answer[:80]
    assert (
        await webhook.post("/telegram", data=update, headers={"X-Telegram-Bot-Api-Secret-Token": "guess"})
    ).status == 401
    assert tracebacks(caplog) == []


async def test_metrics_and_health_are_not_on_the_public_port_but_on_the_operators(wired: Services) -> None:
    app = cast(Any, wired)  # the parts of the App both listeners use: config, database, teams, bot, open311
    app.dispatcher = Dispatcher()
    async with TestClient(TestServer(build_web_app(app, webhook=False))) as public:
        assert [(await public.get(path)).status for path in ("/metrics", "/healthz")] == [404, 404]
        assert (await public.get(API_PATH + "services.json")).status == 200  # what the public port is for
    async with TestClient(TestServer(build_ops_app(app))) as ops:
        page = await (await ops.get("/metrics")).text()
        assert "petent_outbox_pending" in page
        assert (await ops.get("/healthz")).status in (200, 503)  # answered here (Telegram is the emulator's)


async def test_a_taken_ops_port_stops_the_start_naming_the_setting() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"^OPS_LISTEN: cannot listen on 127\.0\.0\.1:{port} \(.+\)$"):
            await serve(web.Application(), "127.0.0.1", port, what=OPS)
