"""At a stop the scheduled work ends between two jobs, never amid one: a task cancelled inside a
SQLite write can leave its transaction open, and the writes of the shutdown then wait it out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from bot.app import build_services
from bot.config import load_config
from bot.services.schedule import Schedule
from bot.store.db import Database
from tests.conftest import ADMIN_CHAT_ID, COMMS_CHAT_ID, SECRET_KEY, TOKEN

# Monday 23 November 2026, a working day, a moment before the digest's 08:00 in Vilnius (UTC+2).
JUST_BEFORE_THE_DIGEST = datetime(2026, 11, 23, 5, 59, 59, 900_000, tzinfo=UTC)


@pytest.fixture
async def schedule(database: Database) -> AsyncIterator[Schedule]:
    config = load_config(
        bot_token=TOKEN,
        telegram_api_url="http://127.0.0.1:9",
        admin_chat_id=ADMIN_CHAT_ID,
        comms_chat_id=COMMS_CHAT_ID,
        secret_key=SECRET_KEY,
        database_url=database.url.render_as_string(hide_password=False),
        redis_url=None,
    )
    services = build_services(config, database)
    yield services.schedule
    await services.bot.session.close()


async def test_a_stop_while_waiting_for_the_day_ends_the_run_at_once(schedule: Schedule) -> None:
    running = asyncio.create_task(schedule.run())
    await asyncio.sleep(0.05)
    schedule.stop()
    async with asyncio.timeout(1):
        await running
    assert not running.cancelled()


async def test_a_job_under_way_finishes_and_the_next_does_not_start(
    schedule: Schedule, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bot.services.schedule.utcnow", lambda: JUST_BEFORE_THE_DIGEST)
    done: list[str] = []
    digest_started = asyncio.Event()

    async def slow_digest(today: object, teams: object = None) -> None:
        digest_started.set()
        await asyncio.sleep(0.3)  # the stop comes in here
        done.append("digest")

    async def job(name: str) -> None:
        done.append(name)

    monkeypatch.setattr(schedule, "digest", slow_digest)
    monkeypatch.setattr(schedule, "post_report", lambda *args, **kwargs: job("weekly report"))
    monkeypatch.setattr(schedule.rights, "purge_expired", lambda now: job("retention"))

    running = asyncio.create_task(schedule.run())
    async with asyncio.timeout(2):
        await digest_started.wait()
    schedule.stop()
    async with asyncio.timeout(2):
        await running
    assert not running.cancelled()
    assert done == ["digest"], (
        "the digest under way finished; the report and the retention run wait for the next start"
    )
