"""How fast residents get through the submission, against a bare aiogram bot as the baseline.

    .venv/bin/python bench/flow.py [--residents 200] [--database-url URL]

N residents (already onboarded) submit a case at the same time, through the emulator over real
HTTP, each step waiting for the bot's answer as a person would. Printed, never asserted:
updates per second, p50/p95 latency per step, and the same for a bare aiogram echo bot that
answers the same number of updates on the same emulator (the ratio shows what Petent's work
costs), and each bot process's CPU time per update and per request it made to Telegram. Run
twice: without Telegram's limits (the bots' own speed), and with them (30 messages a second
overall: Telegram's ceiling, and how close to it Petent gets).

A second baseline, bench/replay_bot.py, is a bare aiogram bot that makes exactly the requests
Petent made (recorded in the run without limits) for the same submissions: Petent against it is
what Petent's own work costs. With the CPU of the two reads and writes each step needs (the
resident's record, the conversation kept across a restart, measured here in-process), it gives
the least a step can cost while it answers as Petent does and loses nothing at a crash.

BENCH_PROFILE=/tmp/prof.out profiles the bot's main thread (CPU time, start-up left out) in the
run without limits (its CPU figures then include the profiler's cost); `bench/profile_summary.py
/tmp/prof.out` says which packages the time went to.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import httpx
from sqlmodel import SQLModel

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.sandbox.control import control_headers, controlled_emulator
from bot.sandbox.emulator import Emulator, Limits
from bot.store.db import Database
from bot.store.migrate import upgrade
from bot.store.models import Resident, utcnow

T = TypeVar("T")
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
STEPS_EACH = len(STEPS["pl"])  # updates per resident, in either language


class Inboxes:
    """New bot messages per chat, fed by the emulator in-process (no polling in the measurement)."""

    def __init__(self, emulator: Emulator) -> None:
        self.queues: dict[int, asyncio.Queue[dict]] = defaultdict(asyncio.Queue)
        self.outgoing = 0
        self.cards = 0  # case cards in the clerks' group
        emulator.listeners.append(self._on_event)

    def _on_event(self, event: dict) -> None:
        if event["type"] in ("message", "edit") and (event["type"] == "edit" or event.get("outgoing")):
            self.outgoing += 1
        if event["type"] == "message" and event.get("outgoing"):
            self.queues[event["chat_id"]].put_nowait(event["message"])
            self.cards += (
                event["chat_id"] == GROUP_ADMIN and "text" in event["message"]
            )  # not a topic's service message

    async def take(self, chat_id: int, count: int, timeout: float = 300) -> None:
        for _ in range(count):
            await asyncio.wait_for(self.queues[chat_id].get(), timeout)


async def _start_bot(
    command: list[str], env: dict[str, str], emulator: Emulator, log: Path
) -> asyncio.subprocess.Process:
    polls = emulator.polls
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            *command, env=env, stdout=out, stderr=out, cwd=log.parent
        )
    while emulator.polls == polls:
        if process.returncode is not None:
            raise SystemExit(f"the bot did not start; see {log}")
        await asyncio.sleep(0.05)
    return process


async def _stop(process: asyncio.subprocess.Process) -> None:
    process.terminate()
    await process.wait()


async def onboarded_residents(
    emulator: Emulator, database_url: str, count: int, empty_first: bool = False
) -> list[tuple[dict, str]]:
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
            session.add(
                Resident(id=user["id"], locale=locale, display_name=user["first_name"], consent_at=utcnow())
            )
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


async def _measured(
    bot: asyncio.subprocess.Process, emulator: Emulator, work: Awaitable[T]
) -> tuple[T, float, float, list[dict]]:
    """`work`'s result, and while it ran: the seconds, the bot process's CPU seconds, the requests
    it made to Telegram."""
    started, cpu, first = time.perf_counter(), _cpu_seconds(bot), len(emulator.requests)
    result = await work
    return result, time.perf_counter() - started, _cpu_seconds(bot) - cpu, emulator.requests[first:]


async def _submissions(
    emulator: Emulator, inboxes: Inboxes, people: list[tuple[dict, str]], cards: bool
) -> dict[str, list[float]]:
    """Every resident submits a case at once, each step waiting for the bot's answer; with
    `cards`, done when each case's card is also in the clerks' group (without Telegram's limits:
    with them, the group takes 20 messages a minute). The latency of each step, by step."""
    latencies: dict[str, list[float]] = defaultdict(list)
    async with httpx.AsyncClient(
        base_url=emulator.url,
        headers=control_headers(emulator),
        timeout=300,
        limits=httpx.Limits(max_connections=100),
    ) as http:

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

        await asyncio.gather(*(resident(user, locale) for user, locale in people))
        while cards and inboxes.cards < len(people):
            await inboxes.take(GROUP_ADMIN, 1)
    return latencies


def _script(requests: list[dict], people: list[tuple[dict, str]]) -> dict[str, dict[str, list]]:
    """What Petent asked of Telegram for the first resident of each language, step by step (a
    step ends with the last of its answers), and for that resident's case in the clerks' group:
    what bench/replay_bot.py repeats."""
    script: dict[str, dict[str, list]] = {}
    for user, locale in {locale: (user, locale) for user, locale in reversed(people)}.values():
        own = [r for r in requests if r["params"].get("chat_id") == user["id"] and r["status"] == 200]
        steps: list[list[dict]] = []
        for _, _, answers in STEPS[locale]:
            step: list[dict] = []
            while answers:
                request = own.pop(0)
                step.append({"method": request["method"], "params": request["params"]})
                answers -= request["method"] == "sendMessage"
            steps.append(step)
        number = re.search(
            r"\b[A-Z0-9]+-\d{4}-\d{6}\b", steps[-1][-1]["params"]["text"]
        )  # the case number, whatever CASE_PREFIX
        assert number is not None, "the last answer names the case"
        group = [
            {
                "method": r["method"],
                "params": {k: v for k, v in r["params"].items() if k != "message_thread_id"},
            }
            for r in requests
            if r["params"].get("chat_id") == GROUP_ADMIN
            and number[0] in str(r["params"].get("name") or r["params"].get("text"))
        ]
        script[locale] = {"steps": steps, "group": group}
    return script


async def run_replay(people: int, script: dict, workdir: Path) -> dict:
    """The bare aiogram bot making Petent's requests (bench/replay_bot.py) for the same submissions."""
    emulator = controlled_emulator(TOKEN, Limits(enabled=False))
    runner = await emulator.serve()
    emulator.add_group("Clerks", forum=True, chat_id=GROUP_ADMIN)
    inboxes = Inboxes(emulator)
    residents = [emulator.add_user(f"Resident {i}", "pl" if i % 2 == 0 else "lt") for i in range(people)]
    path = workdir / "replay.json"
    path.write_text(json.dumps(script))
    env = {**os.environ, "BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": emulator.url, "REPLAY_SCRIPT": str(path)}
    bot = await _start_bot(
        [sys.executable, str(ROOT / "bench" / "replay_bot.py")], env, emulator, workdir / "replay.log"
    )
    submissions = _submissions(
        emulator, inboxes, [(user, user["language_code"]) for user in residents], cards=True
    )
    latencies, elapsed, cpu, window = await _measured(bot, emulator, submissions)
    await _stop(bot)
    await runner.cleanup()
    return {
        "elapsed": elapsed,
        "updates": STEPS_EACH * people,
        "latencies": latencies,
        "cpu": cpu,
        "requests": Counter(r["method"] for r in window),
    }


