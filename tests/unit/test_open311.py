"""The Open311 GeoReport v2 API without a bot process: the specification's own example responses
(their fields and structure, in XML and JSON), services in the language asked for, a request that
becomes a case with its card, the listing's filters and errors, and the privacy rule."""

from __future__ import annotations

import json
import math
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from sqlmodel import col

from bot import clock
from bot.app import Services, build_services
from bot.config import load_config
from bot.open311 import API_PATH, Open311Api, rounded_place
from bot.sandbox.emulator import Emulator
from bot.services.case_commands import Action, Clerk, GroupMessage, NotAllowed
from bot.services.cases import CaseDraft
from bot.settings import ConfigError
from bot.store.db import Database
from bot.store.models import Case, Channel, OutboxMessage, Resident
from tests.catalog import tr_start
from tests.conftest import ADMIN_CHAT_ID, COMMS_CHAT_ID, SECRET_KEY, TOKEN

ApiClient = TestClient[web.Request, web.Application]

KEY = "fms-key-0123456789abcdef"
OTHER_KEY = "other-key-0123456789abcd"
T0 = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # 09:00 in Vilnius, a Monday: due 21 December 2026
ONA = Clerk(id=501, name="Ona")

# --- the specification's example responses (wiki.open311.org/GeoReport_v2), abridged to one item each ---

SPEC_SERVICES_XML = """<?xml version="1.0" encoding="utf-8"?>
<services>
    <service>
        <service_code>001</service_code>
        <service_name>Cans left out 24x7</service_name>
        <description>Garbage or recycling cans that have been left out for more than 24 hours after collection. Violators will be cited.</description>
        <metadata>true</metadata>
        <type>realtime</type>
        <keywords>lorem, ipsum, dolor</keywords>
        <group>sanitation</group>
    </service>
</services>"""
SPEC_SERVICES_JSON = [
    {
        "service_code": "001",
        "service_name": "Cans left out 24x7",
        "description": "Garbage or recycling cans that have been left out for more than 24 hours after collection. Violators will be cited.",
        "metadata": True,
        "type": "realtime",
        "keywords": "lorem, ipsum, dolor",
        "group": "sanitation",
    }
]
SPEC_POST_JSON = [
    {
        "service_request_id": 293944,
        "service_notice": "The City will inspect and require the responsible party to correct within 24 hours and/or issue a Correction Notice or Notice of Violation of the Public Works Code",
        "account_id": None,
    }
]
SPEC_TOKEN_JSON = [{"service_request_id": 638344, "token": 12345}]
SPEC_REQUESTS_XML = """<?xml version="1.0" encoding="utf-8"?>
<service_requests>
    <request>
        <service_request_id>638344</service_request_id>
        <status>closed</status>
        <status_notes>Duplicate request.</status_notes>
        <service_name>Sidewalk and Curb Issues</service_name>
        <service_code>006</service_code>
        <description></description>
        <agency_responsible></agency_responsible>
        <service_notice></service_notice>
        <requested_datetime>2010-04-14T06:37:38-08:00</requested_datetime>
        <updated_datetime>2010-04-14T06:37:38-08:00</updated_datetime>
        <expected_datetime>2010-04-15T06:37:38-08:00</expected_datetime>
        <address>8TH AVE and JUDAH ST</address>
        <address_id>545483</address_id>
        <zipcode>94122</zipcode>
        <lat>37.762221815</lat>
        <long>-122.4651145</long>
        <media_url>http://city.gov.s3.amazonaws.com/requests/media/638344.jpg </media_url>
    </request>
</service_requests>"""
SPEC_REQUESTS_JSON = [
    {
        "service_request_id": 638344,
        "status": "closed",
        "status_notes": "Duplicate request.",
        "service_name": "Sidewalk and Curb Issues",
        "service_code": "006",
        "description": None,
        "agency_responsible": None,
        "service_notice": None,
        "requested_datetime": "2010-04-14T06:37:38-08:00",
        "updated_datetime": "2010-04-14T06:37:38-08:00",
        "expected_datetime": "2010-04-15T06:37:38-08:00",
        "address": "8TH AVE and JUDAH ST",
        "address_id": 545483,
        "zipcode": 94122,
        "lat": 37.762221815,
        "long": -122.4651145,
        "media_url": "http://city.gov.s3.amazonaws.com/requests/media/638344.jpg",
    }
]
SPEC_DEFINITION_JSON = {"service_code": "DMV66", "attributes": []}
SPEC_ERRORS_XML = """<?xml version="1.0" encoding="utf-8"?>
<errors>
    <error>
        <code>403</code>
        <description>Invalid api_key received -- can't proceed with create_request.</description>
    </error>
</errors>"""


