"""Does the bot's memory stay flat however many residents write? One message from each of many.

    .venv/bin/python bench/soak.py [--residents 20000] [--concurrency 100] [--timeout 900] [--database-url URL] [--redis-url URL]

N distinct residents, new to the bot, each send /start through the emulator over HTTP and wait
for the answer (a greeting and the choice of language: a conversation state is stored for each).
Pacing is on (SEND_RATE_PER_SECOND=1000, the emulator's limits off), so every resident gets a lane
in the limiter as well as a record in the throttling middleware and the conversation storage.
Printed, never asserted: the bot process's resident set size (VmRSS in /proc/<pid>/status) once
it polls, after a warm-up, at each quarter and at the end, and the growth per 1000 residents after
the warm-up. The run stops by itself: after --timeout seconds it stops sending and reports what
it reached.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.sandbox.control import control_headers, controlled_emulator
from bot.sandbox.emulator import Limits

TOKEN = "123456:BENCH-token-for-the-emulator-only"
GROUP_ADMIN, GROUP_COMMS = -1001000000001, -1001000000002
ANSWERS = 2  # /start: a greeting and the choice of language
WARM_UP = 1000


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def _mib(kib: int) -> str:
    return f"{kib / 1024:7.1f} MiB"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=20_000)
    parser.add_argument(
        "--concurrency", type=int, default=100, help="residents waiting for their answer at once"
    )
    parser.add_argument("--timeout", type=float, default=900, help="seconds; then stop sending and report")
    parser.add_argument("--database-url", help="default: a temporary SQLite file")
    parser.add_argument("--redis-url", help="keep conversations in Redis (REDIS_URL) instead of the database")
    args = parser.parse_args()

    emulator = controlled_emulator(TOKEN, Limits(enabled=False))
    runner = await emulator.serve()
    emulator.add_group("Clerks", forum=True, chat_id=GROUP_ADMIN)
    emulator.add_group("Communications", chat_id=GROUP_COMMS)
    users = [emulator.add_user(f"Resident {i}", "pl" if i % 2 else "lt") for i in range(args.residents)]
    inboxes: dict[int, asyncio.Queue[None]] = defaultdict(asyncio.Queue)

    def on_event(event: dict) -> None:
        if event["type"] == "message" and event.get("outgoing"):
            inboxes[event["chat_id"]].put_nowait(None)

    emulator.listeners.append(on_event)

    with tempfile.TemporaryDirectory(prefix="petent-soak-") as tmp:
        workdir = Path(tmp)
        env = {
            **os.environ,
            "BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": emulator.url,
            "ADMIN_CHAT_ID": str(GROUP_ADMIN),
            "COMMS_CHAT_ID": str(GROUP_COMMS),
            "SECRET_KEY": "bench-secret-key-0123456789",
            "DATABASE_URL": args.database_url or f"sqlite:///{workdir}/soak.db",
            "LOG_LEVEL": "WARNING",
            "OPS_LISTEN": "off",
            "SEND_RATE_PER_SECOND": "1000",
            "PYTHONPATH": str(ROOT),  # this checkout's bot, whatever is installed
        }
        env.pop("REDIS_URL", None)
        if args.redis_url:
            env["REDIS_URL"] = args.redis_url
        log = workdir / "petent.log"
        polls = emulator.polls
        with log.open("ab") as out:
            bot = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "run", env=env, stdout=out, stderr=out, cwd=workdir
            )
        try:
            while emulator.polls == polls:
                if bot.returncode is not None:
                    raise SystemExit(f"the bot did not start:\n{log.read_text()[-3000:]}")
                await asyncio.sleep(0.05)
            await asyncio.sleep(1)  # settled: migrations done, polling
            figures = [("polling, no resident yet", 0, rss_kib(bot.pid), 0.0)]
            checkpoints = {WARM_UP, *(args.residents * q // 4 for q in (1, 2, 3, 4))}
            done = failed = 0
            started = time.perf_counter()
            deadline = started + args.timeout
            queue = iter(users)

            async with httpx.AsyncClient(
                base_url=emulator.url,
                headers=control_headers(emulator),
                timeout=60,
                limits=httpx.Limits(max_connections=args.concurrency),
            ) as http:

                async def resident_writes(user: dict) -> None:
                    nonlocal done, failed
                    try:
                        (
                            await http.post("/_emu/messages", json={"user_id": user["id"], "text": "/start"})
                        ).raise_for_status()
                        for _ in range(ANSWERS):
                            await asyncio.wait_for(
                                inboxes[user["id"]].get(), max(1.0, deadline - time.perf_counter())
                            )
                    except (TimeoutError, httpx.HTTPError):
                        failed += 1
                    inboxes.pop(user["id"], None)
                    done += 1
                    if done in checkpoints:
                        figures.append(
                            (f"after {done} residents", done, rss_kib(bot.pid), time.perf_counter() - started)
                        )

                async def worker() -> None:
                    for user in queue:
                        if time.perf_counter() > deadline:
                            return
                        await resident_writes(user)

                await asyncio.gather(*(worker() for _ in range(args.concurrency)))
            elapsed = time.perf_counter() - started
            await asyncio.sleep(1)
            figures.append(("1 s later, idle", done, rss_kib(bot.pid), time.perf_counter() - started))
        finally:
            if bot.returncode is None:
                bot.terminate()
                try:
                    await asyncio.wait_for(bot.wait(), 15)
                except TimeoutError:
                    bot.kill()
                    await bot.wait()
            await runner.cleanup()

    storage = (
        "Redis"
        if args.redis_url
        else ("PostgreSQL" if args.database_url and "postgres" in args.database_url else "SQLite")
    )
    print(
        f"\nSoak: {done} of {args.residents} residents, one /start each, {args.concurrency} at a time, conversations in {storage}, "
        f"{elapsed:.0f} s ({done / elapsed:.0f} residents/s), {failed} without an answer{' (timed out)' if done < args.residents else ''}"
    )
    print(f"{'':28}{'residents':>10}{'bot RSS':>14}{'at':>8}")
    for label, count, kib, at in figures:
        print(f"{label:28}{count:10}{_mib(kib):>14}{at:7.0f}s")
    warm = next((f for f in figures if f[1] == WARM_UP), None)
    last = figures[-1]
    if warm is not None and last[1] > warm[1]:
        per_thousand = (last[2] - warm[2]) / (last[1] - warm[1]) * 1000
        print(
            f"\nRSS before: {_mib(figures[0][2])}, after: {_mib(last[2])}; growth after the warm-up: {per_thousand:.0f} KiB per 1000 residents"
        )


if __name__ == "__main__":
    asyncio.run(main())