async def run_petent(residents: int, limits: bool, database_url: str | None, workdir: Path) -> dict:
    emulator = controlled_emulator(TOKEN, Limits(enabled=limits))
    runner = await emulator.serve()
    emulator.add_group("Clerks", forum=True, chat_id=GROUP_ADMIN)
    emulator.add_group("Communications", chat_id=GROUP_COMMS)
    inboxes = Inboxes(emulator)
    url = database_url or f"sqlite+aiosqlite:///{workdir}/bench-{int(limits)}.db"
    people = await onboarded_residents(emulator, url, residents)
    env = {
        **os.environ,
        "BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": emulator.url,
        "ADMIN_CHAT_ID": str(GROUP_ADMIN),
        "COMMS_CHAT_ID": str(GROUP_COMMS),
        "SECRET_KEY": "bench-secret-key-0123456789",
        "DATABASE_URL": url,
        "MAX_CASES_PER_DAY": "1000",
        "LOG_LEVEL": "WARNING",
        "OPS_LISTEN": "off",
        "SEND_RATE_PER_SECOND": "30" if limits else "0",
    }
    profile = (
        os.environ.get("BENCH_PROFILE") if not limits else None
    )  # the run without limits, as measured below
    command = (
        [sys.executable, str(ROOT / "bench" / "profile_bot.py")]
        if profile
        else [sys.executable, "-m", "bot", "run"]
    )
    bot = await _start_bot(command, env, emulator, workdir / "petent.log")
    if profile:
        bot.send_signal(signal.SIGUSR1)  # start-up done: the profile starts now
    latencies, elapsed, cpu, window = await _measured(
        bot, emulator, _submissions(emulator, inboxes, people, cards=not limits)
    )
    await _stop(bot)
    await runner.cleanup()
    refused = [r for r in emulator.requests if r["status"] == 429]
    return {
        "elapsed": elapsed,
        "updates": STEPS_EACH * residents,
        "latencies": latencies,
        "sent": inboxes.outgoing,
        "429": len(refused),
        "cpu": cpu,
        "requests": Counter(r["method"] for r in window),
        "script": _script(window, people),
    }


