"""Redis lost while the bot runs: residents are asked to try again, the log says so once, and
the bot carries on when Redis is back. Uses a redis-server of its own on a spare port."""

import asyncio
import shutil
import socket
import subprocess
import time

import pytest

from tests.e2e.conftest import BotProcess
from tests.support.driver import Telegram
from tests.support.helpers import onboard

pytestmark = pytest.mark.skipif(
    not shutil.which("redis-server"), reason="needs redis-server (a Redis of its own to stop and start)"
)

TRY_AGAIN = "Przepraszamy, z powodu problemu technicznego nie mogliśmy teraz obsłużyć Pana/Pani prośby. Proszę spróbować ponownie za chwilę."
UNREACHABLE = "redis is unreachable"


class RedisServer:
    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        command = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise AssertionError(f"redis-server did not start on port {self.port}") from None
                await asyncio.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # as in a crash: no goodbye to the clients
            self.process.wait(10)


async def test_residents_are_asked_to_try_again_while_redis_is_down(
    emulator, telegram: Telegram, settings_env, tmp_path
) -> None:
    if "sqlite" not in settings_env["DATABASE_URL"]:
        pytest.skip("runs once, with SQLite for cases and Redis for conversations")
    redis = RedisServer()
    await redis.start()
    bot = BotProcess(emulator, {**settings_env, "REDIS_URL": redis.url}, tmp_path / "bot.log")
    try:
        await bot.start()
        anna = await telegram.resident("Anna", language_code="pl")
        await onboard(anna, "pl")

        redis.stop()
        for _ in range(3):
            await anna.send("📝 Nowa sprawa")
            assert (await anna.receive_one(timeout=30)).text == TRY_AGAIN
        assert bot.log_path.read_text().count(UNREACHABLE) == 1, bot.log()

        await redis.start()  # empty: the conversation is gone, the menu still works
        await anna.send("📝 Nowa sprawa")
        assert (await anna.receive_one(timeout=30)).text != TRY_AGAIN
        for _ in range(50):  # logged once the update is done, just after the answer
            if "redis is reachable again" in (log := bot.log_path.read_text()):
                break
            await asyncio.sleep(0.1)
        assert log.count(UNREACHABLE) == 1 and log.count("redis is reachable again") == 1, bot.log()
        assert not bot.refused_requests()
    finally:
        await bot.stop()
        redis.stop()