def shape(element: ET.Element) -> tuple[str, tuple[Any, ...]]:
    """An XML tree's structure: tags and their children, in order, without the text."""
    return element.tag, tuple(shape(child) for child in element)


def xml_of(body: str) -> ET.Element:
    assert body.startswith('<?xml version="1.0" encoding="utf-8"?>')
    return ET.fromstring(body.encode())


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> Callable[[datetime], None]:
    def move_to(moment: datetime) -> None:
        monkeypatch.setattr(clock, "_origin", (moment, time.monotonic()))

    move_to(T0)
    return move_to


@pytest.fixture
async def wired(
    database: Database, emulator: Emulator, frozen: Callable[[datetime], None]
) -> AsyncIterator[Services]:
    emulator.add_group("Clerks", forum=True, chat_id=ADMIN_CHAT_ID)
    config = load_config(
        bot_token=TOKEN,
        telegram_api_url=emulator.url,
        admin_chat_id=ADMIN_CHAT_ID,
        comms_chat_id=COMMS_CHAT_ID,
        secret_key=SECRET_KEY,
        database_url=database.url.render_as_string(hide_password=False),
        redis_url=None,
        open311_keys=f"fixmystreet:{KEY}, other:{OTHER_KEY}",
    )
    wired = build_services(config, database)
    yield wired
    await wired.bot.session.close()


@pytest.fixture
async def api(wired: Services) -> AsyncIterator[ApiClient]:
    app = web.Application()
    Open311Api.route(app.router, Open311Api(wired.open311).handle)
    async with TestClient(TestServer(app)) as client:
        yield client


async def get(api: ApiClient, path: str, expect: int = 200, **params: Any) -> Any:
    response = await api.get(API_PATH + path, params=params or None)
    body = await response.text()
    assert response.status == expect, body
    if path.endswith(".json"):
        assert response.headers["Content-Type"] == "application/json; charset=utf-8"
        return json.loads(body)
    assert response.headers["Content-Type"] == "text/xml; charset=utf-8"
    return xml_of(body)


async def post(api: ApiClient, status: int = 200, fmt: str = "json", **form: str) -> Any:
    response = await api.post(API_PATH + f"requests.{fmt}", data=form)
    body = await response.text()
    assert response.status == status, body
    return json.loads(body) if fmt == "json" else xml_of(body)


REPORT: dict[str, Any] = {
    "api_key": KEY,
    "service_code": "report-lighting",
    "lat": "54.7512",
    "long": "25.3021",
    "address_string": "Vilniaus g. 1, Avižieniai",
    "first_name": "Ona",
    "last_name": "Petraitė",
    "email": "ona@example.lt",
    "phone": "+370 600 00000",
    "account_id": "acc-7",
    "description": "Nedega gatvės žibintas prie mokyklos",
    "device_id": "tt222111",
    "jurisdiction_id": "vrsa.lt",
}


# --- services ---------------------------------------------------------------------------------


