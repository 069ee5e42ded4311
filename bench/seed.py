"""A decade of a municipality's data in PostgreSQL, for bench/scale.py.

    .venv/bin/python bench/seed.py --database-url postgresql://postgres@127.0.0.1:5432/petent_decade \
        [--cases 1000000] [--events-per-case 10] [--residents 200000] [--subscribers 100000] [--answers 50000]

Creates the database if it does not exist (it must be empty if it does), migrates it, then fills
it inside PostgreSQL with `INSERT … SELECT FROM generate_series` (no row goes through Python, so a
million cases take minutes, not hours): residents (some subscribed to news; the first, FIRST_RESIDENT, has 200 cases for /mydata), ten years of cases
across the municipality file's kinds, categories, elderships and teams (closed ones answered
within or after their deadline, the last weeks' still open, some extended; reports placed in the district's box, for "me too"), their trails, the
outbox's sent rows, a broadcast to every subscriber, satisfaction answers; then ANALYZE.
Prints how long each table took.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import asyncpg
from sqlalchemy import text

from bot.municipality import load_municipality
from bot.settings import DEFAULT_MUNICIPALITY_FILE
from bot.store.db import Database
from bot.store.migrate import upgrade

FIRST_RESIDENT = 10_000_000  # Telegram user ids of the seeded residents start here
START = "2016-12-01 08:00:00+00"  # ten years before the benchmark's today
DAYS = 3650


def _array(values: list[str]) -> str:
    return "(ARRAY[" + ",".join("'" + value.replace("'", "''") + "'" for value in values) + "])"


def statements(
    cases: int, events_per_case: int, residents: int, subscribers: int, answers: int
) -> list[tuple[str, str]]:
    municipality = load_municipality(DEFAULT_MUNICIPALITY_FILE)
    elderships = _array([e.id for e in municipality.elderships])
    categories = _array([c.id for c in municipality.categories])
    teams = _array([t.id for t in municipality.teams] or ["default"])
    kinds = _array(["request", "complaint", "report"])
    per_case = f"interval '{DAYS * 86400 / cases} seconds'"
    return [
        (
            "residents",
            f"""
            INSERT INTO residents (id, locale, display_name, consent_at, news_topics, eldership_id, exports_that_day, created_at, updated_at)
            SELECT {FIRST_RESIDENT} + g, (ARRAY['pl','lt','pl','lt','en'])[1 + g % 5], 'Mieszkaniec ' || g,
                   timestamptz '{START}' + (g % {DAYS}) * interval '1 day',
                   CASE WHEN g <= {subscribers} THEN '["roads","projects","culture"]'::json ELSE '[]'::json END,
                   {elderships}[1 + g % array_length({elderships}, 1)], 0,
                   timestamptz '{START}' + (g % {DAYS}) * interval '1 day', timestamptz '{START}' + (g % {DAYS}) * interval '1 day'
            FROM generate_series(0, {residents}) g""",
        ),
        (
            "cases",
            f"""
            INSERT INTO cases (id, number, year, seq, resident_id, locale, kind, category_id, eldership_id, description, status,
                               received_at, deadline, extended_until, extension_days, team_id, closed_at, feedback_asked, channel, public,
                               latitude, longitude)
            SELECT g, 'VRS-' || extract(year FROM r)::int || '-' || lpad(g::text, 6, '0'), extract(year FROM r)::int, g,
                   CASE WHEN g % {max(1, cases // 200)} = 0 THEN {FIRST_RESIDENT} ELSE {FIRST_RESIDENT} + 1 + (g::bigint * 7919) % {residents} END,
                   (ARRAY['pl','lt'])[1 + g % 2],
                   {kinds}[1 + g % 3], {categories}[1 + g % array_length({categories}, 1)],
                   {elderships}[1 + (g / 3) % array_length({elderships}, 1)],
                   'Opis sprawy numer ' || g || ': dziura w jezdni, oświetlenie, odpady.',
                   CASE WHEN r > now() - interval '30 days' AND g % 3 > 0 THEN 'in_progress' ELSE 'answered' END,
                   r, (r + interval '28 days')::date, CASE WHEN g % 10 = 0 THEN (r + interval '56 days')::date END,
                   CASE WHEN g % 10 = 0 THEN 20 ELSE 0 END, {teams}[1 + g % array_length({teams}, 1)],
                   CASE WHEN r > now() - interval '30 days' AND g % 3 > 0 THEN NULL ELSE r + (1 + g % 40) * interval '1 day' END,
                   true, CASE WHEN g % 50 = 0 THEN 'open311' ELSE 'telegram' END, g % 7 = 0,
                   CASE WHEN g % 3 = 2 THEN 54.55 + ((g::bigint * 7907) % 40000) / 100000.0 END,
                   CASE WHEN g % 3 = 2 THEN 24.95 + ((g::bigint * 6271) % 70000) / 100000.0 END
            FROM (SELECT g, timestamptz '{START}' + g * {per_case} AS r FROM generate_series(1, {cases}) g) AS seeded""",
        ),
        (
            "case_counters",
            """
            INSERT INTO case_counters (year, last) SELECT year, max(seq) FROM cases GROUP BY year""",
        ),
        (
            "case_events",
            f"""
            INSERT INTO case_events (case_id, at, kind, actor_id, actor_name, text, data, resident_message_id, group_chat_id, group_message_id)
            SELECT c.id, c.received_at + e * interval '1 hour',
                   (ARRAY['created','status','message_out','message_in','note','assigned','status','message_out','reminded','status'])[1 + (e - 1) % 10],
                   CASE WHEN e > 1 THEN 500 + c.id % 40 END, CASE WHEN e > 1 THEN 'Urzędnik ' || (c.id % 40) END,
                   CASE WHEN e IN (3, 4, 5, 8) THEN 'Wiadomość ' || e || ' w sprawie ' || c.number END,
                   CASE WHEN e = 1 THEN '{{"kind":"report"}}'::json WHEN e IN (2, 7, 10) THEN '{{"to":"in_progress"}}'::json END,
                   CASE WHEN e IN (3, 4) THEN c.id * 10 + e END, -1001000000001, c.id * 10 + e
            FROM cases c CROSS JOIN generate_series(1, {events_per_case}) e""",
        ),
        (
            "outbox",
            """
            INSERT INTO outbox (created_at, kind, key, chat_id, case_id, payload, status, attempts, sent_chat_id, sent_message_id, sent_at)
            SELECT c.received_at, 'message', 'r:' || c.resident_id, c.resident_id, c.id, '{}'::json, 'sent', 1, c.resident_id, c.id, c.received_at
            FROM cases c""",
        ),
        (
            "broadcasts",
            """
            INSERT INTO broadcasts (created_at, content, audience, status, paid)
            VALUES (now() - interval '3 days', '{"pl": {"text": "Remont drogi"}, "lt": {"text": "Kelio remontas"}}'::json, '{}'::json, 'done', false)""",
        ),
        (
            "deliveries",
            f"""
            INSERT INTO deliveries (broadcast_id, chat_id, locale, status, attempts, sent_message_id)
            SELECT (SELECT max(id) FROM broadcasts), {FIRST_RESIDENT} + g, (ARRAY['pl','lt'])[1 + g % 2], 'sent', 1, g
            FROM generate_series(1, {subscribers}) g""",
        ),
        (
            "satisfaction_answers",
            f"""
            INSERT INTO satisfaction_answers (id, answered_on, locale, kind, category_id, eldership_id, score, resolved, comment)
            SELECT md5(g::text), (timestamptz '{START}' + (g * {DAYS} / {answers}) * interval '1 day')::date, (ARRAY['pl','lt'])[1 + g % 2],
                   {kinds}[1 + g % 3], {categories}[1 + g % array_length({categories}, 1)], {elderships}[1 + g % array_length({elderships}, 1)],
                   1 + (g * 31) % 5, (ARRAY['yes','partly','no'])[1 + g % 3], CASE WHEN g % 10 = 0 THEN 'Komentarz ' || g END
            FROM generate_series(1, {answers}) g""",
        ),
        (
            "sequences",
            """
            SELECT setval(pg_get_serial_sequence('cases', 'id'), (SELECT max(id) FROM cases));
            SELECT setval(pg_get_serial_sequence('case_events', 'id'), (SELECT max(id) FROM case_events))""",
        ),
    ]


async def _create_database(url: str) -> None:
    base, _, name = url.replace("postgresql+asyncpg://", "postgresql://").rpartition("/")
    connection = await asyncpg.connect(f"{base}/postgres")
    try:
        if not await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        required=True,
        help="postgresql://…/petent_decade (created if missing; must hold no cases)",
    )
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--events-per-case", type=int, default=10)
    parser.add_argument("--residents", type=int, default=200_000)
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--answers", type=int, default=50_000)
    args = parser.parse_args()
    if not args.database_url.startswith("postgresql"):
        parser.error("--database-url: PostgreSQL (the decade is measured where a municipality would keep it)")
    await _create_database(args.database_url)
    database = Database(args.database_url.replace("postgresql://", "postgresql+asyncpg://", 1))
    try:
        await upgrade(database)
        async with database.read() as session:
            if (await session.execute(text("SELECT count(*) FROM cases"))).scalar_one():
                parser.error("the database holds cases already: seed an empty one")
        began = time.perf_counter()
        for table, sql in statements(
            args.cases, args.events_per_case, args.residents, args.subscribers, args.answers
        ):
            started = time.perf_counter()
            async with database.write() as session:
                for statement in sql.split(";"):
                    if statement.strip():
                        await session.execute(text(statement))
            print(f"{table:22} {time.perf_counter() - started:8.1f} s")
        started = time.perf_counter()
        async with database.engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.exec_driver_sql("ANALYZE")
        print(f"{'ANALYZE':22} {time.perf_counter() - started:8.1f} s")
        print(
            f"{'total':22} {time.perf_counter() - began:8.1f} s  ({args.cases} cases, {args.cases * args.events_per_case} events)"
        )
    finally:
        await database.dispose()


if __name__ == "__main__":
    asyncio.run(main())
