"""End-to-end: the real bot process (`python -m bot run`) against the emulator over HTTP."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.sandbox.driver import Person, Telegram
from bot.sandbox.emulator import Emulator
from bot.store.db import Database
from tests.conftest import ADMIN_CHAT_ID, COMMS_CHAT_ID, TOKEN

pytestmark = pytest.mark.e2e

# A Monday: a case received now is due on Monday 21 December 2026 (20 working days).
FROZEN_TIME = "2026-11-23T09:00:00+02:00"


class BotProcess:
    """The bot as an operator runs it, with start, kill -9 and restart."""

    def __init__(self, emulator: Emulator, env: dict[str, str], log_path: Path) -> None:
        self.emulator = emulator
        self.env = {**os.environ, "PETENT_FROZEN_TIME": FROZEN_TIME, **env, "TELEGRAM_API_URL": emulator.url, "PYTHONUNBUFFERED": "1"}
        if "REDIS_URL" not in env:
            self.env.pop("REDIS_URL", None)
        self.log_path = log_path
        self.process: asyncio.subprocess.Process | None = None
        self.expected_errors: list[str] = []  # refusals a test provokes on purpose

    def refused_requests(self) -> list[dict]:
        return [
            r for r in self.emulator.requests
            if r["status"] in (400, 404) and not any(e in r["error"] for e in self.expected_errors)
        ]  # fmt: skip

    async def start(self, timeout: float = 30.0) -> None:
        polls = self.emulator.polls
        log = self.log_path.open("ab")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", cwd=self.log_path.parent, env=self.env, stdout=log, stderr=log
        )
        deadline = time.monotonic() + timeout
        while self.emulator.polls == polls:
            if self.process.returncode is not None:
                raise AssertionError(f"the bot exited with {self.process.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the bot did not start polling:\n{self.log()}")
            await asyncio.sleep(0.05)

    async def kill(self) -> None:
        """kill -9: no shutdown handlers run, as in a crash or power loss."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    emulator = Emulator(TOKEN)
    runner = await emulator.serve()
    emulator.add_group("Clerks", forum=True, chat_id=ADMIN_CHAT_ID)
    emulator.add_group("Communications", chat_id=COMMS_CHAT_ID)
    yield emulator
    await runner.cleanup()


@pytest.fixture
async def telegram(emulator: Emulator) -> AsyncIterator[Telegram]:
    telegram = Telegram(emulator.url)
    yield telegram
    await telegram.close()


@pytest.fixture
async def bot(emulator: Emulator, settings_env: dict[str, str], tmp_path: Path) -> AsyncIterator[BotProcess]:
    process = BotProcess(emulator, settings_env, tmp_path / "bot.log")
    await process.start()
    yield process
    await process.stop()
    unknown = emulator.spec.unknown_parameters
    assert not process.refused_requests(), "the bot sent a request Telegram refuses"
    assert not unknown, f"parameters the Bot API does not document: {unknown}"


@pytest.fixture
async def clerks(telegram: Telegram, emulator: Emulator) -> Person:
    """Ona, a clerk: a member of the clerks' group, acting and reading there."""
    ona = await telegram.person("Ona", language_code="lt")
    emulator.chats[ADMIN_CHAT_ID].members.add(ona.user["id"])
    return ona.in_chat(ADMIN_CHAT_ID)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Database]:
    """The bot's database, for assertions on what it stored."""
    database = Database(database_url)
    yield database
    await database.dispose()
