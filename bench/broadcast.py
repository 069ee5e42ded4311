"""How fast an announcement reaches many residents, against Telegram's ceiling.

    .venv/bin/python bench/broadcast.py [--recipients 10000] [--database-url URL]

The emulator runs in a process of its own, enforcing Telegram's limits (30 messages a second
overall); the sender (the bot's delivery engine, as in production) runs here. Printed, never
asserted: messages per second against the 30/s ceiling (the ratio), duplicates and losses; then
the same with every limit off, the highest rate one process pushes.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import secrets
import socket
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.limiter import Lanes, RateLimiter
from bot.services.broadcaster import Broadcaster, TextVersion, Version
from bot.store.db import Database
from bot.store.migrate import upgrade
from bot.store.models import DeliveryStatus
from bot.telegram import create_bot

TOKEN = "123456:BENCH-token-for-the-emulator-only"
CONTENT: dict[str, Version] = {
    "pl": TextVersion(text="<b>Ogłoszenie</b>: remont drogi w Rzeszy."),
    "lt": TextVersion(text="<b>Skelbimas</b>: kelio remontas Riešėje."),
}


def _serve(port: int, limits: bool, users: int, control_token: str) -> None:
    from bot.sandbox.control import controlled_emulator
    from bot.sandbox.emulator import Limits

    async def main() -> None:
        emulator = controlled_emulator(TOKEN, Limits(enabled=limits), control_token=control_token)
        for i in range(users):
            emulator.add_user(f"R{i}", "pl" if i % 2 else "lt")
        await emulator.serve("127.0.0.1", port)
        await asyncio.Event().wait()

    asyncio.run(main())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_emulator(limits: bool, users: int) -> tuple[multiprocessing.Process, str, dict[str, str]]:
    """The emulator in a process of its own, with `users` residents; its URL and the headers its
    control API wants (this run's token)."""
    from bot.sandbox.control import TOKEN_HEADER

    port = _free_port()
    control_token = secrets.token_urlsafe(24)
    server = multiprocessing.Process(target=_serve, args=(port, limits, users, control_token), daemon=True)
    server.start()
    return server, f"http://127.0.0.1:{port}", {TOKEN_HEADER: control_token}


async def residents(http: httpx.AsyncClient) -> list[tuple[int, str]]:
    """(chat id, language) of the emulator's residents, once it answers."""
    for _ in range(600):
        try:
            chats = (await http.get("/_emu/chats")).json()
            break
        except httpx.HTTPError:
            await asyncio.sleep(0.1)
    return [(c["id"], "pl" if c["id"] % 2 else "lt") for c in chats if c["type"] == "private"]


async def delivered(http: httpx.AsyncClient) -> tuple[Counter[int], int]:
    """Messages received per chat, and the 429 answers given, as the emulator saw them."""
    events = (await http.get("/_emu/events", params={"after": 0})).json()["events"]
    refused = [
        r
        for r in (await http.get("/_emu/requests", params={"method": "sendMessage"})).json()["requests"]
        if r["status"] == 429
    ]
    return Counter(e["chat_id"] for e in events if e["type"] == "message" and e.get("outgoing")), len(refused)


async def run(recipients: int, limits: bool, database_url: str | None, workdir: Path) -> dict:
    server, url, control = start_emulator(limits, recipients)
    async with httpx.AsyncClient(base_url=url, timeout=300, headers=control) as http:
        people = await residents(http)
        database = Database(database_url or f"sqlite+aiosqlite:///{workdir}/broadcast-{int(limits)}.db")
        await upgrade(database)
        bot = create_bot(TOKEN, url, RateLimiter(Lanes(global_per_second=30 if limits else 0)))
        sender = Broadcaster(database, bot, batch=30 if limits else 200)
        broadcast = await sender.create(CONTENT, people)
        started = time.perf_counter()
        counts = await sender.run(broadcast.id)
        elapsed = time.perf_counter() - started
        await bot.session.close()
        await database.dispose()
        received, refused = await delivered(http)
    server.terminate()
    return {
        "elapsed": elapsed,
        "sent": counts[DeliveryStatus.SENT],
        "failed": counts[DeliveryStatus.FAILED],
        "duplicates": sum(n - 1 for n in received.values() if n > 1),
        "lost": len({p for p, _ in people} - set(received)),
        "429": refused,
    }


async def main() -> None:
    logging.basicConfig(level=logging.ERROR)  # the sender's 429 warnings are counted, not printed
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--database-url", help="default: a temporary SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="petent-bench-") as tmp:
        limited = await run(args.recipients, True, args.database_url, Path(tmp))
        free = await run(args.recipients, False, args.database_url, Path(tmp))
    print(f"\nBroadcast to {args.recipients} residents, Python {sys.version.split()[0]}")
    rate = limited["sent"] / limited["elapsed"]
    print(
        f"with Telegram's limits: {limited['sent']} sent in {limited['elapsed']:.1f} s = {rate:.1f}/s "
        f"against the 30/s ceiling ({rate / 30:.0%}); duplicates {limited['duplicates']}, lost {limited['lost']}, "
        f"failed {limited['failed']}, 429 answers {limited['429']}"
    )
    rate = free["sent"] / free["elapsed"]
    print(
        f"limits off: {free['sent']} sent in {free['elapsed']:.1f} s = {rate:.1f}/s (one process); "
        f"duplicates {free['duplicates']}, lost {free['lost']}, failed {free['failed']}"
    )


if __name__ == "__main__":
    asyncio.run(main())