async def run_echo(residents: int, updates_each: int, workdir: Path) -> dict:
    emulator = controlled_emulator(TOKEN, Limits(enabled=False))
    runner = await emulator.serve()
    inboxes = Inboxes(emulator)
    users = [emulator.add_user(f"Resident {i}", "pl") for i in range(residents)]
    env = {**os.environ, "BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": emulator.url}
    bot = await _start_bot(
        [sys.executable, str(ROOT / "bench" / "echo_bot.py")], env, emulator, workdir / "echo.log"
    )
    latencies: list[float] = []
    async with httpx.AsyncClient(
        base_url=emulator.url,
        headers=control_headers(emulator),
        timeout=300,
        limits=httpx.Limits(max_connections=100),
    ) as http:

        async def resident(user: dict) -> None:
            for i in range(updates_each):
                started = time.perf_counter()
                (
                    await http.post("/_emu/messages", json={"user_id": user["id"], "text": f"message {i}"})
                ).raise_for_status()
                await inboxes.take(user["id"], 1)
                latencies.append(time.perf_counter() - started)

        _, elapsed, cpu, window = await _measured(
            bot, emulator, asyncio.gather(*(resident(user) for user in users))
        )
    await _stop(bot)
    await runner.cleanup()
    return {
        "elapsed": elapsed,
        "updates": residents * updates_each,
        "latencies": latencies,
        "cpu": cpu,
        "requests": Counter(r["method"] for r in window),
    }


