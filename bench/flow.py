"""How fast residents get through the submission, against a bare aiogram bot as the baseline.

    .venv/bin/python bench/flow.py [--residents 200] [--database-url URL]

N residents (already onboarded) submit a case at the same time, through the emulator over real
HTTP, each step waiting for the bot's answer as a person would. Printed, never asserted:
updates per second, p50/p95 latency per step, and the same for a bare aiogram echo bot that
answers the same number of updates on the same emulator (the ratio shows what Petent's work
costs), and each bot process's CPU time per update and per request it made to Telegram. Run
twice: without Telegram's limits (the bots' own speed), and with them (30 messages a second
overall: Telegram's ceiling, and how close to it Petent gets).

BENCH_PROFILE=/tmp/prof.out profiles the bot's main thread (CPU time, start-up left out) in the
run without limits (its CPU figures then include the profiler's cost); `bench/profile_summary.py
/tmp/prof.out` says which packages the time went to.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx
from sqlmodel import SQLModel

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.sandbox.control import controlled_emulator  # noqa: E402
from bot.sandbox.emulator import Emulator, Limits  # noqa: E402
from bot.store.db import Database  # noqa: E402
from bot.store.migrate import upgrade  # noqa: E402
from bot.store.models import Resident, utcnow  # noqa: E402

TOKEN = "123456:BENCH-token-for-the-emulator-only"
GROUP_ADMIN, GROUP_COMMS = -1001000000001, -1001000000002

# (step name, action, how many new bot messages answer it)
STEPS = {
    "pl": [
        ("new case", ("send", "📝 Nowa sprawa"), 1),
        ("kind", ("click", "🚧 Zgłoszenie problemu"), 1),
        ("eldership", ("click", "Awiżenie"), 1),
        ("category", ("click", "Drogi, ulice i transport"), 1),
        ("description", ("send", "Dziura w jezdni przy ul. Wileńskiej 5, bardzo głęboka"), 1),
        ("files", ("click", "⏭ Pomiń"), 1),
        ("location", ("send", "⏭ Pomiń"), 1),
        ("contact", ("send", "💬 Odpowiedź tutaj, w Telegramie"), 2),
        ("submit", ("click", "✅ Wyślij"), 1),
    ],
    "lt": [
        ("new case", ("send", "📝 Naujas kreipimasis"), 1),
        ("kind", ("click", "📄 Prašymas"), 1),
        ("eldership", ("click", "🤷 Nežinau / visas rajonas"), 1),
        ("category", ("click", "Socialinė parama"), 1),
        ("description", ("send", "Prašau informacijos apie socialinę pašalpą šildymui"), 1),
        ("files", ("click", "⏭ Praleisti"), 1),
        ("location", ("send", "⏭ Praleisti"), 1),
        ("contact", ("send", "💬 Atsakymas čia, „Telegram“"), 2),
        ("submit", ("click", "✅ Pateikti"), 1),
    ],
}


class Inboxes:
    """New bot messages per chat, fed by the emulator in-process (no polling in the measurement)."""

    def __init__(self, emulator: Emulator) -> None:
        self.queues: dict[int, asyncio.Queue[dict]] = defaultdict(asyncio.Queue)
        self.outgoing = 0
        emulator.listeners.append(self._on_event)

    def _on_event(self, event: dict) -> None:
        if event["type"] in ("message", "edit") and (event["type"] == "edit" or event.get("outgoing")):
            self.outgoing += 1
        if event["type"] == "message" and event.get("outgoing"):
            self.queues[event["chat_id"]].put_nowait(event["message"])

    async def take(self, chat_id: int, count: int, timeout: float = 300) -> None:
        for _ in range(count):
            await asyncio.wait_for(self.queues[chat_id].get(), timeout)


async def _start_bot(command: list[str], env: dict[str, str], emulator: Emulator, log: Path) -> asyncio.subprocess.Process:
    polls = emulator.polls
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(*command, env=env, stdout=out, stderr=out, cwd=log.parent)
    while emulator.polls == polls:
        if process.returncode is not None:
            raise SystemExit(f"the bot did not start; see {log}")
        await asyncio.sleep(0.05)
    return process


async def _stop(process: asyncio.subprocess.Process) -> None:
    process.terminate()
    await process.wait()


async def onboarded_residents(emulator: Emulator, database_url: str, count: int, empty_first: bool = False) -> list[tuple[dict, str]]:
    """`count` residents who have chosen their language (Polish and Lithuanian in turn) and
    acknowledged the notice, in the emulator and in the bot's database (emptied first if asked)."""
    database = Database(database_url)
    await upgrade(database)
    people = []
    async with database.write() as session:
        if empty_first:
            for table in reversed(SQLModel.metadata.sorted_tables):
                await session.execute(table.delete())
        for i in range(count):
            locale = "pl" if i % 2 == 0 else "lt"
            user = emulator.add_user(f"Resident {i}", locale)
            session.add(Resident(id=user["id"], locale=locale, display_name=user["first_name"], consent_at=utcnow()))
            people.append((user, locale))
    await database.dispose()
    return people


