"""Services as the bot builds them, for tests that call them directly."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.app import Services, build_services
from bot.config import Config, load_config
from bot.store.db import Database
from tests.conftest import ADMIN_CHAT_ID, COMMS_CHAT_ID, SECRET_KEY, TOKEN

VILNIUS = ZoneInfo("Europe/Vilnius")
FILES_DIR = Path(tempfile.gettempdir()) / f"petent-test-files-{os.getpid()}"  # not the work tree's data/files


def test_config(database: Database, api_url: str = "http://127.0.0.1:9", **settings: object) -> Config:
    overrides: dict[str, Any] = {
        "bot_token": TOKEN,
        "telegram_api_url": api_url,
        "admin_chat_id": ADMIN_CHAT_ID,
        "comms_chat_id": COMMS_CHAT_ID,
        "secret_key": SECRET_KEY,
        "database_url": database.url.render_as_string(hide_password=False),
        "redis_url": None,
        "files_dir": FILES_DIR,
        **settings,
    }
    return load_config(**overrides)


def services(database: Database, api_url: str = "http://127.0.0.1:9", **settings: object) -> Services:
    """The case commands, queries and notices, the outbox and the rest, wired as in the bot (the bot's HTTP client points at `api_url`)."""
    return build_services(test_config(database, api_url, **settings), database)
