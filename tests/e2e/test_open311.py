"""Open311 through the real bot process and its web server, one behaviour a test: a GeoReport v2
client nobody here wrote (the `georeport` package from PyPI, in JSON and XML) reads the services and
the requests; a request posted with a client's key becomes a case whose card appears in the team's
group; a clerk makes the report public and answers it there, and the client reads it closed with
the answer as its status notes.

One bot process per module (and database), as starting one costs more than these tests do: the
tests share two requests, each made once, and change neither: `posted` stays open and private,
`answered` is made public and answered while it is made, its fixture keeping what the clerk saw."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pytest
import pytest_asyncio
import requests
from georeport import GeoReport  # type: ignore[import-untyped]  # ships neither stubs nor py.typed

from bot.sandbox.emulator import Emulator
from tests.catalog import tr
from tests.conftest import (
    ADMIN_CHAT_ID,
    COMMS_CHAT_ID,
    DATABASES,
    SECRET_KEY,
    TOKEN,
    _create_pg_database,
    _drop_pg_database,
)
from tests.e2e.conftest import BotProcess
from tests.support.driver import Person, Received, Telegram
from tests.support.helpers import free_port, served_emulator, wait_until

pytestmark = pytest.mark.asyncio(loop_scope="module")
module_fixture = pytest_asyncio.fixture(scope="module", loop_scope="module")

KEY = "fixmystreet-e2e-key-0123456789"
DESCRIPTION = "Nedega gatvės žibintas prie mokyklos"
ADDRESS = "Vilniaus g. 1, Avižieniai"
ANSWER = "Žibintas pakeistas. Dėkojame už pranešimą."
FORM = {
    "api_key": KEY,
    "jurisdiction_id": "vrsa.lt",
    "service_code": "report-lighting",
    "lat": "54.7512",
    "long": "25.3021",
    "address_string": ADDRESS,
    "first_name": "Ona",
    "last_name": "Petraitė",
    "email": "ona@example.lt",
    "description": DESCRIPTION,
}
# A report of a problem in the default team (no head): it can be made public.
CARD_BUTTONS = [
    "🙋 Imuosi",
    "⚙️ Nagrinėjamas",
    "⏳ Pratęsti",
    "✅ Atsakyti ir užbaigti",
    "↪️ Kitai institucijai",
    "⛔ Atmesti",
    "🌐 Paviešinti",
    "🔗 Kreipimosi dublikatas…",
    "📣 Skelbimas apylinkei",
]
PUBLIC = "🌐 Public: the description, the place and the final answer are shown in the Open311 listing"


def lt(msgid: str, **values: Any) -> str:
    return tr("lt", msgid, **values)


def card_text(number: str, *public: str) -> str:
    """The card (in ADMIN_LOCALE, Lithuanian): the person's contact and the client instead of a resident."""
    return "\n".join(
        [
            f"🚧 {number} · Pranešimas apie problemą",
            lt("Status: {status}", status=lt("Received")) + " · " + lt("nobody responsible yet"),
            "Komanda: Specialistai",
            "Seniūnija: visas rajonas",
            "Sritis: Gatvių apšvietimas",
            "Gauta: 2026 m. lapkričio 23 d.",
            "Terminas: 2026 m. gruodžio 21 d. (liko 20 darbo dienų)",
            lt("Person: {name} (no Telegram)", name="Ona Petraitė"),
            "Atsakyti el. paštu: ✉️ ona@example.lt",
            lt("📡 Came through Open311 from {client}", client="fixmystreet"),
            *public,
            f"Adresas: {ADDRESS}",
            "",
            DESCRIPTION,
        ]
    )


@pytest.fixture(autouse=True)
def _requests_time_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client calls requests.get without a timeout: a request left unanswered would hold its
    worker thread, and the test loop's shutdown waiting for it, for ever."""
    monkeypatch.setattr(requests, "get", functools.partial(requests.get, timeout=30))


_T = TypeVar("_T")


async def read(call: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """The client is synchronous (requests): off the event loop, which serves the emulator."""
    return await asyncio.to_thread(call, *args, **kwargs)


# --- one bot process for the module ----------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=DATABASES)
async def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('open311')}/petent.db"
        return
    url = await _create_pg_database()
    try:
        yield url
    finally:
        await _drop_pg_database(url)