async def store_costs(workdir: Path, times: int = 2000) -> tuple[float, float]:
    """CPU seconds of one read of a resident's record and one write of a conversation (one
    transaction), on SQLite in this process: what every step of a form does at least."""
    from aiogram.fsm.storage.base import StorageKey

    from bot.store.fsm import SQLStorage
    from bot.store.residents import get_resident

    database = Database(f"sqlite+aiosqlite:///{workdir}/costs.db")
    await upgrade(database)
    async with database.write() as session:
        session.add(Resident(id=1, locale="pl", display_name="Resident", consent_at=utcnow()))
    storage, key = SQLStorage(database), StorageKey(bot_id=1, chat_id=1, user_id=1)
    draft = {
        "draft": {
            "kind": "report",
            "eldership": "avizieniai",
            "category": "roads",
            "description": STEPS["pl"][4][1][1],
            "files": [],
        }
    }

    async def each(call: Callable[[int], Awaitable[object]]) -> float:
        for i in range(times // 10):  # warm: statements compiled, connections open
            await call(i)
        started = time.process_time()
        for i in range(times):
            await call(i)
        return (time.process_time() - started) / times

    read = await each(lambda _: get_resident(database, 1))
    write = await each(lambda i: storage.set_data(key, {**draft, "step": i}))
    await database.dispose()
    return read, write


def _ms(value: float) -> str:
    return f"{value * 1000:8.0f} ms"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=200)
    parser.add_argument("--database-url", help="default: a temporary SQLite file")
    args = parser.parse_args()
    steps = STEPS_EACH
    with tempfile.TemporaryDirectory(prefix="petent-bench-") as tmp:
        workdir = Path(tmp)
        read, write = await store_costs(workdir)  # first: nothing else in this process yet
        echo = await run_echo(args.residents, steps, workdir)
        fast = await run_petent(args.residents, limits=False, database_url=args.database_url, workdir=workdir)
        replay = await run_replay(args.residents, fast["script"], workdir)
        real = await run_petent(
            args.residents,
            limits=True,
            database_url=None if not args.database_url else args.database_url,
            workdir=workdir,
        )

    database = "PostgreSQL" if args.database_url and "postgresql" in args.database_url else "SQLite"
    print(
        f"\nSubmission flow: {args.residents} residents at once, {steps} steps each, {database}, Python {sys.version.split()[0]}"
    )
    print(f"{'':32}{'updates/s':>10}{'p50/step':>12}{'p95/step':>12}")
    echo_rate = echo["updates"] / echo["elapsed"]
    all_echo = echo["latencies"]
    print(
        f"{'bare aiogram echo (no limits)':32}{echo_rate:10.1f}{_ms(statistics.median(all_echo)):>12}{_ms(_percentile(all_echo, 0.95)):>12}"
    )
    for name, result in (
        ("bare bot, petent's requests", replay),
        ("petent (no limits)", fast),
        ("petent (Telegram's limits)", real),
    ):
        rate = result["updates"] / result["elapsed"]
        every = [v for values in result["latencies"].values() for v in values]
        print(f"{name:32}{rate:10.1f}{_ms(statistics.median(every)):>12}{_ms(_percentile(every, 0.95)):>12}")
    print(
        f"\nratio petent/echo, no limits: {fast['updates'] / fast['elapsed'] / echo_rate:.2f} of the bare bot's update rate"
    )
    echo_cpu, petent_cpu = echo["cpu"] / echo["updates"], fast["cpu"] / fast["updates"]
    print(
        f"bot process CPU per update: bare echo {echo_cpu * 1000:.2f} ms, petent {petent_cpu * 1000:.2f} ms "
        f"({petent_cpu / echo_cpu:.1f}x; petent also sends {fast['sent'] / fast['updates']:.1f} messages per update, the echo 1)"
    )
    replay_cpu = replay["cpu"] / replay["updates"]
    print(
        f"bare aiogram bot making petent's requests (bench/replay_bot.py): {replay_cpu * 1000:.2f} ms per update; "
        f"petent {petent_cpu / replay_cpu:.1f}x that (what petent's own work costs: database, conversations, texts, routing)"
    )
    least = replay_cpu + read + write
    print(
        f"least a step can cost: those requests + reading the resident ({read * 1000:.2f} ms) + keeping the conversation "
        f"({write * 1000:.2f} ms, both on SQLite) = {least * 1000:.2f} ms, {least / echo_cpu:.1f}x the echo's"
    )
    for name, result in (("petent", fast), ("bare bot, petent's requests", replay), ("bare echo", echo)):
        per_update = ", ".join(
            f"{method} {count / result['updates']:.2f}" for method, count in result["requests"].most_common()
        )
        print(
            f"requests to Telegram per update, {name}: {result['requests'].total() / result['updates']:.2f} ({per_update})"
        )
    echo_request, petent_request = (
        echo["cpu"] / echo["requests"].total(),
        fast["cpu"] / fast["requests"].total(),
    )
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
        print(
            f"{step:14}{_ms(statistics.median(a))}{_ms(_percentile(a, 0.95))}   {_ms(statistics.median(b))}{_ms(_percentile(b, 0.95))}"
        )


if __name__ == "__main__":
    asyncio.run(main())
