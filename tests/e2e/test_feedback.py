"""The weekly report on its day, through the real bot process (the schedule). (The satisfaction
question answered and a poll from the communications group, one behaviour a test, are in
tests/inprocess/test_feedback.py; the question declined in Lithuanian and the quality report in
the clerks' group in tests/inprocess/test_feedback_edges.py.)"""

from bot.sandbox.emulator import Emulator
from bot.store.db import Database
from tests.catalog import tr, tr_start
from tests.conftest import ADMIN_CHAT_ID
from tests.support.driver import Telegram

REPORT = "<b>Quality report</b> · {start} – {end}"


async def test_weekly_report_on_its_day(
    emulator: Emulator, telegram: Telegram, settings_env, tmp_path, store: Database
) -> None:
    from tests.e2e.conftest import BotProcess

    # Monday 30 November 2026, just before DIGEST_TIME: the digest, then last week's report.
    env = {
        **settings_env,
        "PETENT_FROZEN_TIME": "2026-11-30T07:59:58+02:00",
        "DIGEST_TIME": "08:00",
        "WEEKLY_REPORT": "Monday",
    }
    process = BotProcess(emulator, env, tmp_path / "bot.log")
    await process.start()
    try:
        clerk = (await telegram.person("Ona")).in_chat(ADMIN_CHAT_ID)
        digest, report, chart, workbook = await clerk.receive(4, timeout=30)
    finally:
        await process.stop()
    assert digest.text.startswith(tr_start("lt", "📋 <b>Daily digest</b> of {team}, {date}", until="team"))
    assert report.text.startswith(
        tr("lt", REPORT, start="2026 m. lapkričio 23 d.", end="2026 m. lapkričio 29 d.")
    )
    assert "Pasitenkinimas: per šį laikotarpį atsakymų nėra." in report.text
    assert (
        "photo" in chart.raw and workbook.raw["document"]["file_name"] == "quality-2026-11-23-2026-11-29.xlsx"
    )
