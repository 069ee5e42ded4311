"""`petent check` and the ops listener's `/healthz?full`: one line per problem an operator must fix
(the schema behind the code, a group the bot cannot reach, a forum where it may not make topics,
Redis configured but silent, the files' disk nearly full), "ok" when there is none."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from alembic.script import ScriptDirectory

from bot.__main__ import main
from bot.app import App
from bot.sandbox.emulator import Emulator
from bot.services.files import DiskGuard
from bot.services.selfcheck import problems
from bot.services.storage import LocalFileStore
from bot.services.teams import TeamDirectory
from bot.store.db import Database
from bot.store.migrate import alembic_config, downgrade, upgrade
from bot.telegram import create_bot
from bot.web import build_ops_app
from tests.conftest import ADMIN_CHAT_ID, COMMS_CHAT_ID, SECRET_KEY, TOKEN
from tests.factories import test_config as config_for

UNKNOWN_GROUP = -1009999999999  # a group the bot was never added to (or was removed from)


async def _problems(database: Database, emulator: Emulator, **settings: object) -> list[str]:
    config = config_for(database, emulator.url, **settings)
    bot = create_bot(TOKEN, emulator.url)
    try:
        teams = TeamDirectory(config.municipality, bot, config.settings.comms_chat_id)
        return await problems(database, bot, teams, redis=None, redis_url=None, disk=None)
    finally:
        await bot.session.close()


async def test_all_in_order_is_no_problem(database: Database, emulator: Emulator) -> None:
    assert await _problems(database, emulator) == []


async def test_a_team_group_the_bot_cannot_reach_is_named(database: Database, emulator: Emulator) -> None:
    found = await _problems(database, emulator, admin_chat_id=UNKNOWN_GROUP)
    assert found == [
        f"telegram: the group of team desk ({UNKNOWN_GROUP}) is unreachable: Bad Request: chat not found"
    ]


async def test_a_forum_where_the_bot_may_not_manage_topics_is_named(
    database: Database, emulator: Emulator
) -> None:
    emulator.chats[ADMIN_CHAT_ID].bot_rights["can_manage_topics"] = False
    found = await _problems(database, emulator)
    assert found == [
        f"telegram: the group of team desk ({ADMIN_CHAT_ID}) is a forum, but the bot is not an administrator allowed to manage topics:"
        " cases' topics cannot be made"
    ]
    emulator.chats[ADMIN_CHAT_ID].bot_rights.update(
        {"can_manage_topics": True, "admin": False}
    )  # a member only: the same
    assert len(await _problems(database, emulator)) == 1


async def test_the_bot_without_rights_in_a_group_without_topics_is_no_problem(
    database: Database, emulator: Emulator
) -> None:
    emulator.chats[COMMS_CHAT_ID].bot_rights["admin"] = False
    assert await _problems(database, emulator) == []


async def test_a_schema_one_migration_behind_is_named(database: Database, emulator: Emulator) -> None:
    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_revision("head")
    assert head is not None and isinstance(head.down_revision, str)
    await downgrade(database, head.down_revision)  # as if the code were upgraded and the database not yet
    found = await _problems(database, emulator)
    assert found == [
        f"schema: the database is at revision {head.down_revision}, behind the code's {head.revision} (run `petent migrate`)"
    ]
    await upgrade(database)
    assert await _problems(database, emulator) == []


async def test_redis_configured_but_silent_is_named(database: Database, emulator: Emulator) -> None:
    from redis.asyncio import Redis

    config = config_for(database, emulator.url)
    bot = create_bot(TOKEN, emulator.url)
    redis = Redis.from_url("redis://127.0.0.1:9/0")  # nobody listens there
    try:
        teams = TeamDirectory(config.municipality, bot, config.settings.comms_chat_id)
        found = await problems(
            database, bot, teams, redis=redis, redis_url="redis://127.0.0.1:9/0", disk=None
        )
    finally:
        await redis.aclose()
        await bot.session.close()
    assert len(found) == 1 and found[0].startswith(
        "redis: REDIS_URL is set (the replicas' shared store) but Redis does not answer: "
    )


async def test_a_nearly_full_disk_is_named(database: Database, emulator: Emulator, tmp_path: Path) -> None:
    alerted: list[int] = []

    async def alert(free: int, minimum: int) -> None:
        alerted.append(free)

    disk = DiskGuard(LocalFileStore(tmp_path), 10**18, alert)  # an exabyte free is asked: never there
    config = config_for(database, emulator.url)
    bot = create_bot(TOKEN, emulator.url)
    try:
        found = await problems(
            database,
            bot,
            TeamDirectory(config.municipality, bot, COMMS_CHAT_ID),
            redis=None,
            redis_url=None,
            disk=disk,
        )
    finally:
        await bot.session.close()
    assert (
        len(found) == 1
        and found[0].startswith("files: low: ")
        and "FILES_MIN_FREE_BYTES is 1000000000000000000" in found[0]
    )


@pytest.fixture
async def ops(bot: App) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    async with TestClient(TestServer(build_ops_app(bot))) as client:
        yield client


async def test_healthz_full_says_ok_then_names_the_problem(ops: TestClient, emulator: Emulator) -> None:  # type: ignore[type-arg]
    response = await ops.get("/healthz?full")
    assert (response.status, await response.text()) == (200, "ok\n")
    emulator.chats[ADMIN_CHAT_ID].bot_rights["can_manage_topics"] = False
    response = await ops.get("/healthz?full")
    assert response.status == 503
    assert (await response.text()).splitlines() == [
        f"telegram: the group of team desk ({ADMIN_CHAT_ID}) is a forum, but the bot is not an administrator allowed to manage topics:"
        " cases' topics cannot be made"
    ]


async def test_petent_check_prints_each_problem_and_exits_non_zero(
    database: Database,
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in {
        "BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": emulator.url,
        "ADMIN_CHAT_ID": ADMIN_CHAT_ID,
        "COMMS_CHAT_ID": COMMS_CHAT_ID,
        "SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": database.url.render_as_string(hide_password=False),
        "FILES_DIR": str(tmp_path / "files"),
    }.items():
        monkeypatch.setenv(name, str(value))
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env from the checkout
    assert await asyncio.to_thread(main, ["check"]) == 0  # its own event loop, beside the emulator's
    assert capsys.readouterr().out == "ok\n"
    monkeypatch.setenv("ADMIN_CHAT_ID", str(UNKNOWN_GROUP))
    assert await asyncio.to_thread(main, ["check"]) == 1
    assert (
        capsys.readouterr().out
        == f"telegram: the group of team desk ({UNKNOWN_GROUP}) is unreachable: Bad Request: chat not found\n"
    )


async def test_a_schema_newer_than_the_code_is_named(database: Database, emulator: Emulator) -> None:
    from sqlalchemy import text

    async with database.write() as session:
        await session.execute(
            text("UPDATE alembic_version SET version_num = '9999'")
        )  # a newer Petent migrated it
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert await _problems(database, emulator) == [
        f"schema: the database is at revision 9999, which this code (head {head}) does not know: an older version of Petent runs on a newer schema"
    ]