async def test_services_have_the_specifications_fields_in_the_language_asked_for(api: ApiClient) -> None:
    services = await get(api, "services.json")
    assert [list(s) for s in services[:1]] == [list(SPEC_SERVICES_JSON[0])]
    assert {type(v) for s in services for v in s.values()} == {str, bool}
    by_code = {s["service_code"]: s for s in services}
    assert len(by_code) == 3 * 12  # every category of the file, once per kind
    assert by_code["report-roads"] == {
        "service_code": "report-roads",
        "service_name": "Keliai ir transportas",
        "description": "Pranešimas apie problemą: Keliai ir transportas",
        "metadata": False,
        "type": "realtime",
        "keywords": "report, roads",
        "group": "Pranešimas apie problemą",
    }
    polish = {s["service_code"]: s for s in await get(api, "services.json", locale="pl")}
    assert (polish["complaint-roads"]["service_name"], polish["complaint-roads"]["group"]) == (
        "Drogi, ulice i transport",
        "Skarga",
    )
    response = await api.get(
        API_PATH + "services.json", headers={"Accept-Language": "pl-PL,pl;q=0.9,en;q=0.5"}
    )
    assert json.loads(await response.text())[0]["service_name"] == "Drogi, ulice i transport"

    xml = await get(api, "services.xml")
    spec = ET.fromstring(SPEC_SERVICES_XML.encode())
    assert shape(xml)[0] == "services" and shape(xml[0]) == shape(spec[0])
    assert xml.find("service[service_code='report-roads']/metadata").text == "false"
    assert (
        await get(api, "services", locale="lt")
    ).tag == "services"  # XML without an extension: the required format

    assert await get(api, "services/report-roads.json") == {"service_code": "report-roads", "attributes": []}
    assert list(await get(api, "services/report-roads.json")) == list(SPEC_DEFINITION_JSON)
    assert shape(await get(api, "services/request-health.xml")) == (
        "service_definition",
        (("service_code", ()), ("attributes", ())),
    )


async def test_errors_follow_the_specification_and_name_the_problem(api: ApiClient) -> None:
    assert await get(api, "services/report-nothing.json", 404) == [
        {
            "code": 404,
            "description": "service_code: unknown service 'report-nothing'; GET services lists them",
        }
    ]
    error = await get(api, "services/pothole.xml", 404)
    assert shape(error) == shape(ET.fromstring(SPEC_ERRORS_XML.encode()))
    assert error.find("error/code").text == "404" and "pothole" in error.find("error/description").text
    assert (await get(api, "services.html", 400)).find(
        "error/description"
    ).text == "format: .html is not served; use .xml or .json"
    assert (await get(api, "services.json", 400, locale="de"))[0][
        "description"
    ] == "locale: de is not served; use lt, pl or en"
    assert (await get(api, "nothing.json", 404))[0]["description"].startswith(
        "resource: /open311/v2/nothing.json not found"
    )
    response = await api.delete(API_PATH + "services.json")
    assert response.status == 405 and json.loads(await response.text())[0]["code"] == 405


# --- posting a request ------------------------------------------------------------------------


