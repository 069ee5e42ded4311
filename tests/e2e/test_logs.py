"""What residents write never reaches the log, even at LOG_LEVEL=DEBUG."""

import pytest

from tests.support.driver import Telegram
from tests.support.helpers import choose, onboard

DESCRIPTION = "Zepsuta latarnia kwiat-paproci-7731 przy przystanku, świeci na zmianę"
ADDRESS = "ul. Niezapominajek 4193, Zielony Zakątek"
PHONE = "+37069917733"


@pytest.fixture
def settings_env(settings_env: dict[str, str]) -> dict[str, str]:
    # The most talkative level: if the bot keeps these out of DEBUG, it keeps them out everywhere.
    return {**settings_env, "LOG_LEVEL": "DEBUG"}


@pytest.mark.unmigrated  # the bot's start migrates: all it logs at DEBUG is there too
async def test_description_address_and_phone_stay_out_of_the_log(bot, telegram: Telegram, clerks) -> None:
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    await anna.send("📝 Nowa sprawa")
    await anna.receive_one()
    await choose(anna, "🚧 Zgłoszenie problemu")
    await choose(anna, "🤷 Nie wiem / cały rejon")
    await choose(anna, "Drogi, ulice i transport")
    await anna.send(DESCRIPTION)
    await anna.receive_one()
    await choose(anna, "⏭ Pomiń")
    await anna.send(ADDRESS)
    await anna.receive_one()
    await anna.share_contact(PHONE)
    _, summary = await anna.receive(2)
    assert ADDRESS in summary.text and PHONE in summary.text
    await anna.click("✅ Wyślij")
    await anna.edited()
    assert "VRS-2026-000001" in (await anna.receive_one()).text
    card = await clerks.receive_one()  # the card reached the clerks: the case went through the store
    assert DESCRIPTION in card.text

    await bot.stop()  # everything flushed
    log = bot.log_path.read_text(errors="replace")
    assert " DEBUG " in log, "the bot did not log at DEBUG"
    for secret in ("kwiat-paproci-7731", "Niezapominajek", "69917733"):
        assert secret not in log, (
            f"{secret!r} is in the log:\n"
            + "\n".join(line for line in log.splitlines() if secret in line)[:2000]
        )
