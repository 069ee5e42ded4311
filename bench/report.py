"""How long the quality report takes for a year of a busy municipality.

    .venv/bin/python bench/report.py [--cases 20000] [--answers 5000] [--database-url URL]

Fills a fresh database with a year of cases (received, closed or open, some extended) and
satisfaction answers, then times, for the whole year: the baseline (reading the same rows and
nothing else, the floor any report pays), the indicators, the chart (PNG) and the XLSX. Printed,
never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import select

from bot.app import load_i18n
from bot.municipality import load_municipality
from bot.services.deadlines import WorkingCalendar
from bot.services.quality import Period, QualityService
from bot.services.report_output import png, report_chart, report_csv, report_xlsx
from bot.settings import DEFAULT_MUNICIPALITY_FILE
from bot.store.db import Database
from bot.store.migrate import upgrade
from bot.store.models import Case, CaseStatus, Resident, SatisfactionAnswer

YEAR = Period(date(2026, 1, 1), date(2026, 12, 31))


async def fill(database: Database, cases: int, answers: int, calendar: WorkingCalendar) -> None:
    municipality = load_municipality(DEFAULT_MUNICIPALITY_FILE)
    elderships = [e.id for e in municipality.elderships]
    categories = [c.id for c in municipality.categories]
    rng = random.Random(7)
    async with database.write() as session:
        session.add(Resident(id=1, locale="pl", display_name="Bench"))
    rows = []
    for seq in range(1, cases + 1):
        received = datetime(2026, 1, 1, 8, tzinfo=UTC) + timedelta(minutes=rng.randrange(365 * 24 * 60))
        deadline = calendar.deadline(received, 20)
        taken = rng.randrange(1, 40)
        closed = received + timedelta(days=taken) if rng.random() < 0.9 else None
        rows.append(
            {
                "number": f"VRS-2026-{seq:06d}",
                "year": 2026,
                "seq": seq,
                "resident_id": 1,
                "locale": rng.choice(["pl", "lt"]),
                "kind": rng.choice(["request", "complaint", "report"]),
                "category_id": rng.choice(categories),
                "eldership_id": rng.choice(elderships),
                "description": "bench",
                "status": CaseStatus.ANSWERED if closed else CaseStatus.IN_PROGRESS,
                "received_at": received,
                "deadline": deadline,
                "extended_until": deadline + timedelta(days=14) if rng.random() < 0.1 else None,
                "extension_days": 0,
                "closed_at": closed,
                "feedback_asked": closed is not None,
            }
        )
    feedback = [
        {
            "id": f"{i:032x}",
            "answered_on": date(2026, 1, 1) + timedelta(days=rng.randrange(365)),
            "locale": rng.choice(["pl", "lt"]),
            "kind": "request",
            "category_id": rng.choice(categories),
            "eldership_id": rng.choice(elderships),
            "score": rng.choice([1, 2, 3, 4, 4, 5, 5, 5]),
            "resolved": rng.choice(["yes", "yes", "partly", "no"]),
            "comment": None,
        }
        for i in range(answers)
    ]
    async with database.write() as session:
        for start in range(0, len(rows), 1000):
            await session.execute(Case.__table__.insert(), rows[start : start + 1000])
        for start in range(0, len(feedback), 1000):
            await session.execute(SatisfactionAnswer.__table__.insert(), feedback[start : start + 1000])


async def timed(work, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = await work()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--answers", type=int, default=5_000)
    parser.add_argument("--database-url")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    url = args.database_url or f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/bench.db"
    database = Database(url)
    await upgrade(database)
    calendar = WorkingCalendar(__import__("zoneinfo").ZoneInfo("Europe/Vilnius"))
    await fill(database, args.cases, args.answers, calendar)
    service = QualityService(database, calendar, load_municipality(DEFAULT_MUNICIPALITY_FILE))
    i18n = load_i18n("pl")

    async def baseline():
        async with database.read() as session:
            cases = (await session.execute(select(Case))).scalars().all()
            answers = (await session.execute(select(SatisfactionAnswer))).scalars().all()
        return len(cases) + len(answers)

    with i18n.context(), i18n.use_locale("lt"):
        read, _ = await timed(baseline, args.repeat)
        indicators, report = await timed(lambda: service.report(YEAR, "lt"), args.repeat)

        async def files():
            return png(report_chart(report)), report_xlsx(report), report_csv(report)

        drawing, (chart, workbook, table) = await timed(files, args.repeat)
    await database.dispose()

    print(
        f"quality report for a year: {args.cases} cases, {args.answers} satisfaction answers ({url.split(':')[0]})"
    )
    print(f"  baseline (read whole rows) {read * 1000:8.0f} ms")
    print(
        f"  indicators                 {indicators * 1000:8.0f} ms  ({indicators / read:.2f}× the baseline)"
    )
    print(
        f"  chart + XLSX + CSV         {drawing * 1000:8.0f} ms  (PNG {len(chart) // 1024} KB, XLSX {len(workbook) // 1024} KB, CSV {len(table) // 1024} KB)"
    )
    print(
        f"  received {report.received}, closed {report.closed}, on time {report.on_time_share:.1f}%, median {report.median_days} working days"
    )


if __name__ == "__main__":
    asyncio.run(main())