async def test_a_posted_request_is_a_case_with_number_deadline_team_and_card(
    api: ApiClient, wired: Services, database: Database
) -> None:
    [created] = await post(api, **REPORT)
    assert list(created) == [*SPEC_POST_JSON[0], "token"]
    assert created["service_request_id"] == "VRS-2026-000001" and created["account_id"] == "acc-7"
    assert (
        created["service_notice"]
        == "Kreipimasis užregistruotas numeriu VRS-2026-000001. Nagrinėja: Specialistai. Atsakymo terminas: 2026 m. gruodžio 21 d."
    )
    async with database.read() as session:
        case = (await session.execute(select(Case))).scalar_one()
        rows = [
            (r.kind, r.chat_id)
            for r in (await session.execute(select(OutboxMessage).order_by(col(OutboxMessage.id)))).scalars()
        ]
    assert (case.channel, case.open311_client, case.open311_token, case.kind, case.category_id) == (
        Channel.OPEN311,
        "fixmystreet",
        created["token"],
        "report",
        "lighting",
    )
    assert (case.resident_id, case.locale, case.team_id, str(case.deadline)) == (
        None,
        "lt",
        "desk",
        "2026-12-21",
    )
    assert (case.latitude, case.longitude, case.address, case.public) == (
        54.7512,
        25.3021,
        "Vilniaus g. 1, Avižieniai",
        False,
    )
    assert case.contact == {
        "name": "Ona Petraitė",
        "answer_by": "email",
        "phone": "+370 600 00000",
        "email": "ona@example.lt",
    }
    assert rows == [("topic", ADMIN_CHAT_ID), ("card", ADMIN_CHAT_ID), ("location", ADMIN_CHAT_ID)]

    text, keyboard = wired.clerk_texts.card(case, None)
    assert (
        "Asmuo: Ona Petraitė (neturi „Telegram“)\nAtsakyti el. paštu: 📞 +370 600 00000 · ✉️ ona@example.lt"
        in text
    )
    assert "📡 Gautas per Open311 iš fixmystreet" in text
    assert "🌐 Paviešinti" in [b.text for row in keyboard.inline_keyboard for b in row]

    # The same in XML, and for another client, with the Polish notice.
    xml = await post(
        api, fmt="xml", **{**REPORT, "api_key": OTHER_KEY, "locale": "pl", "service_code": "request-social"}
    )
    assert shape(xml) == (
        "service_requests",
        (
            (
                "request",
                (("service_request_id", ()), ("service_notice", ()), ("account_id", ()), ("token", ())),
            ),
        ),
    )
    assert xml.find("request/service_notice").text.startswith(
        tr_start(
            "pl",
            "Registered as {number}. Handled by: {team}. Answer due: {date}",
            number="VRS-2026-000002",
            team="Urzędnicy",
            until="date",
        )
    )
    assert await get(api, f"tokens/{created['token']}.json") == [
        {"service_request_id": "VRS-2026-000001", "token": created["token"]}
    ]
    assert list((await get(api, f"tokens/{created['token']}.json"))[0]) == list(SPEC_TOKEN_JSON[0])
    assert (await get(api, "tokens/0000.json", 404))[0]["description"] == "token: 0000 not found"


@pytest.mark.parametrize(
    ("changes", "status", "description"),
    [
        ({"api_key": ""}, 403, "api_key: missing; the municipality gives each client its key"),
        ({"api_key": "guessed-key-0123456789"}, 403, "api_key: not valid; can't proceed with create_request"),
        ({"service_code": ""}, 400, "service_code: missing; GET services lists them"),
        (
            {"service_code": "report-potholes"},
            404,
            "service_code: unknown service 'report-potholes'; GET services lists them",
        ),
        (
            {"lat": "", "long": "", "address_string": ""},
            400,
            "location: send lat and long, address_string or address_id",
        ),
        ({"lat": "north"}, 400, "lat, long: must be numbers (WGS84 degrees)"),
        ({"long": ""}, 400, "lat, long: send both"),
        ({"lat": "91"}, 400, "lat, long: out of range (-90..90, -180..180)"),
        ({"description": "Dark"}, 400, "description: describe the matter in 10 to 3000 characters"),
        ({"description": "x" * 3001}, 400, "description: at most 3000 characters"),
        ({"email": "not-an-address"}, 400, "email: not an e-mail address"),
        ({"media_url": "javascript:alert(1)"}, 400, "media_url: must be an http(s) URL"),
    ],
)
async def test_a_wrong_request_is_refused_and_named(
    api: ApiClient, database: Database, changes: dict[str, Any], status: int, description: str
) -> None:
    assert await post(api, status, **{**REPORT, **changes}) == [{"code": status, "description": description}]
    async with database.read() as session:
        assert (await session.execute(select(Case))).first() is None


