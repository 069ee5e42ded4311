"""What a resident is told survives a Telegram outage and a kill -9 in the middle of it: once
the outage is over, the answer, the status and the satisfaction question arrive, each once."""

from __future__ import annotations

from sqlalchemy import select

from bot.sandbox.driver import Person, Telegram
from bot.sandbox.emulator import Emulator
from bot.store.db import Database
from bot.store.models import OutboxMessage, OutboxStatus
from tests.e2e.conftest import BotProcess
from tests.e2e.helpers import onboard, submit_case

OUTAGE_SECONDS = 60


async def test_a_60_second_outage_and_a_kill_9_lose_nothing(
    emulator: Emulator, telegram: Telegram, settings_env, tmp_path, store: Database, clerks: Person
) -> None:
    bot = BotProcess(emulator, settings_env, tmp_path / "bot.log")
    await bot.start()
    try:
        anna = await telegram.resident("Anna", language_code="pl")
        await onboard(anna, "pl")
        await submit_case(anna, "pl", "📄 Wniosek", "Inne sprawy", "Proszę o zaświadczenie")
        card = await clerks.receive_one()

        # Telegram fails every message to Anna for a minute (502), while the clerk answers and closes.
        await telegram.fault("error", code=502, chat_id=anna.user["id"], seconds=OUTAGE_SECONDS)
        await clerks.click("✅ Atsakyti ir užbaigti", card)
        await clerks.receive_one()  # the prompt
        await clerks.send("Zaświadczenie jest gotowe do odbioru.", thread_id=card.thread_id)
        await clerks.edited()  # the card: answered
        await anna.nothing_more(2.0)

        # The process dies mid-outage; a new one takes over its unsent rows at once.
        await bot.kill()
        bot = BotProcess(emulator, settings_env, tmp_path / "bot.log")
        await bot.start()
        answer, closed, question = await anna.receive(3, timeout=OUTAGE_SECONDS + 45)
        await anna.nothing_more(3.0)
    finally:
        await bot.stop()
    assert answer.text.endswith("Zaświadczenie jest gotowe do odbioru.")
    assert "Status: Udzielono odpowiedzi" in closed.text
    assert question.text.startswith("Czy jest Pan/Pani zadowolony/zadowolona z załatwienia sprawy VRS-2026-000001?")
    async with store.read() as session:
        rows = (await session.execute(select(OutboxMessage).where(OutboxMessage.chat_id == anna.user["id"]))).scalars().all()
    assert {row.status for row in rows} == {OutboxStatus.SENT}
    assert max(row.attempts for row in rows) > 1, "the outage was retried, not skipped"