def _cpu_seconds(process: asyncio.subprocess.Process) -> float:
    """The process's own CPU time so far (user + system), from /proc."""
    fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


async def run_petent(residents: int, limits: bool, database_url: str | None, workdir: Path) -> dict:
    emulator = controlled_emulator(TOKEN, Limits(enabled=limits))
    runner = await emulator.serve()
    emulator.add_group("Clerks", forum=True, chat_id=GROUP_ADMIN)
    emulator.add_group("Communications", chat_id=GROUP_COMMS)
    inboxes = Inboxes(emulator)
    url = database_url or f"sqlite+aiosqlite:///{workdir}/bench-{int(limits)}.db"
    people = await onboarded_residents(emulator, url, residents)
    env = {
        **os.environ, "BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": emulator.url, "ADMIN_CHAT_ID": str(GROUP_ADMIN),
        "COMMS_CHAT_ID": str(GROUP_COMMS), "SECRET_KEY": "bench-secret-key-0123456789", "DATABASE_URL": url,
        "MAX_CASES_PER_DAY": "1000", "LOG_LEVEL": "WARNING", "SEND_RATE_PER_SECOND": "30" if limits else "0",
    }  # fmt: skip
    profile = os.environ.get("BENCH_PROFILE") if not limits else None  # the run without limits, as measured below
    command = [sys.executable, str(ROOT / "bench" / "profile_bot.py")] if profile else [sys.executable, "-m", "bot", "run"]
    bot = await _start_bot(command, env, emulator, workdir / "petent.log")
    if profile:
        bot.send_signal(signal.SIGUSR1)  # start-up done: the profile starts now
    latencies: dict[str, list[float]] = defaultdict(list)
    async with httpx.AsyncClient(base_url=emulator.url, timeout=300, limits=httpx.Limits(max_connections=100)) as http:

        async def resident(user: dict, locale: str) -> None:
            for step, (action, value), answers in STEPS[locale]:
                started = time.perf_counter()
                if action == "send":
                    response = await http.post("/_emu/messages", json={"user_id": user["id"], "text": value})
                else:
                    response = await http.post("/_emu/click", json={"user_id": user["id"], "text": value})
                response.raise_for_status()
                await inboxes.take(user["id"], answers)
                latencies[step].append(time.perf_counter() - started)

        started, cpu, first = time.perf_counter(), _cpu_seconds(bot), len(emulator.requests)
        await asyncio.gather(*(resident(user, locale) for user, locale in people))
        elapsed, cpu = time.perf_counter() - started, _cpu_seconds(bot) - cpu
        requests = Counter(r["method"] for r in emulator.requests[first:])
    await _stop(bot)
    await runner.cleanup()
    refused = [r for r in emulator.requests if r["status"] == 429]
    return {
        "elapsed": elapsed, "updates": sum(len(s) for s in STEPS.values()) // 2 * residents,
        "latencies": latencies, "sent": inboxes.outgoing, "429": len(refused), "cpu": cpu, "requests": requests,
    }  # fmt: skip


async def run_echo(residents: int, updates_each: int, workdir: Path) -> dict:
    emulator = controlled_emulator(TOKEN, Limits(enabled=False))
    runner = await emulator.serve()
    inboxes = Inboxes(emulator)
    users = [emulator.add_user(f"Resident {i}", "pl") for i in range(residents)]
    env = {**os.environ, "BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": emulator.url}
    bot = await _start_bot([sys.executable, str(ROOT / "bench" / "echo_bot.py")], env, emulator, workdir / "echo.log")
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=emulator.url, timeout=300, limits=httpx.Limits(max_connections=100)) as http:

        async def resident(user: dict) -> None:
            for i in range(updates_each):
                started = time.perf_counter()
                (await http.post("/_emu/messages", json={"user_id": user["id"], "text": f"message {i}"})).raise_for_status()
                await inboxes.take(user["id"], 1)
                latencies.append(time.perf_counter() - started)

        started, cpu, first = time.perf_counter(), _cpu_seconds(bot), len(emulator.requests)
        await asyncio.gather(*(resident(user) for user in users))
        elapsed, cpu = time.perf_counter() - started, _cpu_seconds(bot) - cpu
        requests = Counter(r["method"] for r in emulator.requests[first:])
    await _stop(bot)
    await runner.cleanup()
    return {"elapsed": elapsed, "updates": residents * updates_each, "latencies": latencies, "cpu": cpu, "requests": requests}