async def test_a_request_with_only_an_address_and_no_contact(
    api: ApiClient, wired: Services, database: Database
) -> None:
    await post(
        api,
        api_key=KEY,
        service_code="complaint-waste",
        address_id="A-5521",
        description="Atliekos neišvežtos jau dvi savaites",
    )
    async with database.read() as session:
        case = (await session.execute(select(Case))).scalar_one()
    assert (case.address, case.contact, case.latitude) == ("address_id A-5521", None, None)
    text, keyboard = wired.clerk_texts.card(case, None)
    assert "Gyventojas: nenurodytas" in text
    assert "🌐 Paviešinti" not in [
        b.text for row in keyboard.inline_keyboard for b in row
    ]  # a complaint is about a person's matter


# --- the listing --------------------------------------------------------------------------------


async def _telegram_case(
    wired: Services, database: Database, kind: str, category: str, description: str, **draft: Any
) -> Case:
    async with database.write() as session:
        if await session.get(Resident, 7001) is None:
            session.add(Resident(id=7001, locale="pl", display_name="Anna Nowak", phone="+48 600 111 222"))
    opened = await wired.commands.open(
        CaseDraft(
            resident_id=7001, locale="pl", kind=kind, category_id=category, description=description, **draft
        ),
        clock.now(),
    )
    return opened.case


async def test_the_listing_shows_no_telegram_case_no_person_and_a_report_only_once_public(
    api: ApiClient, wired: Services, database: Database
) -> None:
    request = await _telegram_case(
        wired, database, "request", "social", "Proszę o zasiłek, mieszkam sama z dwójką dzieci"
    )
    complaint = await _telegram_case(
        wired,
        database,
        "complaint",
        "roads",
        "Sąsiad Jan Kowalski parkuje na chodniku",
        address="ul. Leśna 5",
    )
    report = await _telegram_case(
        wired,
        database,
        "report",
        "roads",
        "Dziura w jezdni na skrzyżowaniu",
        latitude=54.68734,
        longitude=25.27961,
        address="ul. Polna 1",
    )
    [posted] = await post(api, **{**REPORT, "service_code": "request-social"})

    private = (
        "Anna",
        "Nowak",
        "600 111 222",
        "7001",
        "zasiłek",
        "Kowalski",
        "Leśna",
        "Dziura",
        "Polna",
        "Ona",
        "Petraitė",
        "ona@example.lt",
        "600 00000",
        "Nedega",
        "Vilniaus g.",
        "T09:",  # the time of day it came
    )
    for fmt in ("json", "xml"):
        body = await (await api.get(API_PATH + f"requests.{fmt}")).text()
        assert [word for word in private if word in body] == []
    # What came in Telegram is nobody else's business until a clerk publishes a report: only the Open311 request is listed.
    listing = await get(api, "requests.json")
    assert [r["service_request_id"] for r in listing] == [posted["service_request_id"]]
    assert [list(r) for r in listing] == [list(SPEC_REQUESTS_JSON[0])]
    assert listing[0] == {
        "service_request_id": posted["service_request_id"],
        "status": "open",
        "status_notes": "Gautas",
        "service_name": "Socialinė parama",
        "service_code": "request-social",
        "description": None,
        "agency_responsible": "Specialistai",
        "service_notice": None,
        "requested_datetime": "2026-11-23T00:00:00+02:00",
        "updated_datetime": "2026-11-23T00:00:00+02:00",
        "expected_datetime": "2026-12-21T23:59:59+02:00",
        "address": None,
        "address_id": None,
        "zipcode": None,
        "lat": None,
        "long": None,
        "media_url": None,
    }
    assert shape((await get(api, "requests.xml"))[0]) == shape(ET.fromstring(SPEC_REQUESTS_XML.encode())[0])
    for number in (request.number, complaint.number, report.number):  # nor found by its number
        assert await get(api, f"requests/{number}.json", 404) == [
            {"code": 404, "description": f"service_request_id: {number} not found"}
        ]
    assert await get(api, "requests.json", service_request_id=f"{request.number},{complaint.number}") == []

    # A clerk makes the Telegram report public: listed, its description and place show (the place to
    # about 100 m: 0.001° of latitude, 0.0017° of longitude there: 25.27961 is 32 m from 25.2801), the person still does not.
    with pytest.raises(NotAllowed):
        await wired.commands.act(complaint.id, Action.PUBLISH, ONA)
    await wired.commands.act(report.id, Action.PUBLISH, ONA)
    [shown] = await get(api, f"requests/{report.number}.json")
    assert (shown["description"], shown["address"], shown["lat"], shown["long"]) == (
        "Dziura w jezdni na skrzyżowaniu",
        "ul. Polna 1",
        54.687,
        25.2801,
    )
    assert (shown["requested_datetime"], shown["updated_datetime"]) == (
        "2026-11-23T00:00:00+02:00",
        "2026-11-23T00:00:00+02:00",
    )
    assert [r["service_request_id"] for r in await get(api, "requests.json")] == [
        posted["service_request_id"],
        report.number,
    ]
    xml = (await get(api, "requests.xml")).find(f"request[service_request_id='{report.number}']")
    assert (xml.find("lat").text, xml.find("long").text) == ("54.687", "25.2801")
    assert "Anna" not in json.dumps(await get(api, "requests.json"))
    case = await wired.queries.get(report.id)
    assert case is not None
    assert (
        "🌐 Viešas: aprašymas, vieta ir galutinis atsakymas rodomi Open311 sąraše"
        in wired.clerk_texts.card(case, None)[0]
    )
    assert "🔒 Nerodyti viešai" in [
        b.text for row in wired.clerk_texts.card(case, None)[1].inline_keyboard for b in row
    ]
    assert "paviešintas (Open311)" in wired.clerk_texts.trail(case, await wired.queries.history(report.id))
    await wired.commands.act(report.id, Action.HIDE, ONA)
    await get(api, f"requests/{report.number}.json", 404)  # hidden again: out of the listing


