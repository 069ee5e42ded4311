"""End-to-end: the real bot process (`python -m bot run`, forked from tests/e2e/launcher.py) against the emulator over HTTP."""

from __future__ import annotations

import asyncio
import atexit
import functools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.sandbox.emulator import Emulator
from bot.store.db import Database
from tests.support.driver import Telegram
from tests.support.helpers import free_port, served_emulator

pytestmark = pytest.mark.e2e

# A Monday: a case received now is due on Monday 21 December 2026 (20 working days).
FROZEN_TIME = "2026-11-23T09:00:00+02:00"
ROOT = Path(__file__).resolve().parents[2]


class Launcher:
    """The forking launcher (tests/e2e/launcher.py), one per test session (per xdist worker)."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-u", "-m", "tests.e2e.launcher"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )
        atexit.register(self.process.kill)

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(request).encode() + b"\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise AssertionError(f"the bot launcher exited with {self.process.wait()}")
        answer: dict[str, Any] = json.loads(line)
        return answer


@functools.cache
def launcher() -> Launcher:
    return Launcher()


class BotProcess:
    """The bot as an operator runs it (`python -m bot run`, forked from the launcher), with
    start, kill -9 and restart."""

    def __init__(self, emulator: Emulator, env: dict[str, str], log_path: Path) -> None:
        self.emulator = emulator
        self.env = {
            **os.environ,
            "PETENT_FROZEN_TIME": FROZEN_TIME,
            **env,
            "TELEGRAM_API_URL": emulator.url,
            "PYTHONUNBUFFERED": "1",
        }
        if "REDIS_URL" not in env:
            self.env.pop("REDIS_URL", None)
        if (
            "OPS_LISTEN" not in env
        ):  # /healthz and /metrics: a port of its own (9090 may be another process's)
            self.env["OPS_LISTEN"] = f"127.0.0.1:{free_port()}"
        self.log_path = log_path
        self.pid: int | None = None
        self.expected_errors: list[str] = []  # refusals a test provokes on purpose

    def refused_requests(self) -> list[dict[str, Any]]:
        return [
            r
            for r in self.emulator.requests
            if r["status"] in (400, 404) and not any(e in r["error"] for e in self.expected_errors)
        ]

    @property
    def ops_url(self) -> str | None:
        """Where this process serves /healthz and /metrics (OPS_LISTEN)."""
        listen = self.env.get("OPS_LISTEN", "")
        return f"http://{listen}" if listen and listen != "off" else None

    @property
    def returncode(self) -> int | None:
        return None if self.pid is None else launcher().ask({"status": self.pid})["code"]

    async def _serving(self, polls: int) -> bool:
        """Polling: a new getUpdates came. Webhook mode: the replica's /healthz says ok."""
        if "WEB_PORT" not in self.env or self.ops_url is None:
            return self.emulator.polls != polls
        try:
            async with httpx.AsyncClient() as http:
                return (await http.get(f"{self.ops_url}/healthz")).status_code == 200
        except httpx.HTTPError:
            return False

    async def start(self, timeout: float = 30.0) -> None:
        polls = self.emulator.polls
        start = {"env": self.env, "cwd": str(self.log_path.parent), "log": str(self.log_path)}
        self.pid = launcher().ask({"start": start})["pid"]
        deadline = time.monotonic() + timeout
        while not await self._serving(polls):
            if (code := self.returncode) is not None:
                raise AssertionError(f"the bot exited with {code}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the bot did not start polling:\n{self.log()}")
            await asyncio.sleep(0.05)

    async def _exited(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.returncode is None:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    async def kill(self) -> None:
        """kill -9: no shutdown handlers run, as in a crash or power loss."""
        assert self.pid is not None
        os.kill(self.pid, signal.SIGKILL)
        await self._exited(10)

    async def stop(self) -> None:
        if self.pid is not None and self.returncode is None:
            os.kill(self.pid, signal.SIGTERM)
            if not await self._exited(10):
                os.kill(self.pid, signal.SIGKILL)
                await self._exited(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with served_emulator() as emulator:
        yield emulator


@pytest.fixture
async def telegram(emulator: Emulator) -> AsyncIterator[Telegram]:
    telegram = Telegram(emulator)
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
async def store(database_url: str) -> AsyncIterator[Database]:
    """The bot's database, for assertions on what it stored."""
    database = Database(database_url)
    yield database
    await database.dispose()