def _ms(value: float) -> str:
    return f"{value * 1000:8.0f} ms"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=200)
    parser.add_argument("--database-url", help="default: a temporary SQLite file")
    args = parser.parse_args()
    steps = len(STEPS["pl"])
    with tempfile.TemporaryDirectory(prefix="petent-bench-") as tmp:
        workdir = Path(tmp)
        echo = await run_echo(args.residents, steps, workdir)
        fast = await run_petent(args.residents, limits=False, database_url=args.database_url, workdir=workdir)
        real = await run_petent(args.residents, limits=True, database_url=None if not args.database_url else args.database_url, workdir=workdir)

    database = "PostgreSQL" if args.database_url and "postgresql" in args.database_url else "SQLite"
    print(f"\nSubmission flow: {args.residents} residents at once, {steps} steps each, {database}, Python {sys.version.split()[0]}")
    print(f"{'':32}{'updates/s':>10}{'p50/step':>12}{'p95/step':>12}")
    echo_rate = echo["updates"] / echo["elapsed"]
    all_echo = echo["latencies"]
    print(f"{'bare aiogram echo (no limits)':32}{echo_rate:10.1f}{_ms(statistics.median(all_echo)):>12}{_ms(_percentile(all_echo, 0.95)):>12}")
    for name, result in (("petent (no limits)", fast), ("petent (Telegram's limits)", real)):
        rate = result["updates"] / result["elapsed"]
        every = [v for values in result["latencies"].values() for v in values]
        print(f"{name:32}{rate:10.1f}{_ms(statistics.median(every)):>12}{_ms(_percentile(every, 0.95)):>12}")
    print(f"\nratio petent/echo, no limits: {fast['updates'] / fast['elapsed'] / echo_rate:.2f} of the bare bot's update rate")
    echo_cpu, petent_cpu = echo["cpu"] / echo["updates"], fast["cpu"] / fast["updates"]
    print(
        f"bot process CPU per update: bare echo {echo_cpu * 1000:.2f} ms, petent {petent_cpu * 1000:.2f} ms "
        f"({petent_cpu / echo_cpu:.1f}x; petent also sends {fast['sent'] / fast['updates']:.1f} messages per update, the echo 1)"
    )
    for name, result in (("petent", fast), ("bare echo", echo)):
        per_update = ", ".join(f"{method} {count / result['updates']:.2f}" for method, count in result["requests"].most_common())
        print(f"requests to Telegram per update, {name}: {result['requests'].total() / result['updates']:.2f} ({per_update})")
    echo_request, petent_request = echo["cpu"] / echo["requests"].total(), fast["cpu"] / fast["requests"].total()
    print(
        f"bot process CPU per request to Telegram: bare echo {echo_request * 1000:.2f} ms, petent {petent_request * 1000:.2f} ms "
        f"({petent_request / echo_request:.1f}x; each of petent's also carries its share of the database work and routing)"
    )
    sent_rate = real["sent"] / real["elapsed"]
    print(
        f"with limits: {real['sent']} messages and edits in {real['elapsed']:.1f} s = {sent_rate:.1f}/s "
        f"against Telegram's ceiling of 30/s ({sent_rate / 30:.0%}); 429 answers: {real['429']}"
    )
    print("\nper step (no limits / with limits)")
    print(f"{'step':14}{'p50':>11}{'p95':>11}   {'p50':>11}{'p95':>11}")
    for step in fast["latencies"]:
        a, b = fast["latencies"][step], real["latencies"][step]
        print(f"{step:14}{_ms(statistics.median(a))}{_ms(_percentile(a, 0.95))}   {_ms(statistics.median(b))}{_ms(_percentile(b, 0.95))}")


if __name__ == "__main__":
    asyncio.run(main())