def test_a_public_place_is_rounded_to_about_100_metres() -> None:
    for latitude, longitude in (
        (54.68734, 25.27961),
        (54.6875, 25.2788),
        (-33.86785, 151.20732),
        (0.0004, -0.0006),
        (89.99, 179.9999),
    ):
        lat, long = rounded_place(latitude, longitude)
        assert lat is not None and long is not None
        north = abs(lat - latitude) * 111_320
        east = abs(long - longitude) * 111_320 * math.cos(math.radians(latitude))
        assert north <= 56 and east <= 60, (
            latitude,
            longitude,
            lat,
            long,
        )  # half a step of about 100 m each way
        assert len(str(lat).split(".")[1]) <= 3 and -180 <= long <= 180
    # Two places 30 m apart in the same square publish the same point: the house cannot be told.
    assert rounded_place(54.68712, 25.27950) == rounded_place(54.68731, 25.27960)
    assert rounded_place(None, 25.3) == (None, None)


async def test_status_notes_are_the_public_answer(
    api: ApiClient, wired: Services, database: Database, frozen: Callable[[datetime], None]
) -> None:
    [asked] = await post(
        api,
        **{**REPORT, "service_code": "request-social", "description": "Prašau pažymos apie gyvenamąją vietą"},
    )
    request = await wired.queries.by_number(asked["service_request_id"])
    assert request is not None
    [posted] = await post(api, **REPORT)
    report = await wired.queries.by_number(posted["service_request_id"])
    assert report is not None
    frozen(T0 + timedelta(days=2))
    answer = GroupMessage(ADMIN_CHAT_ID, 99, "Žibintas pakeistas, ačiū už pranešimą")
    await wired.commands.act(
        report.id, Action.ANSWER, ONA, text="Žibintas pakeistas, ačiū už pranešimą", answer=answer
    )
    await wired.commands.act(
        request.id,
        Action.ANSWER,
        ONA,
        text="Ponia Ona, pažyma laukia seniūnijoje",
        answer=GroupMessage(ADMIN_CHAT_ID, 98, "x"),
    )

    [closed] = await get(api, f"requests/{report.number}.json")
    assert (closed["status"], closed["status_notes"]) == ("closed", "Žibintas pakeistas, ačiū už pranešimą")
    assert closed["updated_datetime"] == "2026-11-25T00:00:00+02:00"  # the day it closed, not the minute
    assert (
        closed["description"] is None
    )  # answered in public, but the resident's text stays private until a clerk makes it public
    [other] = await get(api, f"requests/{request.number}.json")
    assert (other["status"], other["status_notes"]) == (
        "closed",
        "Atsakyta",
    )  # an answer to a person is not published
    assert (await get(api, f"requests/{request.number}.json", locale="pl"))[0][
        "status_notes"
    ] == "Udzielono odpowiedzi"


