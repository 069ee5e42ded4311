"""How fast an area notice ("📣 Notify the area") reaches an eldership, against Telegram's ceiling.

    .venv/bin/python bench/area_notices.py [--subscribers 10000] [--database-url URL]

The emulator runs in a process of its own, enforcing Telegram's limits (30 messages a second
overall). Here: a water report in Avižieniai, its resident and followers (one in ten of the
subscribers also follows the case, so the two audiences overlap), every emulator resident a
subscriber of the eldership's news; then what the clerk's buttons do: the counts of the
audience question (AreaNotices.counts), the notice and one delivery per resident written
together (AreaNotices.send, both audiences), and the bot's delivery engine sending them at the
limiter's pace. Printed, never asserted: the time to count and to write, messages per second
against the 30/s ceiling, lost and duplicated messages, 429 answers.
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
from bot.services.area_notices import AreaNotices, Reach
from bot.services.broadcaster import Broadcaster
from bot.services.case_commands import Clerk
from bot.store.db import Database, table_of
from bot.store.migrate import upgrade
from bot.store.models import Case, DeliveryStatus, Follow, FollowKind, Resident, utcnow

ADMIN_CHAT_ID, COMMS_CHAT_ID = -1001000000001, -1001000000002
ELDERSHIP = "avizieniai"


async def _register(database: Database, people: list[tuple[int, str]]) -> int:
    """The report (its resident the first person), its followers and the eldership's subscribers. Returns the case's id."""
    now = utcnow()
    async with database.write() as session:
        rows = [
            {
                "id": chat,
                "locale": locale,
                "display_name": "S",
                "consent_at": now,
                "news_topics": ["eldership"],
                "eldership_id": ELDERSHIP,
                "exports_that_day": 0,
            }
            for chat, locale in people
        ]
        for start in range(0, len(rows), 1000):
            await session.execute(table_of(Resident).insert(), rows[start : start + 1000])
        case = Case(
            number="VRS-2026-000001",
            year=2026,
            seq=1,
            resident_id=people[0][0],
            locale="pl",
            kind="report",
            category_id="utilities",
            eldership_id=ELDERSHIP,
            description="Brak wody",
            received_at=now,
            deadline=date(2026, 12, 31),
        )
        session.add(case)
        await session.flush()
        follows = [
            {"resident_id": chat, "kind": FollowKind.CASE, "target": str(case.id), "created_at": now}
            for chat, _locale in people[1::10]
        ]
        for start in range(0, len(follows), 1000):
            await session.execute(table_of(Follow).insert(), follows[start : start + 1000])
        return case.id


async def run(subscribers: int, database_url: str | None, workdir: Path) -> dict:
    server, url, control = start_emulator(True, subscribers)
    async with httpx.AsyncClient(base_url=url, timeout=300, headers=control) as http:
        people = await residents(http)
        database = Database(database_url or f"sqlite+aiosqlite:///{workdir}/area-notices.db")
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
        notices = AreaNotices(database, config, services.i18n, services.notices)
        case_id = await _register(database, people)
        async with database.read() as session:
            case = await session.get_one(Case, case_id)
        with services.i18n.context(), services.i18n.use_locale("lt"):
            counting = time.perf_counter()
            counts = await notices.counts(case)
            counted = time.perf_counter() - counting
            writing = time.perf_counter()
            broadcast, recipients = await notices.send(
                case_id, Clerk(1, "Bench"), {"pl": "Jutro brak wody", "lt": "Rytoj nebus vandens"}, Reach.BOTH
            )
            written = time.perf_counter() - writing
        sender = Broadcaster(database, services.bot, batch=30)
        sending = time.perf_counter()
        sent = await sender.run(broadcast.id)
        elapsed = time.perf_counter() - sending
        await services.bot.session.close()
        await database.dispose()
        received, refused = await delivered(http)
    server.terminate()
    return {
        "counts": counts,
        "counted": counted,
        "written": written,
        "recipients": recipients,
        "elapsed": elapsed,
        "sent": sent[DeliveryStatus.SENT],
        "failed": sent[DeliveryStatus.FAILED],
        "duplicates": sum(n - 1 for n in received.values() if n > 1),
        "lost": len({p for p, _ in people} - set(received)),
        "429": refused,
    }


async def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--database-url", help="default: a temporary SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="petent-bench-") as tmp:
        result = await run(args.subscribers, args.database_url, Path(tmp))
    counts, rate = result["counts"], result["sent"] / result["elapsed"]
    print(
        f"\nAn area notice to {args.subscribers} subscribers and {counts.affected} affected residents, Python {sys.version.split()[0]}"
    )
    print(
        f"the audience counted in {result['counted']:.2f} s (affected {counts.affected}, subscribers {counts.subscribers}, both {counts.both})"
    )
    print(
        f"the notice and {result['recipients']} deliveries written in {result['written']:.2f} s (one transaction)"
    )
    print(
        f"with Telegram's limits: {result['sent']} sent in {result['elapsed']:.1f} s = {rate:.1f}/s against the 30/s ceiling "
        f"({rate / 30:.0%}); lost {result['lost']}, duplicated {result['duplicates']}, failed {result['failed']}, 429 answers {result['429']}"
    )


if __name__ == "__main__":
    asyncio.run(main())
