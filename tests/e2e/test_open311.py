"""Open311 through the real bot process: a GeoReport v2 client nobody here wrote (the `georeport`
package from PyPI, in JSON and XML) reads the services and the requests; a request posted with a
client's key becomes a case whose card appears in the team's group; a clerk makes the report
public and answers it there, and the client reads it closed with the answer as its status notes."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from georeport import GeoReport

from tests.e2e.driver import Person
from tests.e2e.helpers import free_port, wait_until

KEY = "fixmystreet-e2e-key-0123456789"


@pytest.fixture
def settings_env(settings_env: dict[str, str]) -> dict[str, str]:
    return {**settings_env, "WEB_PORT": str(free_port()), "OPEN311_KEYS": f"fixmystreet:{KEY}"}


async def read(call, *args, **kwargs):  # type: ignore[no-untyped-def]
    """The client is synchronous (requests): off the event loop, which serves the emulator."""
    return await asyncio.to_thread(call, *args, **kwargs)


async def test_a_request_from_an_open311_client_is_answered_in_the_team_group(bot, clerks: Person, settings_env) -> None:
    base = f"http://127.0.0.1:{settings_env['WEB_PORT']}/open311/v2"
    as_json, as_xml = GeoReport(base, jurisdiction="vrsa.lt"), GeoReport(base, jurisdiction="vrsa.lt", output_format="xml")

    services = {s["service_code"]: s for s in await read(as_json.get_service_list)}
    assert services["report-lighting"]["service_name"] == "Gatvių apšvietimas"
    assert services["report-lighting"]["group"] == "Pranešimas apie problemą"
    in_xml = {s["service_code"]: s for s in await read(as_xml.get_service_list)}
    assert in_xml.keys() == services.keys() and in_xml["report-lighting"]["metadata"] == "false"
    assert await read(as_json.get_service_definition, "report-lighting") == {"service_code": "report-lighting", "attributes": []}

    # The client posts (the package only reads: the POST is the specification's form, by hand).
    form = {
        "api_key": KEY, "jurisdiction_id": "vrsa.lt", "service_code": "report-lighting", "lat": "54.7512", "long": "25.3021",
        "address_string": "Vilniaus g. 1, Avižieniai", "first_name": "Ona", "last_name": "Petraitė", "email": "ona@example.lt",
        "description": "Nedega gatvės žibintas prie mokyklos",
    }  # fmt: skip
    async with httpx.AsyncClient() as http:
        refused = await http.post(f"{base}/requests.json", data={**form, "api_key": "not-the-key-0123456789"})
        assert refused.status_code == 403 and refused.json() == [{"code": 403, "description": "api_key: not valid; can't proceed with create_request"}]
        created = await http.post(f"{base}/requests.json", data=form)
    assert created.status_code == 200
    [receipt] = created.json()
    number = receipt["service_request_id"]
    assert number == "VRS-2026-000001"
    assert receipt["service_notice"] == "Kreipimasis užregistruotas numeriu VRS-2026-000001. Nagrinėja: Specialistai. Atsakymo terminas: 2026 m. gruodžio 21 d."

    # The card in the team's group, with the contact and the client.
    card, _location = await clerks.receive(2)
    assert card.text.startswith("🚧 VRS-2026-000001 · Pranešimas apie problemą")
    assert "Asmuo: Ona Petraitė (neturi „Telegram“)" in card.text and "✉️ ona@example.lt" in card.text
    assert "📡 Gautas per Open311 iš fixmystreet" in card.text
    assert "Nedega gatvės žibintas prie mokyklos" in card.text
    assert "🌐 Paviešinti" in card.buttons

    opened = await read(as_json.get_service_request, number)
    assert (opened["status"], opened["status_notes"], opened["agency_responsible"]) == ("open", "Gautas", "Specialistai")
    assert opened["expected_datetime"] == "2026-12-21T23:59:59+02:00"
    assert opened["description"] is None  # not public yet

    # A message in the topic has nowhere to go: the clerk is told so, and it is not taken for the answer.
    await clerks.send("Ar galite patikslinti vietą?", thread_id=card.thread_id)
    assert (await clerks.receive_one()).text.startswith(
        "Neišsiųsta: šis kreipimasis gautas per Open311, ne per „Telegram“. Galutinis atsakymas (✅ Atsakyti ir užbaigti)"
    )

    # The clerk makes it public and answers it in its topic.
    await clerks.click("🌐 Paviešinti", card)
    assert "🌐 Viešas" in (await clerks.edited()).text
    await clerks.click("✅ Atsakyti ir užbaigti", card)
    prompt = (await clerks.receive_one()).text
    assert prompt.startswith("VRS-2026-000001: parašykite galutinį atsakymą. Jis bus paskelbtas per Open311, kur jį perskaitys pateikęs asmuo")
    await clerks.send("Žibintas pakeistas. Dėkojame už pranešimą.", thread_id=card.thread_id)

    async def closed() -> dict | None:
        answered = await read(as_json.get_service_request, number)
        return answered if answered["status"] == "closed" else None

    answered = await wait_until(closed, what=f"{number} closed in the GeoReport API")
    assert answered["status_notes"] == "Žibintas pakeistas. Dėkojame už pranešimą."
    assert (answered["description"], answered["address"], answered["lat"], answered["long"]) == (
        "Nedega gatvės žibintas prie mokyklos", "Vilniaus g. 1, Avižieniai", 54.7512, 25.3021,
    )  # fmt: skip
    listed = await read(as_xml.get_service_requests, status="closed", service_code="report-lighting")
    assert (listed["service_request_id"], listed["status"], listed["status_notes"]) == (number, "closed", "Žibintas pakeistas. Dėkojame už pranešimą.")
    assert "Petraitė" not in str(listed) and "ona@example.lt" not in str(listed)
    assert await read(as_json.get_service_requests, status="open") == []