async def test_the_listings_filters_and_their_errors(
    api: ApiClient, wired: Services, database: Database, frozen: Callable[[datetime], None]
) -> None:
    old = await _telegram_case(wired, database, "report", "roads", "Dziura w jezdni od miesięcy")
    await wired.commands.act(old.id, Action.PUBLISH, ONA)
    frozen(T0 + timedelta(days=30))
    lighting = await _telegram_case(wired, database, "report", "lighting", "Nie świeci latarnia od tygodnia")
    await wired.commands.act(lighting.id, Action.PUBLISH, ONA)
    [posted] = await post(
        api, **{**REPORT, "service_code": "complaint-waste", "description": "Neišvežtos atliekos šią savaitę"}
    )
    waste = await wired.queries.by_number(posted["service_request_id"])
    assert waste is not None
    await wired.commands.act(waste.id, Action.REJECT, ONA, text="Ne savivaldybės kompetencija")

    def numbers(listing: list[dict[str, Any]]) -> list[str]:
        return [r["service_request_id"] for r in listing]

    assert numbers(await get(api, "requests.json")) == [
        waste.number,
        lighting.number,
        old.number,
    ]  # the last 90 days
    assert numbers(await get(api, "requests.json", status="closed")) == [waste.number]
    assert numbers(await get(api, "requests.json", status="open")) == [lighting.number, old.number]
    assert numbers(await get(api, "requests.json", status="open,closed")) == [
        waste.number,
        lighting.number,
        old.number,
    ]
    assert numbers(await get(api, "requests.json", service_code="report-lighting,complaint-waste")) == [
        waste.number,
        lighting.number,
    ]
    assert numbers(await get(api, "requests.json", start_date="2026-12-01T00:00:00Z")) == [
        waste.number,
        lighting.number,
    ]
    assert numbers(await get(api, "requests.json", end_date="2026-11-30T00:00:00+02:00")) == [old.number]
    # Dates are days: a window around the minute a case came finds nothing, the day finds it.
    window: dict[str, Any] = {
        "start_date": "2026-11-23T08:59:00+02:00",
        "end_date": "2026-11-23T09:01:00+02:00",
    }
    assert numbers(await get(api, "requests.json", **window)) == []
    day: dict[str, Any] = {"start_date": "2026-11-23T00:00:00+02:00", "end_date": "2026-11-23T00:00:00+02:00"}
    assert numbers(await get(api, "requests.json", **day)) == [old.number]
    assert (
        numbers(
            await get(
                api, "requests.json", start_date="2026-11-23T00:00:01+02:00", end_date="2026-11-30T00:00:00Z"
            )
        )
        == []
    )
    # service_request_id overrides the rest.
    assert numbers(
        await get(
            api, "requests.json", service_request_id=f"{old.number},{waste.number.lower()}", status="open"
        )
    ) == [waste.number, old.number]
    assert (await get(api, "requests.json", 400, status="pending"))[0][
        "description"
    ] == "status: pending is not open or closed"
    assert (await get(api, "requests.json", 400, start_date="2026-13-01"))[0]["description"].startswith(
        "start_date: '2026-13-01' is not a w3 date and time"
    )
    assert (await get(api, "requests.json", 400, end_date="2026-12-01T00:00:00"))[0][
        "description"
    ].startswith("end_date: give the time zone")
    span = {"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-12-01T00:00:00Z"}
    assert (await get(api, "requests.json", 400, **span))[0][
        "description"
    ] == "start_date, end_date: may span at most 90 days"
    assert (
        await get(
            api, "requests.json", 400, start_date="2026-12-02T00:00:00Z", end_date="2026-12-01T00:00:00Z"
        )
    )[0]["description"] == "start_date: after end_date"
    assert (await get(api, "requests.json", 404, service_code="report-potholes"))[0][
        "description"
    ].startswith("service_code: unknown service 'report-potholes'")
    assert (await get(api, "requests/VRS-2026-000099.json", 404)) == [
        {"code": 404, "description": "service_request_id: VRS-2026-000099 not found"}
    ]
    [rejected] = await get(api, f"requests/{waste.number}.json")
    assert (rejected["status"], rejected["status_notes"]) == (
        "closed",
        "Atmestas",
    )  # a complaint: the reason stays with the resident