@module_fixture
async def emulator(database_url: str) -> AsyncIterator[Emulator]:
    """Per database too: the chats start empty with each bot (nobody reads what the other left)."""
    async with served_emulator() as emulator:
        yield emulator


@module_fixture
async def telegram(emulator: Emulator) -> AsyncIterator[Telegram]:
    telegram = Telegram(emulator)
    yield telegram
    await telegram.close()


@module_fixture
async def bot(
    emulator: Emulator, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[BotProcess]:
    env = {
        "BOT_TOKEN": TOKEN,
        "ADMIN_CHAT_ID": str(ADMIN_CHAT_ID),
        "COMMS_CHAT_ID": str(COMMS_CHAT_ID),
        "DATABASE_URL": database_url,
        "SECRET_KEY": SECRET_KEY,
        "WEB_PORT": str(free_port()),
        "OPEN311_KEYS": f"fixmystreet:{KEY}",
    }
    process = BotProcess(emulator, env, tmp_path_factory.mktemp("open311-bot") / "bot.log")
    await process.start()
    yield process
    await process.stop()
    assert not process.refused_requests(), "the bot sent a request Telegram refuses"
    assert not emulator.spec.unknown_parameters, (
        f"parameters the Bot API does not document: {emulator.spec.unknown_parameters}"
    )


@dataclass
class Api:
    base: str
    as_json: GeoReport
    as_xml: GeoReport


@module_fixture
async def api(bot: BotProcess) -> Api:
    """The bot's GeoReport v2 API, and the client reading it in JSON and in XML."""
    base = f"http://127.0.0.1:{bot.env['WEB_PORT']}/open311/v2"
    return Api(
        base,
        GeoReport(base, jurisdiction="vrsa.lt"),
        GeoReport(base, jurisdiction="vrsa.lt", output_format="xml"),
    )


@module_fixture
async def clerks(telegram: Telegram, emulator: Emulator) -> Person:
    """Ona, a clerk: a member of the clerks' group, acting and reading there."""
    ona = await telegram.person("Ona", language_code="lt")
    emulator.chats[ADMIN_CHAT_ID].members.add(ona.user["id"])
    return ona.in_chat(ADMIN_CHAT_ID)


async def post(api: Api, form: dict[str, str]) -> httpx.Response:
    """The client posts (the package only reads: the POST is the specification's form, by hand)."""
    async with httpx.AsyncClient() as http:
        return await http.post(f"{api.base}/requests.json", data=form)


# --- the requests ----------------------------------------------------------------------------


@dataclass
class Posted:
    response: httpx.Response
    number: str
    card: Received


async def post_and_wait_for_the_card(api: Api, clerks: Person) -> Posted:
    response = await post(api, FORM)
    card, _location = await clerks.receive(2)
    return Posted(response, response.json()[0]["service_request_id"], card)


@module_fixture
async def posted(api: Api, clerks: Person) -> Posted:
    """Ona Petraitė's report of a street lamp out, posted by fixmystreet; its card in the clerks' group. Left open and private."""
    return await post_and_wait_for_the_card(api, clerks)


@dataclass
class Answered:
    number: str
    public_card: Received  # the card, edited as the clerk made the report public
    prompt: Received  # what the clerk was asked on pressing "Answer and close"
    closed: dict[str, Any]  # the request, as the client then reads it


@module_fixture
async def answered(api: Api, clerks: Person, posted: Posted) -> Answered:
    """The same report posted again (after `posted`, so the numbers are known), made public and answered in its topic."""
    mine = await post_and_wait_for_the_card(api, clerks)
    await clerks.click("🌐 Paviešinti", mine.card)
    public_card = await clerks.edited()
    await clerks.click("✅ Atsakyti ir užbaigti", mine.card)
    prompt = await clerks.receive_one()
    await clerks.send(ANSWER, thread_id=mine.card.thread_id)

    async def closed() -> dict[str, Any] | None:
        request = await read(api.as_json.get_service_request, mine.number)
        return request if request["status"] == "closed" else None

    return Answered(
        mine.number,
        public_card,
        prompt,
        await wait_until(closed, what=f"{mine.number} closed in the GeoReport API"),
    )


# --- the tests -------------------------------------------------------------------------------


async def test_the_service_list_names_the_categories_in_json_and_xml(api: Api) -> None:
    services = {s["service_code"]: s for s in await read(api.as_json.get_service_list)}
    assert (services["report-lighting"]["service_name"], services["report-lighting"]["group"]) == (
        "Gatvių apšvietimas",
        "Pranešimas apie problemą",
    )
    in_xml = {s["service_code"]: s for s in await read(api.as_xml.get_service_list)}
    assert in_xml.keys() == services.keys() and in_xml["report-lighting"]["metadata"] == "false"
    assert await read(api.as_json.get_service_definition, "report-lighting") == {
        "service_code": "report-lighting",
        "attributes": [],
    }


async def test_a_request_with_a_key_not_given_out_is_refused(api: Api) -> None:
    before = await read(api.as_json.get_service_requests)
    refused = await post(api, {**FORM, "api_key": "not-the-key-0123456789"})
    assert (refused.status_code, refused.json()) == (
        403,
        [{"code": 403, "description": "api_key: not valid; can't proceed with create_request"}],
    )
    assert await read(api.as_json.get_service_requests) == before  # nothing registered


async def test_a_posted_request_is_registered_and_the_client_gets_its_number_and_deadline(
    posted: Posted,
) -> None:
    assert posted.response.status_code == 200
    [receipt] = posted.response.json()
    assert receipt["service_request_id"] == posted.number == "VRS-2026-000001"
    assert receipt["service_notice"] == lt(
        "Registered as {number}. Handled by: {team}. Answer due: {date}",
        number=posted.number,
        team="Specialistai",
        date="2026 m. gruodžio 21 d.",
    )


async def test_its_card_in_the_team_group_names_the_person_and_the_client(posted: Posted) -> None:
    assert posted.card.text == card_text(posted.number)
    assert posted.card.buttons == CARD_BUTTONS


async def test_until_it_is_public_the_client_reads_its_status_but_not_its_description(
    api: Api, posted: Posted
) -> None:
    opened = await read(api.as_json.get_service_request, posted.number)
    assert (opened["status"], opened["status_notes"], opened["agency_responsible"]) == (
        "open",
        lt("Received"),
        "Specialistai",
    )
    assert opened["expected_datetime"] == "2026-12-21T23:59:59+02:00"
    assert opened["description"] is None


async def test_a_message_in_its_topic_has_nowhere_to_go_and_the_clerk_is_told(
    clerks: Person, posted: Posted
) -> None:
    await clerks.send("Ar galite patikslinti vietą?", thread_id=posted.card.thread_id)
    told = await clerks.receive_one()
    assert told.text == lt(
        "Not sent: this case came through Open311, not Telegram. The final answer ({button}) is published there; start a note with !.",
        button="✅ Atsakyti ir užbaigti",
    )


async def test_making_it_public_shows_on_the_card(answered: Answered) -> None:
    assert answered.public_card.text == card_text(answered.number, lt(PUBLIC))


async def test_answering_says_the_answer_is_published_through_open311(answered: Answered) -> None:
    assert answered.prompt.text == "\n\n".join(
        [
            lt(
                "{number}: write the final answer. It is published through Open311, where the person reads it, and the case is closed.",
                number=answered.number,
            ),
            lt("⏳ Waiting for your answer to {number} ({minutes} min).", number=answered.number, minutes=10),
        ]
    )


async def test_answered_the_client_reads_it_closed_with_the_answer_and_the_place(answered: Answered) -> None:
    closed = answered.closed
    assert (closed["status"], closed["status_notes"]) == ("closed", ANSWER)
    # The place to about 100 m (posted as 54.7512, 25.3021): nobody's house can be told from it.
    assert (closed["description"], closed["address"], closed["lat"], closed["long"]) == (
        DESCRIPTION,
        ADDRESS,
        54.751,
        25.3028,
    )
    assert closed["requested_datetime"] == "2026-11-23T00:00:00+02:00"  # the day, not the minute


async def test_the_public_listing_shows_it_closed_without_the_person(
    api: Api, posted: Posted, answered: Answered
) -> None:
    listed = await read(api.as_xml.get_service_requests, status="closed", service_code="report-lighting")
    assert (listed["service_request_id"], listed["status"], listed["status_notes"]) == (
        answered.number,
        "closed",
        ANSWER,
    )  # the only one closed
    assert "Petraitė" not in str(listed) and "ona@example.lt" not in str(listed)
    still_open = [
        request["service_request_id"]
        for request in await read(api.as_json.get_service_requests, status="open")
    ]
    assert (answered.number, still_open) == (
        "VRS-2026-000002",
        [posted.number],
    )  # only the one nobody answered
