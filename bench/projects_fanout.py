"""How fast a project's followers are told of a change, against Telegram's ceiling.

    .venv/bin/python bench/projects_fanout.py [--followers 10000] [--database-url URL]

The emulator runs in a process of its own, enforcing Telegram's limits (30 messages a second
overall). Here: a project with one milestone and its followers (half follow the project, half
every project of its eldership, in Polish and Lithuanian), then the path a clerk's change takes
(ProjectService.move_due: the milestone, its event and one delivery per follower written
together), then the bot's delivery engine sending them at the limiter's pace. Printed, never
asserted: the time to write the fan-out, messages per second against the 30/s ceiling (the
share), lost and duplicated messages, 429 answers.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.broadcast import TOKEN, delivered, residents, start_emulator
from bot.app import build_services
from bot.config import load_config
from bot.services.broadcaster import Broadcaster
from bot.services.projects import Actor
from bot.store.db import Database, table_of
from bot.store.migrate import upgrade
from bot.store.models import (
    Broadcast,
    DeliveryStatus,
    Follow,
    FollowKind,
    Milestone,
    Project,
    Resident,
    utcnow,
)

ADMIN_CHAT_ID, COMMS_CHAT_ID = -1001000000001, -1001000000002


async def _register(database: Database, people: list[tuple[int, str]]) -> int:
    """One project of Riešė with a milestone; its followers. Returns the milestone's id."""
    async with database.write() as session:
        project = Project(
            external_id="BENCH-1",
            name_pl="Droga do Rzeszy",
            name_lt="Kelias į Riešę",
            elderships=["riese"],
            team_id="desk",
            status="under_way",
        )
        session.add(project)
        await session.flush()
        milestone = Milestone(
            project_id=project.id,
            number=1,
            title_pl="Odbiór",
            title_lt="Priėmimas",
            baseline_due=date(2027, 6, 30),
            current_due=date(2027, 6, 30),
        )
        session.add(milestone)
        now = utcnow()
        residents = [
            {
                "id": chat,
                "locale": locale,
                "display_name": "F",
                "consent_at": now,
                "news_topics": [],
                "exports_that_day": 0,
            }
            for chat, locale in people
        ]
        follows = [
            {
                "resident_id": chat,
                "kind": FollowKind.PROJECT if i % 2 else FollowKind.ELDERSHIP_PROJECTS,
                "target": str(project.id) if i % 2 else "riese",
                "created_at": now,
            }
            for i, (chat, _locale) in enumerate(people)
        ]
        for start in range(0, len(people), 1000):
            await session.execute(table_of(Resident).insert(), residents[start : start + 1000])
            await session.execute(table_of(Follow).insert(), follows[start : start + 1000])
        await session.flush()
        return milestone.id


async def run(followers: int, database_url: str | None, workdir: Path) -> dict:
    server, url, control = start_emulator(True, followers)
    async with httpx.AsyncClient(base_url=url, timeout=300, headers=control) as http:
        people = await residents(http)
        database = Database(database_url or f"sqlite+aiosqlite:///{workdir}/projects-fanout.db")
        await upgrade(database)
        config = load_config(
            bot_token=TOKEN,
            telegram_api_url=url,
            admin_chat_id=ADMIN_CHAT_ID,
            comms_chat_id=COMMS_CHAT_ID,
            secret_key="bench-secret-key-0123456789abcdef",
            database_url=database.url.render_as_string(hide_password=False),
            redis_url=None,
            send_rate_per_second=30,
        )
        services = build_services(config, database)
        milestone_id = await _register(database, people)
        started: list[Broadcast] = []
        services.projects.on_fanout = started.append
        writing = time.perf_counter()
        with services.i18n.context(), services.i18n.use_locale("lt"):
            await services.projects.move_due(
                milestone_id, date(2027, 9, 30), "Rangovo terminas pratęstas", Actor(1, "Bench")
            )
        written = time.perf_counter() - writing
        sender = Broadcaster(database, services.bot, batch=30)
        sending = time.perf_counter()
        counts = await sender.run(started[0].id)
        elapsed = time.perf_counter() - sending
        await services.bot.session.close()
        await database.dispose()
        received, refused = await delivered(http)
    server.terminate()
    return {
        "written": written,
        "elapsed": elapsed,
        "sent": counts[DeliveryStatus.SENT],
        "failed": counts[DeliveryStatus.FAILED],
        "duplicates": sum(n - 1 for n in received.values() if n > 1),
        "lost": len({p for p, _ in people} - set(received)),
        "429": refused,
    }


async def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, default=10_000)
    parser.add_argument("--database-url", help="default: a temporary SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="petent-bench-") as tmp:
        result = await run(args.followers, args.database_url, Path(tmp))
    rate = result["sent"] / result["elapsed"]
    print(f"\nA milestone moved, {args.followers} followers, Python {sys.version.split()[0]}")
    print(f"the change and its fan-out written in {result['written']:.2f} s (one transaction)")
    print(
        f"with Telegram's limits: {result['sent']} sent in {result['elapsed']:.1f} s = {rate:.1f}/s against the 30/s ceiling "
        f"({rate / 30:.0%}); lost {result['lost']}, duplicated {result['duplicates']}, failed {result['failed']}, 429 answers {result['429']}"
    )


if __name__ == "__main__":
    asyncio.run(main())