def test_open311_keys_are_checked_at_start() -> None:
    base: dict[str, Any] = {
        "bot_token": TOKEN,
        "admin_chat_id": ADMIN_CHAT_ID,
        "comms_chat_id": COMMS_CHAT_ID,
        "secret_key": SECRET_KEY,
    }
    assert load_config(
        **base, open311_keys=f"fixmystreet:{KEY},other:{OTHER_KEY}"
    ).settings.open311_clients == {KEY: "fixmystreet", OTHER_KEY: "other"}
    assert load_config(**base).settings.open311_clients == {}
    for keys, message in (
        (KEY, "OPEN311_KEYS: pair 1: write client:key"),
        ("fixmystreet:short", "OPEN311_KEYS: pair 1 (fixmystreet): the key must be 16 to 128 letters"),
        (f"a:{KEY},a:{OTHER_KEY}", "OPEN311_KEYS: pair 2: the client a is named twice"),
        (f"a:{KEY},b:{KEY}", "OPEN311_KEYS: pair 2 (b): the key is the same as a's"),
    ):
        with pytest.raises(ConfigError) as error:
            load_config(**base, open311_keys=keys)
        assert str(error.value).startswith(message)
        assert KEY not in str(error.value)


async def test_retention_takes_the_contact_and_what_was_public(
    api: ApiClient, wired: Services, database: Database, frozen: Callable[[datetime], None]
) -> None:
    [posted] = await post(api, **REPORT)
    case = await wired.queries.by_number(posted["service_request_id"])
    assert case is not None
    await wired.commands.act(case.id, Action.PUBLISH, ONA)
    await wired.commands.act(
        case.id,
        Action.ANSWER,
        ONA,
        text="Žibintas pakeistas",
        answer=GroupMessage(ADMIN_CHAT_ID, 99, "Žibintas pakeistas"),
    )
    frozen(T0 + timedelta(days=3 * 365))  # reports are kept 2 years after closing
    await wired.rights.purge_expired(clock.now())
    async with database.read() as session:
        purged = await session.get(Case, case.id)
    assert purged is not None
    assert (purged.contact, purged.public, purged.description, purged.latitude) == (None, False, "", None)
    [shown] = await get(api, f"requests/{case.number}.json")
    assert (shown["status"], shown["status_notes"], shown["description"], shown["address"]) == (
        "closed",
        "Atsakyta",
        None,
        None,
    )
