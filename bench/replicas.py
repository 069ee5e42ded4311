"""Two replicas against one: the submission flow in webhook mode behind a round-robin proxy.

    .venv/bin/python bench/replicas.py --database-url postgresql://postgres@127.0.0.1:5432/petent_bench \
        --redis-url redis://127.0.0.1:6379/14 [--residents 100]

N onboarded residents submit a case at once (bench/flow.py's steps), through the emulator with
Telegram's limits on, once with one replica and once with two behind one webhook URL (PostgreSQL
for cases, Redis for conversations and the shared sending lanes). Printed, never asserted:
updates per second, p50/p95 per step, and the most messages Telegram received in any one second
against its ceiling of 30 a second. On a 2-core machine two replicas share the same cores: the
figure shows what sharing costs, not what a second machine would add.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import os
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx
from aiohttp import ClientError, ClientSession, web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.flow import GROUP_ADMIN, GROUP_COMMS, STEPS, TOKEN, Inboxes, _percentile, onboarded_residents
from bot.limiter import PACED_METHODS
from bot.sandbox.control import control_headers, controlled_emulator
from bot.sandbox.emulator import Limits

SECRET = "bench-webhook-secret"
PACED = {method.lower() for method in PACED_METHODS}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _proxy(ports: list[int]) -> tuple[web.AppRunner, int]:
    """Telegram's webhook URL: each update to the next replica in turn."""
    turn = iter(range(10**9))
    session = ClientSession()

    async def forward(request: web.Request) -> web.Response:
        port = ports[next(turn) % len(ports)]
        headers = {k: v for k, v in request.headers.items() if k.lower().startswith("x-telegram")}
        try:
            async with session.post(
                f"http://127.0.0.1:{port}{request.path}",
                data=await request.read(),
                headers={**headers, "Content-Type": "application/json"},
            ) as answer:
                return web.Response(status=answer.status, body=await answer.read())
        except ClientError:
            return web.Response(status=502)

    app = web.Application()
    app.router.add_post("/{path:.*}", forward)
    app.on_cleanup.append(lambda _: session.close())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, port


async def run(replicas: int, residents: int, database_url: str, redis_url: str, workdir: Path) -> dict:
    emulator = controlled_emulator(TOKEN, Limits(enabled=True))
    runner = await emulator.serve()
    emulator.add_group("Clerks", forum=True, chat_id=GROUP_ADMIN)
    emulator.add_group("Communications", chat_id=GROUP_COMMS)
    inboxes = Inboxes(emulator)
    people = await onboarded_residents(
        emulator, database_url, residents, empty_first=True
    )  # each run from an empty database
    ports = [_free_port() for _ in range(replicas)]
    ops_ports = [_free_port() for _ in range(replicas)]  # each replica's /healthz (OPS_LISTEN)
    proxy, proxy_port = await _proxy(ports)
    env = {
        **os.environ,
        "BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": emulator.url,
        "ADMIN_CHAT_ID": str(GROUP_ADMIN),
        "COMMS_CHAT_ID": str(GROUP_COMMS),
        "SECRET_KEY": "bench-secret-key-0123456789",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "WEBHOOK_URL": f"http://127.0.0.1:{proxy_port}/hook",
        "WEBHOOK_SECRET": SECRET,
        "MAX_CASES_PER_DAY": "1000",
        "LOG_LEVEL": "WARNING",
    }
    bots: list[asyncio.subprocess.Process] = []
    try:  # the replicas stop however the run ends (an error, Ctrl-C, SIGTERM): none is left holding connections
        for i, port in enumerate(ports):
            with (workdir / f"replica-{replicas}-{i}.log").open("ab") as log:
                bots.append(
                    await asyncio.create_subprocess_exec(
                        sys.executable,
                        "-m",
                        "bot",
                        "run",
                        env={
                            **env,
                            "WEB_PORT": str(port),
                            "OPS_LISTEN": f"127.0.0.1:{ops_ports[i]}",
                            "INSTANCE_NAME": f"r{i}",
                        },
                        stdout=log,
                        stderr=log,
                    )
                )
        async with httpx.AsyncClient(timeout=1) as http:
            for port in ops_ports:  # each replica serves /healthz once it is up
                while True:
                    try:
                        if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    await asyncio.sleep(0.2)
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
                    path = "/_emu/messages" if action == "send" else "/_emu/click"
                    (await http.post(path, json={"user_id": user["id"], "text": value})).raise_for_status()
                    await inboxes.take(user["id"], answers)
                    latencies[step].append(time.perf_counter() - started)

            started = time.perf_counter()
            await asyncio.gather(*(resident(user, locale) for user, locale in people))
            elapsed = time.perf_counter() - started
    finally:
        for bot in bots:
            if bot.returncode is None:
                bot.terminate()
            await bot.wait()
    await proxy.cleanup()
    await runner.cleanup()
    sent = sorted(r["at"] for r in emulator.requests if r["status"] == 200 and r["method"].lower() in PACED)
    busiest = max((bisect.bisect_right(sent, at + 1.0) - i for i, at in enumerate(sent)), default=0)
    return {
        "elapsed": elapsed,
        "updates": sum(len(STEPS[locale]) for _, locale in people),
        "latencies": latencies,
        "busiest": busiest,
        "429": sum(1 for r in emulator.requests if r["status"] == 429),
        "429 by": Counter(
            ("group" if int(r["params"].get("chat_id", 0)) < 0 else "private", r["method"], r["error"][:60])
            for r in emulator.requests
            if r["status"] == 429
        ),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=100)
    parser.add_argument("--database-url", required=True, help="PostgreSQL: replicas share it")
    parser.add_argument(
        "--redis-url", required=True, help="Redis: conversations and the shared sending lanes"
    )
    args = parser.parse_args()
    if args.database_url.startswith("postgresql://"):
        args.database_url = args.database_url.replace("postgresql://", "postgresql+asyncpg://", 1)
    main_task = asyncio.current_task()
    assert main_task is not None
    asyncio.get_running_loop().add_signal_handler(
        signal.SIGTERM, main_task.cancel
    )  # as Ctrl-C: the replicas are stopped
    workdir = Path(tempfile.mkdtemp(prefix="petent-replicas-"))
    print(f"replicas' logs in {workdir}")
    results = {n: await run(n, args.residents, args.database_url, args.redis_url, workdir) for n in (1, 2)}
    print(
        f"\nSubmission flow in webhook mode, {args.residents} residents at once, Telegram's limits on, Python {sys.version.split()[0]}"
    )
    print(f"{'':12}{'updates/s':>10}{'p50/step':>11}{'p95/step':>11}{'busiest second':>16}{'429s':>6}")
    for n, result in results.items():
        every = [v for values in result["latencies"].values() for v in values]
        print(
            f"{n} replica{'s' if n > 1 else ' '}  {result['updates'] / result['elapsed']:10.1f}{statistics.median(every) * 1000:9.0f} ms"
            f"{_percentile(every, 0.95) * 1000:8.0f} ms{result['busiest']:10d} msgs{result['429']:6d}"
        )
    for n, result in results.items():
        print(f"{n}: 429s by chat and answer: {dict(result['429 by'])}")
    print("Telegram's ceiling: 30 messages a second overall (the emulator allows a burst of 30 on top)")


if __name__ == "__main__":
    asyncio.run(main())
