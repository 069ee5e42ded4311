"""How long the daily run of the cases' rules takes (Nonconformities.from_cases, see docs/quality-loop.md).

    PYTHONPATH=. .venv/bin/python bench/nc_rules.py [--cases 5000] [--database-url URL]

Cases closed over ten days around a frozen 10 December 2026 (a third of them after their
deadline) in a fresh database; the run is timed twice (the second adds nothing). Printed, never
asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select

os.environ.setdefault("PETENT_FROZEN_TIME", "2026-12-10T09:00:00+02:00")

from bot.store.db import Database
from bot.store.migrate import upgrade
from bot.store.models import Case, CaseStatus, Nonconformity, Resident
from tests.factories import services


async def main(cases: int, url: str) -> None:
    database = Database(url)
    await upgrade(database)
    async with database.write() as session:
        session.add(Resident(id=1, locale="lt", display_name="x"))
        await session.flush()
        for n in range(1, cases + 1):
            closed = datetime(2026, 11, 30, 10, tzinfo=UTC) + timedelta(hours=n % 240)
            due = closed.date() - timedelta(days=1) if n % 3 == 0 else closed.date() + timedelta(days=3)
            session.add(
                Case(
                    number=f"VRS-2026-{n:06d}",
                    year=2026,
                    seq=n,
                    resident_id=1,
                    locale="lt",
                    kind="request",
                    category_id="roads",
                    description="x",
                    status=CaseStatus.ANSWERED,
                    received_at=closed - timedelta(days=20),
                    deadline=due,
                    closed_at=closed,
                    team_id="desk",
                )
            )
    built = services(database)
    try:
        for run in (1, 2):
            started = time.perf_counter()
            await built.nonconformities.from_cases(date(2026, 12, 10))
            print(f"run {run}: {time.perf_counter() - started:.2f} s for {cases} cases closed in the window")
        async with database.read() as session:
            print(
                "nonconformities:",
                (await session.execute(select(func.count()).select_from(Nonconformity))).scalar_one(),
            )
    finally:
        await built.bot.session.close()
        await database.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--database-url", default=f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/bench.db")
    args = parser.parse_args()
    asyncio.run(main(args.cases, args.database_url))
