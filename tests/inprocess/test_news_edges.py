"""News at its edges, in process: broadcasting refused outside the communications group, and an
album announcement sent and then too late to stop. (Moved from tests/e2e/test_news.py, which keeps
sending through a kill -9 and a stop.)"""

import gc

import pytest

from bot.sandbox.emulator import Emulator
from tests.catalog import tr
from tests.support.driver import Telegram
from tests.support.helpers import PHOTO, onboard, staff


async def test_only_the_communications_group_broadcasts(
    bot, telegram: Telegram, caplog: pytest.LogCaptureFixture
) -> None:
    anna = await telegram.resident("Anna", language_code="pl")
    offer = await onboard(anna, "pl")
    await anna.forge_button("cm:send:", offer)
    assert (await anna.answer())["text"] == tr("pl", "Not allowed here.")
    await anna.send("/broadcast")
    assert (await anna.receive_one()).text == tr(
        "pl",
        "There is no command {command}. Available: /new, /cases, /news, /language, /privacy, /help, /cancel, /start.",
        command="/broadcast",
    )
    assert "broadcast button pressed outside" in caplog.text


async def test_an_album_announcement_and_stop(bot, telegram: Telegram, emulator: Emulator) -> None:
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    rasa = await staff(telegram, emulator)
    await rasa.send("/broadcast")
    await rasa.click("Polski", await rasa.receive_one())
    await rasa.edited()
    await rasa.send_album([PHOTO, PHOTO], caption="Nowy plac zabaw w Niemenczynie")
    await rasa.click(tr("lt", "➡️ Choose the audience"), await rasa.receive_one())
    await rasa.edited()
    await rasa.click(tr("lt", "👁 Preview"))
    await rasa.edited()
    _, *preview, confirm = await rasa.receive(4)
    assert [m.raw.get("caption") for m in preview] == ["Nowy plac zabaw w Niemenczynie", None]
    await rasa.click(
        tr("lt", "✅ Send to {count} resident", "✅ Send to {count} residents", 1, count=1), confirm
    )
    await rasa.edited()
    await rasa.receive_one()  # the progress message
    album = await anna.receive(2)
    assert (
        len({m.raw["media_group_id"] for m in album}) == 1
        and album[0].text == "Nowy plac zabaw w Niemenczynie"
    )

    done = tr("lt", "📣 Announcement #{id}: done", id=1)
    report = await rasa.edited(timeout=15)
    while not report.text.startswith(done):
        report = await rasa.edited(timeout=15)
    await rasa.send("/stop 1")  # too late: it is done
    assert (await rasa.receive_one()).text == tr(
        "lt", "Announcement #{id} is not being sent (finished, stopped, or unknown).", id=1
    )


async def test_an_album_that_ends_after_the_composition_was_cancelled_is_dropped(
    bot, telegram: Telegram, emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    """Found by the fuzz walk: the album is taken once its last item has come (a moment later); a
    /cancel in between left it nothing to belong to, and its handler failed."""
    rasa = await staff(telegram, emulator)
    await rasa.send("/broadcast")
    await rasa.click("Polski", await rasa.receive_one())
    await rasa.edited()
    await rasa.send_album([PHOTO, PHOTO], caption="Nowy plac zabaw w Niemenczynie")
    await rasa.send("/cancel")
    await rasa.receive_one()  # cancelled
    await rasa.nothing_more()  # the album ended: no question about versions, nothing kept
    gc.collect()  # a task that failed says so when it is collected
    assert "Task exception was never retrieved" not in caplog.text
