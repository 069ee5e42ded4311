"""Unit tests that need Telegram get a bare emulator on a free port."""

from collections.abc import AsyncIterator

import pytest

from bot.sandbox.control import controlled_emulator
from bot.sandbox.emulator import Emulator
from tests.conftest import TOKEN


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    emulator = controlled_emulator(TOKEN)
    runner = await emulator.serve()
    yield emulator
    await runner.cleanup()
