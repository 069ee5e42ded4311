"""The Open311 API against hostile or broken input: what a client sends must never make an
answer that is not XML, a traceback in the log, nor an endless query."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot import clock
from bot.app import Services
from bot.config import load_config
from bot.open311 import API_PATH, Open311Api, RateLimit
from bot.services.case_commands import Action, RegisteredBy
from bot.services.cases import AnswerBy, CaseDraft, Contact, ReceivedBy
from bot.settings import ConfigError
from bot.store.db import Database
from bot.store.models import Case, Channel
from tests.conftest import ADMIN_CHAT_ID, COMMS_CHAT_ID, SECRET_KEY, TOKEN
from tests.unit.test_open311 import (  # noqa: F401  # the fixtures too
    ONA,
    OTHER_KEY,
    REPORT,
    ApiClient,
    _telegram_case,
    api,
    frozen,
    get,
    post,
    wired,
)


async def test_control_characters_never_make_invalid_xml(
    api: ApiClient, wired: Services, database: Database
) -> None:
    # Refused on the way in: a control character has no place in a description, a name or an address.
    for field in ("description", "first_name", "address_string"):
        value = REPORT[field] + "\x0b\x01"
        assert await post(api, 400, **{**REPORT, field: value}) == [
            {"code": 400, "description": f"{field}: control characters are not allowed"}
        ]
    async with database.read() as session:
        assert (await session.execute(select(Case))).first() is None
    [posted] = await post(
        api, **{**REPORT, "description": "Nedega žibintas\r\n\tprie mokyklos"}
    )  # line breaks and tabs are text
    assert posted["service_request_id"]

    # Echoed arguments (an unknown service, a token) and texts from elsewhere (Telegram) still make XML.
    for path in ("services/report-x%01y.xml", "tokens/ab%01%1bcd.xml", "requests/VRS%02.xml"):
        response = await api.get(API_PATH + path)
        body = await response.text()
        assert response.status == 404
        assert ET.fromstring(body.encode()).findtext("error/description")  # parses
    report = await _telegram_case(
        wired, database, "report", "roads", "Dziura\x1b w jezdni\x08 przy szkole", address="ul. Polna\x0c 1"
    )
    await wired.commands.act(report.id, Action.PUBLISH, ONA)
    listing = ET.fromstring((await (await api.get(API_PATH + "requests.xml")).text()).encode())
    shown = listing.find(f"request[service_request_id='{report.number}']")
    assert shown is not None
    assert (shown.findtext("description"), shown.findtext("address")) == (
        "Dziura\ufffd w jezdni\ufffd przy szkole",
        "ul. Polna\ufffd 1",
    )
    assert (
        json.loads(await (await api.get(API_PATH + f"requests/{report.number}.json")).text())[0][
            "description"
        ]
        == "Dziura\x1b w jezdni\x08 przy szkole"
    )


async def test_dates_far_away_are_refused_by_name(api: ApiClient) -> None:
    for name, value in (
        ("start_date", "9999-12-31T00:00:00Z"),
        ("end_date", "0001-01-02T00:00:00Z"),
        ("start_date", "0001-01-01T00:00:00+01:00"),
    ):
        response = await api.get(API_PATH + "requests.json", params={name: value})
        body = json.loads(await response.text())
        assert (response.status, body) == (
            400,
            [{"code": 400, "description": f"{name}: must be between 2000 and 2999"}],
        )


async def test_a_list_of_numbers_is_bounded(api: ApiClient, wired: Services, database: Database) -> None:
    report = await _telegram_case(wired, database, "report", "roads", "Dziura w jezdni przy szkole")
    await wired.commands.act(report.id, Action.PUBLISH, ONA)
    many = ",".join(f"VRS-2026-{n:06d}" for n in range(1, 201))
    assert [r["service_request_id"] for r in await get(api, "requests.json", service_request_id=many)] == [
        report.number
    ]
    too_many = many + ",VRS-2026-000201"
    assert await get(api, "requests.json", 400, service_request_id=too_many) == [
        {"code": 400, "description": "service_request_id: at most 200 numbers at once"}
    ]
    assert await get(api, "requests.json", 400, service_request_id="A" * 33) == [
        {"code": 400, "description": "service_request_id: a number has at most 32 characters"}
    ]


class _DatabaseDown:
    """A database that refuses connections, as PostgreSQL does when it is down (asyncpg raises OSError)."""

    @asynccontextmanager
    async def read(self) -> AsyncIterator[None]:
        raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")
        yield

    write = read


async def test_a_database_that_is_down_is_a_503_to_try_again(
    api: ApiClient,
    wired: Services,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(wired.open311, "database", _DatabaseDown())
    monkeypatch.setattr(wired.commands, "database", _DatabaseDown())
    unavailable = [
        {
            "code": 503,
            "description": "the municipality's service is unavailable for now; please try again later",
        }
    ]
    for response in (
        await api.get(API_PATH + "requests.json"),
        await api.post(API_PATH + "requests.json", data=REPORT),
    ):
        assert (response.status, response.headers.get("Retry-After"), json.loads(await response.text())) == (
            503,
            "60",
            unavailable,
        )
    assert [r.levelname for r in caplog.records if r.name == "bot.open311"] == ["WARNING", "WARNING"]
    assert all(
        r.exc_info is None and "5432" not in r.getMessage() for r in caplog.records if r.name == "bot.open311"
    )


async def test_a_body_over_the_limit_is_a_413_in_the_specifications_format(
    api: ApiClient, caplog: pytest.LogCaptureFixture
) -> None:
    response = await api.post(
        API_PATH + "requests.xml", data={**REPORT, "description": "x" * (2 * 1024 * 1024)}
    )
    assert response.status == 413
    assert (
        ET.fromstring((await response.text()).encode()).findtext("error/description")
        == "request: the body is larger than the 1 MB allowed"
    )
    assert [r for r in caplog.records if r.levelname == "ERROR"] == []


async def test_posts_are_limited_per_client(
    api: ApiClient, wired: Services, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(wired.open311.post_limit, "burst", 3)
    monkeypatch.setattr(wired.open311.post_limit, "clock", lambda: now[0])
    for _ in range(3):
        await post(api, **REPORT)
    response = await api.post(API_PATH + "requests.json", data=REPORT)
    assert (response.status, response.headers.get("Retry-After")) == (429, "10")
    assert json.loads(await response.text()) == [
        {
            "code": 429,
            "description": "api_key: too many requests from fixmystreet; please try again in 10 seconds",
        }
    ]
    await post(api, **{**REPORT, "api_key": OTHER_KEY})  # another client is not held up
    await post(api, 403, **{**REPORT, "api_key": "guessed-key-0123456789"})  # nor does a wrong key count
    now[0] += wired.open311.post_limit.every
    await post(api, **REPORT)  # one more, a refill later
    await post(api, 429, **REPORT)
    async with database.read() as session:
        assert len((await session.execute(select(Case))).all()) == 5


async def test_a_record_of_an_answer_given_by_phone_is_not_published(
    api: ApiClient, wired: Services, database: Database
) -> None:
    # A report a clerk registered from a call, made public: the clerk writes how it was answered
    # "for the case's record", and that record may name the person and their number.
    draft = CaseDraft(
        resident_id=None,
        locale="lt",
        kind="report",
        category_id="lighting",
        description="Nedega žibintas prie mokyklos",
        address="Mokyklos g. 1",
        channel=Channel.STAFF,
        contact=Contact(name="Jonas Jonaitis", answer_by=AnswerBy.PHONE, phone="+370 600 11111"),
    )
    case = (
        await wired.commands.open(draft, clock.now(), registered_by=RegisteredBy(ONA, ReceivedBy.PHONE))
    ).case
    await wired.commands.act(case.id, Action.PUBLISH, ONA)
    record = "Paskambinta Jonui Jonaičiui +370 600 11111: žibintas pakeistas"
    await wired.commands.act(case.id, Action.ANSWER, ONA, text=record, answered_via=AnswerBy.PHONE)
    [shown] = await get(api, f"requests/{case.number}.json")
    assert (shown["status"], shown["status_notes"], shown["description"]) == (
        "closed",
        "Atsakyta",
        "Nedega žibintas prie mokyklos",
    )
    for fmt in ("json", "xml"):
        assert "Jon" not in await (await api.get(API_PATH + f"requests.{fmt}")).text()


async def test_the_body_limit_holds_on_a_server_that_allows_more(wired: Services) -> None:
    # The sandbox mounts the API on the emulator's app, which takes 64 MB uploads.
    app = web.Application(client_max_size=64 * 1024 * 1024)
    Open311Api.route(app.router, Open311Api(wired.open311).handle)
    async with TestClient(TestServer(app)) as client:
        response = await client.post(
            API_PATH + "requests.json", data={**REPORT, "description": "x" * (2 * 1024 * 1024)}
        )
        assert response.status == 413
        assert (
            json.loads(await response.text())[0]["description"]
            == "request: the body is larger than the 1 MB allowed"
        )


async def test_reads_are_limited_per_address(
    api: ApiClient, wired: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Anyone may read, but not hammer the database: a burst, then about two a second, per address.
    now = [1000.0]
    monkeypatch.setattr(wired.open311.get_limit, "burst", 3)
    monkeypatch.setattr(wired.open311.get_limit, "clock", lambda: now[0])
    for path in ("services.json", "requests.json", "discovery.json"):
        assert (await api.get(API_PATH + path)).status == 200
    too_many = [
        {
            "code": 429,
            "description": "request: too many requests from 127.0.0.1; please try again in 1 seconds",
        }
    ]
    for headers in (
        {},
        {"X-Forwarded-For": "203.0.113.9"},
    ):  # no proxy configured: the header is the client's own word
        response = await api.get(API_PATH + "requests.json", headers=headers)
        assert (response.status, response.headers.get("Retry-After"), json.loads(await response.text())) == (
            429,
            "1",
            too_many,
        )
    now[0] += wired.open311.get_limit.every
    assert (await api.get(API_PATH + "requests.json")).status == 200  # one more, a refill later
    assert (await api.get(API_PATH + "requests.json")).status == 429

    # Behind one proxy (WEB_PROXY_HOPS=1) the address is the one the proxy appended, the last;
    # what a client writes before it is its own word. IPv6 counts by /64, what one host holds.
    monkeypatch.setattr(wired.config.settings, "web_proxy_hops", 1)
    for forwarded in ("203.0.113.9", "198.51.100.1, 203.0.113.9", "10.0.0.1,203.0.113.9"):
        assert (
            await api.get(API_PATH + "services.json", headers={"X-Forwarded-For": forwarded})
        ).status == 200
    response = await api.get(API_PATH + "services.xml", headers={"X-Forwarded-For": "203.0.113.9"})
    assert (response.status, response.headers.get("Retry-After")) == (429, "1")
    description = ET.fromstring((await response.text()).encode()).findtext("error/description")
    assert description == "request: too many requests from 203.0.113.9; please try again in 1 seconds"
    for host in range(1, 4):
        assert (
            await api.get(API_PATH + "services.json", headers={"X-Forwarded-For": f"2001:db8:0:1::{host}"})
        ).status == 200
    response = await api.get(API_PATH + "services.json", headers={"X-Forwarded-For": "2001:db8:0:1:ffff::9"})
    assert (response.status, json.loads(await response.text())[0]["description"]) == (
        429,
        "request: too many requests from 2001:db8:0:1::/64; please try again in 1 seconds",
    )


def test_web_proxy_hops_is_checked_at_start() -> None:
    with pytest.raises(ConfigError, match=r"^WEB_PROXY_HOPS: "):
        load_config(
            bot_token=TOKEN,
            admin_chat_id=ADMIN_CHAT_ID,
            comms_chat_id=COMMS_CHAT_ID,
            secret_key=SECRET_KEY,
            web_proxy_hops=6,
        )


def test_a_limit_forgets_the_clients_it_has_refilled() -> None:
    # An attacker rotating addresses must not grow the buckets without end: a full one is forgotten.
    now = [0.0]
    limit = RateLimit("request", burst=60, every=0.5, clock=lambda: now[0])
    for n in range(100_000):
        limit.take(f"address-{n}")
        now[0] += 0.01  # 100 new addresses a second, each refilled half a second later
    assert len(limit._buckets) < 5000


async def test_personal_data_in_a_posts_url_is_refused(
    api: ApiClient, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    # URLs end up in proxies' and servers' access logs: a person's data goes in the body only.
    for name in (
        "first_name",
        "last_name",
        "email",
        "phone",
        "description",
        "address_string",
        "address_id",
        "account_id",
        "media_url",
        "device_id",
    ):
        body = {key: value for key, value in REPORT.items() if key != name}
        response = await api.post(API_PATH + "requests.json", params={name: REPORT.get(name, "x")}, data=body)
        description = f"{name}: send it in the body of the POST, not in the URL (URLs are logged)"
        assert (response.status, json.loads(await response.text())) == (
            400,
            [{"code": 400, "description": description}],
        )
    async with database.read() as session:
        assert (await session.execute(select(Case))).first() is None
    # The service, the place's coordinates, the jurisdiction and the language may stay in the URL.
    allowed = ("service_code", "lat", "long", "jurisdiction_id")
    query = {name: REPORT[name] for name in allowed} | {"locale": "pl"}
    response = await api.post(
        API_PATH + "requests.json", params=query, data={k: v for k, v in REPORT.items() if k not in allowed}
    )
    assert response.status == 200, await response.text()
    assert "zarejestrowana" in json.loads(await response.text())[0]["service_notice"]
    assert not [
        r for r in caplog.records if "Petrait" in r.getMessage() or "ona@example.lt" in str(r.__dict__)
    ]


async def test_discovery_names_the_configured_url_not_the_host_header(
    api: ApiClient,
    wired: Services,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    forged = {
        "Host": "attacker.example",
        "X-Forwarded-Host": "attacker.example",
        "X-Forwarded-Proto": "https",
    }

    async def advertised() -> str:
        body = json.loads(await (await api.get(API_PATH + "discovery.json", headers=forged)).text())
        url: str = body["endpoints"][0]["url"]
        return url

    settings = wired.config.settings
    monkeypatch.setattr(settings, "public_url", "https://petent.example.lt")
    assert await advertised() == "https://petent.example.lt/open311/v2/"
    monkeypatch.setattr(
        settings, "public_url", "https://www.example.lt/petent"
    )  # behind a proxy, under a path
    assert await advertised() == "https://www.example.lt/petent/open311/v2/"
    monkeypatch.setattr(settings, "public_url", None)
    monkeypatch.setattr(
        settings, "webhook_url", "https://bot.example.lt:8443/telegram"
    )  # the same web server, reached by Telegram
    assert await advertised() == "https://bot.example.lt:8443/open311/v2/"


def test_public_url_is_checked_at_start() -> None:
    settings: dict[str, Any] = {
        "bot_token": TOKEN,
        "admin_chat_id": ADMIN_CHAT_ID,
        "comms_chat_id": COMMS_CHAT_ID,
        "secret_key": SECRET_KEY,
    }
    for wrong in (
        "petent.example.lt",
        "ftp://petent.example.lt",
        "https://petent.example.lt/?a=1",
        "https://petent.example.lt/#top",
    ):
        with pytest.raises(ConfigError, match=r"^PUBLIC_URL: must be the http\(s\) URL"):
            load_config(**settings, public_url=wrong)
    assert (
        load_config(**settings, public_url="https://petent.example.lt/").settings.public_url
        == "https://petent.example.lt"
    )
