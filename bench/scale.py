"""Petent at a decade's size: how long every path a person waits for takes, and every job.

    .venv/bin/python bench/seed.py --database-url postgresql://postgres@127.0.0.1:5432/petent_decade
    .venv/bin/python bench/seed.py --database-url postgresql://postgres@127.0.0.1:5432/petent_small --cases 10000 --residents 2000 --subscribers 1000 --answers 500
    .venv/bin/python bench/scale.py postgresql://postgres@127.0.0.1:5432/petent_small postgresql://postgres@127.0.0.1:5432/petent_decade

Each store given (seeded by bench/seed.py) gets a column: p50 and p95 in milliseconds of each
interactive path over --runs calls, through the services the handlers call (the same queries a
press or a command makes, without Telegram's round trip), then the duration of each job once.
Goals (printed beside, never asserted): interactive p95 under 20 ms; jobs under 10 s, the year's
report under 15 s, the retention of a year under a minute. The retention purge runs last and only
with --purge (it purges the backlog, then a year more: seed again to measure again).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from seed import FIRST_RESIDENT  # noqa: E402  (bench/ is on sys.path when run as a script)
from sqlalchemy import func, select, text

from bot.app import build_services
from bot.config import load_config
from bot.open311 import Filters
from bot.services.case_queries import CaseQueries
from bot.services.metoo import MeToo
from bot.services.news import Audience, NewsService
from bot.services.quality import Period
from bot.store.db import Database
from bot.store.models import Case

INTERACTIVE_GOAL_MS, JOB_GOAL_S, REPORT_GOAL_S, RETENTION_GOAL_S = 20, 10, 15, 60
TODAY = datetime(2026, 12, 1, 9, tzinfo=UTC)


async def _timed(call: Callable[[], Awaitable[Any]], runs: int) -> tuple[float, float]:
    took = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        took.append((time.perf_counter() - started) * 1000)
    took.sort()
    return statistics.median(took), took[max(0, int(len(took) * 0.95) - 1)]


async def measure(
    url: str, runs: int, purge: bool
) -> tuple[int, dict[str, tuple[float, float]], dict[str, float]]:
    database = Database(url.replace("postgresql://", "postgresql+asyncpg://", 1))
    config = load_config(
        bot_token="123456:BENCH-token-for-no-telegram-at-all",
        telegram_api_url="http://127.0.0.1:9",
        admin_chat_id=-1001000000001,
        comms_chat_id=-1001000000002,
        secret_key="bench-secret-key-0123456789abcdef",
        database_url=database.url.render_as_string(hide_password=False),
        redis_url=None,
    )
    services = build_services(config, database)
    cases = services.queries
    news = NewsService(database, config.settings.default_locale)
    metoo = MeToo(database, config, services.notices)
    categories = [category.id for category in config.municipality.categories]
    rng = random.Random(7)
    async with database.read() as session:
        total = (await session.execute(select(func.count()).select_from(Case))).scalar_one()
        last = (await session.execute(select(func.max(Case.id)))).scalar_one()
        numbers = list(
            (
                await session.execute(
                    text("SELECT number, id, resident_id FROM cases WHERE id % 997 = 0 LIMIT 200")
                )
            ).all()
        )
        published = list(
            (
                await session.execute(
                    text(
                        "SELECT number FROM cases WHERE (channel = 'open311' OR (kind = 'report' AND public)) AND id % 11 = 0 LIMIT 200"
                    )
                )
            ).scalars()
        )  # Open311 shows these
    team = services.teams.teams[0]
    paths: dict[str, Callable[[], Awaitable[Any]]] = {
        "resident: My cases (first page)": lambda: cases.page_for_resident(rng.choice(numbers)[2], 0, 5),
        "resident: one case and its history": lambda: _case_and_history(cases, rng.choice(numbers)),
        "resident/clerk: a case by its number": lambda: services.queries.by_number(rng.choice(numbers)[0]),
        "clerk: /open, /overdue, /team (a team's open cases)": lambda: services.queries.open_cases(team),
        "clerk: /mine": lambda: services.queries.open_cases(team, 500 + rng.randrange(40)),
        "clerk: /history": lambda: services.queries.history(rng.randrange(1, last)),
        "clerk: a card's button (the case, its resident)": lambda: _press(services, rng.randrange(1, last)),
        "Open311: the listing (90 days, open)": lambda: services.open311.requests(
            Filters(statuses=frozenset({"open"})), "lt"
        ),
        "Open311: one request": lambda: services.open311.request(rng.choice(published), "lt"),
        "resident: 'me too' (open reports nearby)": lambda: metoo.nearby(
            FIRST_RESIDENT + 1,
            rng.choice(categories),
            latitude=54.55 + rng.random() * 0.4,
            longitude=24.95 + rng.random() * 0.7,
        ),
        "comms: a broadcast's audience, counted (a topic)": lambda: news.count(Audience(topic="roads")),
        "comms: a broadcast's recipients (a topic)": lambda: news.recipients(Audience(topic="roads")),
        "comms: recipients (a topic, a language, an eldership)": lambda: news.recipients(
            Audience(topic="roads", locale="pl", eldership="rudamina")
        ),
        "resident: /mydata with 200 cases": lambda: _export(services, database),
    }
    interactive = {
        name: await _timed(
            call, runs if "mydata" not in name and "recipients" not in name else max(3, runs // 10)
        )
        for name, call in paths.items()
    }
    with services.i18n.context(), services.i18n.use_locale("lt"):  # the reports' headings
        jobs = await _jobs(services, purge)
    services.outbox.close()
    await services.bot.session.close()
    await database.dispose()
    return total, interactive, jobs


async def _jobs(services: Any, purge: bool) -> dict[str, float]:
    jobs: dict[str, float] = {}
    for name, job in {
        "daily digest": lambda: services.schedule.digest(TODAY.date()),
        "/report for a year": lambda: services.quality.report(
            Period(date(2025, 12, 1), date(2026, 11, 30)), "lt"
        ),
        # The first run purges the decade's backlog; the next, a year later, one year of each kind.
        **({"retention: the backlog": lambda: services.rights.purge_expired(TODAY)} if purge else {}),
        **(
            {"retention: a year": lambda: services.rights.purge_expired(TODAY.replace(year=TODAY.year + 1))}
            if purge
            else {}
        ),
    }.items():
        started = time.perf_counter()
        result = await job()
        jobs[name] = time.perf_counter() - started
        if "retention" in name:
            print(f"{name}: {result.cases:,} cases in {jobs[name]:.1f} s", file=sys.stderr)
    return jobs


async def _case_and_history(cases: CaseQueries, row: Any) -> None:
    await cases.own_case(row[2], case_id=row[1])
    await cases.history(row[1])


async def _export(services: Any, database: Database) -> None:
    async with database.write() as session:  # the bench asks more often than the daily limit lets a resident
        await session.execute(
            text("UPDATE residents SET exports_on = NULL, exports_that_day = 0 WHERE id = :id"),
            {"id": FIRST_RESIDENT},
        )
    await services.rights.export(FIRST_RESIDENT, TODAY)


async def _press(services: Any, case_id: int) -> None:
    case = await services.queries.get(case_id)
    if case is not None:
        await services.queries.resident(case)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("urls", nargs="+", help="PostgreSQL stores seeded by bench/seed.py (a column each)")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument(
        "--purge",
        action="store_true",
        help="also time the retention purge (it deletes what is past retention)",
    )
    args = parser.parse_args()
    results = [await measure(url, args.runs, args.purge) for url in args.urls]
    header = "".join(f"{total:>14,} cases" for total, _, _ in results)
    print(f"{'path (p50 / p95 ms)':52}{header}   goal p95")
    for name in results[0][1]:
        cells = "".join(f"{r[1][name][0]:>9.1f} /{r[1][name][1]:>7.1f}" for r in results)
        print(f"{name:52}{cells}   < {INTERACTIVE_GOAL_MS} ms")
    print(f"{'job (s)':52}")
    for name in results[0][2]:
        cells = "".join(f"{r[2][name]:>20.2f}" for r in results)
        goal = (
            REPORT_GOAL_S
            if "report" in name
            else RETENTION_GOAL_S
            if "retention: a year" in name
            else JOB_GOAL_S
        )
        print(f"{name:52}{cells}   < {goal} s")


if __name__ == "__main__":
    asyncio.run(main())
