"""Two replicas behind one webhook URL, on PostgreSQL and Redis: one is killed with kill -9 in the
middle of residents' conversations; no conversation is lost, no case is made twice, and the two
together never go over Telegram's limits."""

from __future__ import annotations

import asyncio
import bisect
import itertools
from collections import Counter

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select

from bot.limiter import PACED_METHODS
from bot.sandbox.emulator import Emulator
from bot.store.db import Database
from bot.store.models import Case, OutboxMessage
from tests.conftest import TEST_DATABASE_URL, TEST_REDIS_URL
from tests.e2e.conftest import BotProcess
from tests.support.driver import Person, Telegram
from tests.support.helpers import LABELS, choose, free_port, onboard
from tests.support.helpers import WEBHOOK_SECRET as SECRET

PACED = {method.lower() for method in PACED_METHODS}

pytestmark = pytest.mark.skipif(not (TEST_DATABASE_URL and TEST_REDIS_URL), reason="replicas need PostgreSQL and Redis")


class RoundRobin:
    """The load balancer in front of the replicas: each request to the next one; 502 if it is down."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = itertools.cycle(ports)
        self.served: Counter[int] = Counter()

    async def forward(self, request: web.Request) -> web.Response:
        port = next(self.ports)
        headers = {k: v for k, v in request.headers.items() if k.lower().startswith("x-telegram")}
        try:
            async with (
                aiohttp.ClientSession() as http,
                http.post(
                    f"http://127.0.0.1:{port}{request.path}", data=await request.read(), headers={**headers, "Content-Type": "application/json"}
                ) as answer,
            ):
                self.served[port] += 1
                return web.Response(status=answer.status, body=await answer.read())
        except aiohttp.ClientError:
            return web.Response(status=502)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_two_replicas_and_a_kill_9_lose_no_conversation(
    emulator: Emulator, telegram: Telegram, settings_env, tmp_path, store: Database, clerks: Person
) -> None:
    from redis.asyncio import Redis

    async with Redis.from_url(TEST_REDIS_URL) as redis:
        await redis.flushdb()  # this worker's database: no lock left by an earlier run's kill -9
    proxy_port, ports = free_port(), [free_port(), free_port()]
    balancer = RoundRobin(ports)
    proxy = web.Application()
    proxy.router.add_post("/{path:.*}", balancer.forward)
    runner = web.AppRunner(proxy, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", proxy_port).start()
    shared = {**settings_env, "REDIS_URL": TEST_REDIS_URL, "WEBHOOK_URL": f"http://127.0.0.1:{proxy_port}/hook", "WEBHOOK_SECRET": SECRET}
    replicas = [
        BotProcess(emulator, {**shared, "WEB_PORT": str(port), "INSTANCE_NAME": f"replica-{i}"}, tmp_path / f"replica-{i}.log") for i, port in enumerate(ports)
    ]
    residents = [await telegram.resident(f"R{i}", language_code="pl") for i in range(6)]
    try:
        for replica in replicas:
            await replica.start()
        for person in residents:
            await onboard(person, "pl")

        async def first_half(person: Person) -> None:
            await person.send(LABELS["pl"]["new"])
            await person.receive_one()
            await choose(person, "📄 Wniosek")
            await choose(person, LABELS["pl"]["whole"])
            await choose(person, "Inne sprawy")

        await asyncio.gather(*(first_half(person) for person in residents))
        # A replica killed while it holds a conversation's lock leaves it to its 60-second timeout
        # (the person waits, nothing is lost): kill once the answers' handlers have let go.
        async with Redis.from_url(TEST_REDIS_URL) as redis:
            for _ in range(100):
                if not [key async for key in redis.scan_iter(match="*lock*")]:
                    break
                await asyncio.sleep(0.05)
        await replicas[0].kill()  # mid-conversation: every resident is asked for a description

        async def second_half(person: Person, n: int) -> str:
            await person.send(f"Proszę o zaświadczenie numer {n}")
            await person.receive_one()
            await choose(person, LABELS["pl"]["skip"])
            await person.send(LABELS["pl"]["skip"])
            await person.receive_one()
            await person.send(LABELS["pl"]["here"])
            await person.receive(2)
            await person.click(LABELS["pl"]["submit"])
            await person.edited()
            return (await person.receive_one(timeout=30)).text

        confirmations = await asyncio.gather(*(second_half(person, n) for n, person in enumerate(residents)))
        try:
            cards = await clerks.receive(6, timeout=120)  # the group's lane: 20 a minute, shared by the replicas
        except AssertionError as missing:  # say where the rest are
            async with store.read() as session:
                rows = (
                    await session.execute(
                        select(
                            OutboxMessage.kind,
                            OutboxMessage.status,
                            OutboxMessage.attempts,
                            OutboxMessage.last_error,
                            OutboxMessage.due_at,
                            OutboxMessage.claimed_by,
                        )
                    )
                ).all()
            group = [(r["method"], r["status"], r["error"]) for r in emulator.requests if str(r["params"].get("chat_id", "")).startswith("-")]
            raise AssertionError(f"{missing}\noutbox: {rows}\ngroup requests: {group}") from None
        await clerks.nothing_more(2.0)
    finally:
        for replica in replicas:
            await replica.stop()
        await runner.cleanup()
    async with store.read() as session:
        cases = (await session.execute(select(Case).order_by(Case.seq))).scalars().all()
    assert [case.seq for case in cases] == [1, 2, 3, 4, 5, 6], "a case was lost or made twice"
    assert sorted(case.description for case in cases) == sorted(f"Proszę o zaświadczenie numer {n}" for n in range(6))
    assert all("VRS-2026-00000" in text for text in confirmations)
    assert len({case.number for case in cases} & {line for card in cards for line in card.text.split() if line.startswith("VRS-")}) == 6
    assert balancer.served[ports[1]] > 0 and balancer.served[ports[0]] > 0, "both replicas served updates"
    # What reached Telegram from both replicas together, in any one second: within the emulator's
    # model of Telegram's ceiling (a burst of 30 on top of 30 a second); one replica alone allows that too.
    sent = sorted(r["at"] for r in emulator.requests if r["status"] == 200 and r["method"].lower() in PACED)
    busiest = max(bisect.bisect_right(sent, at + 1.0) - i for i, at in enumerate(sent))
    limits = emulator.limits
    assert busiest <= limits.global_burst + limits.global_per_second, f"{busiest} messages in one second"
