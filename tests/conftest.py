"""Fixtures shared by every test: databases (SQLite always, PostgreSQL when TEST_DATABASE_URL
is set), Redis when TEST_REDIS_URL is set, and the configuration the bot runs with."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.sandbox.emulator import Emulator
from bot.store.db import Database
from bot.store.migrate import upgrade
from tests.support.driver import Person, Telegram

TOKEN = "123456:TEST-token-for-the-emulator-only"
ADMIN_CHAT_ID = -1001000000001
COMMS_CHAT_ID = -1001000000002
SECRET_KEY = "test-secret-key-0123456789abcdef"

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")


def _redis_url_of_this_worker(url: str | None) -> str | None:
    """Each xdist worker in a Redis database of its own (15, 14, … for gw0, gw1, …): bot processes
    of parallel tests share the bot's and the users' ids, so in one database their conversation
    keys and locks would collide."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    if not url or not worker.isdigit():
        return url
    base, _, db = url.rpartition("/")
    return f"{base}/{int(db or 0) - int(worker)}" if db.isdigit() and int(db) >= int(worker) else url


TEST_REDIS_URL = _redis_url_of_this_worker(os.environ.get("TEST_REDIS_URL"))

DATABASES = ["sqlite", *(["postgresql"] if TEST_DATABASE_URL else [])]


def _admin_dsn() -> str:
    assert TEST_DATABASE_URL
    return TEST_DATABASE_URL.replace("postgresql+asyncpg://", "postgresql://")


# Migrating a database costs a test about 0.3 s of CPU: each test process migrates one database
# of each kind once, and every test gets a copy of it (a file copy; CREATE DATABASE … TEMPLATE).
_TEMPLATES = Path(tempfile.mkdtemp(prefix="petent-test-templates-"))
_PG_TEMPLATE = f"petent_template_{os.getpid()}_{secrets.token_hex(3)}"
_pg_template_made = False


async def _migrated(url: str) -> None:
    database = Database(url)
    try:
        await upgrade(database)
    finally:
        await database.dispose()


async def _sqlite_database(directory: Path) -> str:
    template = _TEMPLATES / "petent.db"
    if not template.exists():
        await _migrated(f"sqlite+aiosqlite:///{_TEMPLATES}/making.db")
        (_TEMPLATES / "making.db").rename(template)  # whole or absent, should a test stop midway
    shutil.copyfile(template, directory / "petent.db")
    return f"sqlite+aiosqlite:///{directory}/petent.db"


def _pg_url(name: str) -> str:
    base, _, _ = _admin_dsn().rpartition("/")
    return f"{base}/{name}".replace("postgresql://", "postgresql+asyncpg://", 1)


async def _create_pg_database(migrated: bool = True) -> str:
    import asyncpg  # type: ignore[import-untyped]  # ships neither stubs nor py.typed

    global _pg_template_made
    name = f"petent_test_{secrets.token_hex(6)}"
    connection = await asyncpg.connect(_admin_dsn())
    try:
        if not migrated:
            await connection.execute(f'CREATE DATABASE "{name}"')
            return _pg_url(name)
        if not _pg_template_made:
            await connection.execute(f'CREATE DATABASE "{_PG_TEMPLATE}"')
            await _migrated(_pg_url(_PG_TEMPLATE))
            _pg_template_made = True
        await connection.execute(f'CREATE DATABASE "{name}" TEMPLATE "{_PG_TEMPLATE}"')
    finally:
        await connection.close()
    return _pg_url(name)


async def _drop_pg_database(url: str) -> None:
    import asyncpg

    name = url.rpartition("/")[2]
    connection = await asyncpg.connect(_admin_dsn())
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def pytest_sessionfinish() -> None:
    shutil.rmtree(_TEMPLATES, ignore_errors=True)
    if _pg_template_made:
        asyncio.run(_drop_pg_database(_pg_url(_PG_TEMPLATE)))


@pytest.fixture(params=DATABASES)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh database of each kind, migrated to the newest schema (empty where the test is
    marked `unmigrated`) and holding no rows; PostgreSQL ones are dropped afterwards."""
    migrated = request.node.get_closest_marker("unmigrated") is None
    if request.param == "sqlite":
        yield await _sqlite_database(tmp_path) if migrated else f"sqlite+aiosqlite:///{tmp_path}/petent.db"
        return
    url = await _create_pg_database(migrated)
    try:
        yield url
    finally:
        await _drop_pg_database(url)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    await upgrade(db)
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
async def clerks(telegram: Telegram, emulator: Emulator) -> Person:
    """(End to end and in process.) Ona, a clerk: a member of the clerks' group, acting and reading there."""
    ona = await telegram.person("Ona", language_code="lt")
    emulator.chats[ADMIN_CHAT_ID].members.add(ona.user["id"])
    return ona.in_chat(ADMIN_CHAT_ID)


@pytest.fixture
def settings_env(database_url: str) -> dict[str, str]:
    """The environment a bot process needs, minus TELEGRAM_API_URL."""
    return {
        "BOT_TOKEN": TOKEN,
        "ADMIN_CHAT_ID": str(ADMIN_CHAT_ID),
        "COMMS_CHAT_ID": str(COMMS_CHAT_ID),
        "DATABASE_URL": database_url,
        "SECRET_KEY": SECRET_KEY,
        "GATHER_SECONDS": "1",  # what a resident adds reaches the clerks a second later, not twenty
    }


# The in-process files where the engine matters run on both: SQL that differs between them (news
# audiences in JSON), a backup and its restore, the schema check, a press delivered twice, what is
# erased, exported or counted. The other flow tests run on SQLite only: what a person sees does not
# depend on the engine there, and tests/unit runs the store's queries on both.
BOTH_ENGINES_IN_PROCESS = {
    "test_news.py",
    "test_news_edges.py",
    "test_area_notices.py",
    "test_me_too.py",
    "test_backup.py",
    "test_check.py",
    "test_delivery.py",
    "test_data_rights.py",
    "test_erasure.py",
    "test_quality_loop.py",
    "test_projects.py",
    "test_file_quota.py",
}


def _flow_test_on_postgresql(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    return (
        callspec is not None
        and callspec.params.get("database_url") == "postgresql"
        and item.path.parent.name == "inprocess"
        and item.path.name not in BOTH_ENGINES_IN_PROCESS
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Flow tests where the engine does not matter are left on SQLite (above). Tests that mostly
    wait (marked slow) start at once, each on its own xdist worker, so that the others overlap
    them: `make test` hands out tests two at a time (--maxschedchunk=2), so a slow test goes first
    in every pair until there are none left."""
    deselected = [item for item in items if _flow_test_on_postgresql(item)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not _flow_test_on_postgresql(item)]
    slow = [item for item in items if item.get_closest_marker("slow")]
    rest = [item for item in items if not item.get_closest_marker("slow")]
    pairs = min(len(slow), len(rest))
    paired = [test for pair in zip(slow[:pairs], rest[:pairs], strict=True) for test in pair]
    items[:] = paired + slow[pairs:] + rest[pairs:]  # nothing dropped when slow tests outnumber the rest
