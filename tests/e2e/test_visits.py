"""The visit survey through the real bot process: a poster's deep link scanned by people who never
used the bot, their answers, and the public page of the web server counting them once a place has
5. (The survey's steps, the poster and who may print it are in tests/inprocess/test_visits.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.sandbox.emulator import Emulator
from tests.catalog import tr
from tests.e2e.conftest import BotProcess
from tests.support.driver import Telegram
from tests.support.helpers import free_port

PLACE_LT = "Gyventojų aptarnavimo skyrius, 1 langelis"


@pytest.fixture
async def bot_with_page(
    emulator: Emulator, settings_env: dict[str, str], tmp_path: Path
) -> AsyncIterator[BotProcess]:
    process = BotProcess(
        emulator,
        {**settings_env, "WEB_PORT": str(free_port()), "PUBLIC_SERVICE_QUALITY": "true"},
        tmp_path / "bot.log",
    )
    await process.start()
    yield process
    await process.stop()
    assert not process.refused_requests(), "the bot sent a request Telegram refuses"


async def test_people_scan_the_poster_answer_and_the_page_counts_them_from_five(
    bot_with_page: BotProcess, telegram: Telegram
) -> None:
    page_url = f"http://127.0.0.1:{bot_with_page.env['WEB_PORT']}/service-quality?lang=lt"
    people = [
        await telegram.resident(name, language_code=code)
        for name, code in (("Anna", "pl"), ("Jonas", "lt"), ("Rasa", "lt"), ("Ona", "lt"), ("Piotr", "pl"))
    ]
    async with httpx.AsyncClient(timeout=10) as http:
        for number, person in enumerate(people, start=1):
            locale = person.user["language_code"]
            await person.send(
                "/start v_front-desk-1"
            )  # what the camera opens: https://t.me/<bot>?start=v_front-desk-1
            survey = await person.receive_one()
            assert (
                tr(
                    locale,
                    "How satisfied are you with the service today? Tap a score from 1 (very poor) to 5 (very good).",
                )
                in survey.text
            )
            await person.click("4", survey)
            await person.click(tr(locale, "📨 Send"), await person.edited())
            assert (await person.edited()).text == tr(
                locale,
                "Thank you! Your answers have been recorded anonymously. They help us serve you better.",
            )
            page = (await http.get(page_url)).text
            shown = f"<h2>{PLACE_LT}</h2><table>" in page
            assert shown == (number >= 5), f"after {number} answers"
        assert "<td>5</td>" in page and "<td>4</td>" in page  # 5 answers, average 4
        anna = people[0]
        await anna.send("/start v_front-desk-1")  # again the same day
        assert (await anna.receive_one()).text == tr(
            "pl",
            "You have already answered about {place} today. Thank you! You can answer again after your next visit.",
            place="Biuro Obsługi Mieszkańców, stanowisko 1",
        )
        assert "<td>5</td>" in (await http.get(page_url)).text
