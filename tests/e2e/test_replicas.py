"""Two replicas behind one webhook URL, on PostgreSQL and Redis: one is killed with kill -9 in the
middle of residents' conversations; no conversation is lost, no case is made twice, and the two
together never go over Telegram's limits.

The run costs a minute or more (two bot processes, six residents, the group's 20 cards a minute),
so it happens once per test session: the `run` fixture takes its fixtures (the balancer, the
replicas, the residents half-way through) and keeps what a test asserts on (`Outcome`, plain
data), shared by the xdist workers through a file under a lock; each test checks one behaviour."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import fcntl
import itertools
import json
import re
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select
from sqlmodel import col

from bot.limiter import PACED_METHODS
from bot.sandbox.emulator import Emulator
from bot.store.db import Database
from bot.store.models import Case, OutboxMessage
from tests.conftest import (
    ADMIN_CHAT_ID,
    COMMS_CHAT_ID,
    SECRET_KEY,
    TEST_DATABASE_URL,
    TEST_REDIS_URL,
    TOKEN,
    _create_pg_database,
    _drop_pg_database,
)
from tests.e2e.conftest import BotProcess
from tests.support.driver import Person, Telegram
from tests.support.helpers import LABELS, choose, free_port, onboard, served_emulator
from tests.support.helpers import WEBHOOK_SECRET as SECRET

PACED = {method.lower() for method in PACED_METHODS}
RESIDENTS = 6
NUMBER = re.compile(r"VRS-\d{4}-\d{6}")

pytestmark = pytest.mark.skipif(
    not (TEST_DATABASE_URL and TEST_REDIS_URL), reason="replicas need PostgreSQL and Redis"
)


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
                    f"http://127.0.0.1:{port}{request.path}",
                    data=await request.read(),
                    headers={**headers, "Content-Type": "application/json"},
                ) as answer,
            ):
                self.served[port] += 1
                return web.Response(status=answer.status, body=await answer.read())
        except aiohttp.ClientError:
            return web.Response(status=502)


@dataclass
class Outcome:
    """What the run left, as plain data (it crosses from one xdist worker to the others)."""

    cases: list[list[Any]]  # [seq, number, description], in order of seq
    confirmations: list[str]
    cards: list[str]
    more_for_the_clerks: list[str]  # what reached the clerks' group after the six cards
    served: list[int]  # updates each replica served
    busiest_second: int  # paced requests of both replicas together in the busiest second
    ceiling: float  # the emulator's model of Telegram's: a burst on top of the rate a second


# --- the pieces of the run -----------------------------------------------------------------


@contextlib.asynccontextmanager
async def postgresql() -> AsyncIterator[Database]:
    """A PostgreSQL database of the run's own, dropped afterwards."""
    url = await _create_pg_database()
    database = Database(url)
    try:
        yield database
    finally:
        await database.dispose()
        await _drop_pg_database(url)


@contextlib.asynccontextmanager
async def load_balancer() -> AsyncIterator[tuple[RoundRobin, int, list[int]]]:
    """The balancer on a port of its own, in front of two replica ports: (it, its port, theirs)."""
    proxy_port, ports = free_port(), [free_port(), free_port()]
    balancer = RoundRobin(ports)
    proxy = web.Application()
    proxy.router.add_post("/{path:.*}", balancer.forward)
    runner = web.AppRunner(proxy, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", proxy_port).start()
    try:
        yield balancer, proxy_port, ports
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def two_replicas(
    emulator: Emulator, store: Database, proxy_port: int, ports: list[int], logs: Path
) -> AsyncIterator[list[BotProcess]]:
    """Two bot processes sharing the database and Redis, behind the balancer's webhook URL."""
    from redis.asyncio import Redis

    assert TEST_REDIS_URL
    async with Redis.from_url(TEST_REDIS_URL) as redis:
        await redis.flushdb()  # this worker's database: no lock left by an earlier run's kill -9
    shared = {
        "BOT_TOKEN": TOKEN,
        "ADMIN_CHAT_ID": str(ADMIN_CHAT_ID),
        "COMMS_CHAT_ID": str(COMMS_CHAT_ID),
        "DATABASE_URL": store.engine.url.render_as_string(hide_password=False),
        "SECRET_KEY": SECRET_KEY,
        "GATHER_SECONDS": "1",
        "REDIS_URL": TEST_REDIS_URL,
        "WEBHOOK_URL": f"http://127.0.0.1:{proxy_port}/hook",
        "WEBHOOK_SECRET": SECRET,
    }
    replicas = [
        BotProcess(
            emulator,
            {**shared, "WEB_PORT": str(port), "INSTANCE_NAME": f"replica-{i}"},
            logs / f"replica-{i}.log",
        )
        for i, port in enumerate(ports)
    ]
    try:
        for replica in replicas:
            await replica.start()
        yield replicas
    finally:
        for replica in replicas:
            await replica.stop()


async def halfway(telegram: Telegram, emulator: Emulator) -> tuple[list[Person], Person]:
    """Six residents, each asked for the description of a request (the conversation held in
    Redis), and Ona reading the clerks' group."""
    ona = await telegram.person("Ona", language_code="lt")
    emulator.chats[ADMIN_CHAT_ID].members.add(ona.user["id"])
    residents = [await telegram.resident(f"R{i}", language_code="pl") for i in range(RESIDENTS)]
    for person in residents:
        await onboard(person, "pl")

    async def first_half(person: Person) -> None:
        await person.send(LABELS["pl"]["new"])
        await person.receive_one()
        await choose(person, "📄 Wniosek")
        await choose(person, LABELS["pl"]["whole"])
        await choose(person, "Inne sprawy")

    await asyncio.gather(*(first_half(person) for person in residents))
    return residents, ona.in_chat(ADMIN_CHAT_ID)


async def locks_released() -> None:
    """A replica killed while it holds a conversation's lock leaves it to its 60-second timeout (the
    person waits, nothing is lost): kill once the answers' handlers have let go."""
    from redis.asyncio import Redis

    assert TEST_REDIS_URL
    async with Redis.from_url(TEST_REDIS_URL) as redis:
        for _ in range(100):
            if not [key async for key in redis.scan_iter(match="*lock*")]:
                return
            await asyncio.sleep(0.05)


async def second_half(person: Person, n: int) -> str:
    """The rest of the request, to the confirmation (returned)."""
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


async def _run(logs: Path) -> Outcome:
    async with (
        postgresql() as store,
        served_emulator() as emulator,
        load_balancer() as (balancer, proxy_port, ports),
    ):
        telegram = Telegram(emulator)
        try:
            async with two_replicas(emulator, store, proxy_port, ports, logs) as replicas:
                residents, clerks = await halfway(telegram, emulator)
                await locks_released()
                await replicas[0].kill()  # mid-conversation: every resident is asked for a description
                confirmations = await asyncio.gather(
                    *(second_half(person, n) for n, person in enumerate(residents))
                )
                try:
                    cards = await clerks.receive(
                        RESIDENTS, timeout=120
                    )  # the group's lane: 20 a minute, shared by the replicas
                except AssertionError as missing:  # say where the rest are
                    async with store.read() as session:
                        rows = (
                            await session.execute(
                                select(
                                    col(OutboxMessage.kind),
                                    col(OutboxMessage.status),
                                    col(OutboxMessage.attempts),
                                    col(OutboxMessage.last_error),
                                )
                            )
                        ).all()
                    group = [
                        (r["method"], r["status"], r["error"])
                        for r in emulator.requests
                        if str(r["params"].get("chat_id", "")).startswith("-")
                    ]
                    raise AssertionError(f"{missing}\noutbox: {rows}\ngroup requests: {group}") from None
                await asyncio.sleep(2.0)  # other processes: no barrier reaches into them (docs/testing.md)
                more = [message.text for message in await clerks.drain()]
        finally:
            await telegram.close()
        async with store.read() as session:
            cases = [
                [case.seq, case.number, case.description]
                for case in (await session.execute(select(Case).order_by(col(Case.seq)))).scalars()
            ]
        sent = sorted(
            r["at"] for r in emulator.requests if r["status"] == 200 and r["method"].lower() in PACED
        )
        return Outcome(
            cases=cases,
            confirmations=list(confirmations),
            cards=[card.text for card in cards],
            more_for_the_clerks=more,
            served=[balancer.served[port] for port in ports],
            busiest_second=max(bisect.bisect_right(sent, at + 1.0) - i for i, at in enumerate(sent)),
            ceiling=emulator.limits.global_burst + emulator.limits.global_per_second,
        )


@pytest.fixture
def shared(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Iterator[Path]:
    """The file the xdist workers share the outcome through, held under a lock while one makes it."""
    root = tmp_path_factory.getbasetemp() if worker_id == "master" else tmp_path_factory.getbasetemp().parent
    with open(root / "replicas-outcome.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield root / "replicas-outcome.json"
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _kept(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


def _keep(path: Path, kept: dict[str, Any]) -> None:
    path.write_text(json.dumps(kept))


@pytest.fixture
async def run(shared: Path, tmp_path: Path) -> Outcome:
    """The run, once per test session (the first test to ask makes it; a failure is kept too, so
    that the others fail with it rather than run it again)."""
    kept = _kept(shared)
    if kept is None:
        try:
            outcome = await _run(tmp_path)
        except BaseException as failure:
            _keep(shared, {"failure": f"{type(failure).__name__}: {failure}"})
            raise
        _keep(shared, asdict(outcome))
        return outcome
    if "failure" in kept:
        raise AssertionError(f"the replicas' run failed: {kept['failure']}")
    return Outcome(**kept)


# --- one behaviour a test -------------------------------------------------------------------


async def test_no_case_is_lost_or_made_twice(run: Outcome) -> None:
    assert [seq for seq, _, _ in run.cases] == list(range(1, RESIDENTS + 1)), "a case was lost or made twice"
    assert sorted(description for _, _, description in run.cases) == sorted(
        f"Proszę o zaświadczenie numer {n}" for n in range(RESIDENTS)
    )


async def test_every_resident_is_told_the_number_of_their_case(run: Outcome) -> None:
    told = sorted(found.group() for text in run.confirmations if (found := NUMBER.search(text)))
    assert told == sorted(number for _, number, _ in run.cases)


async def test_every_case_reaches_the_clerks_once(run: Outcome) -> None:
    on_cards = sorted(found.group() for text in run.cards if (found := NUMBER.search(text.splitlines()[0])))
    assert on_cards == sorted(number for _, number, _ in run.cases)
    assert run.more_for_the_clerks == []


async def test_both_replicas_served_updates(run: Outcome) -> None:
    assert all(served > 0 for served in run.served) and len(run.served) == 2, run.served


async def test_together_they_keep_within_telegrams_limits(run: Outcome) -> None:
    """What reached Telegram from both replicas together, in any one second: within the emulator's
    model of Telegram's ceiling (a burst of 30 on top of 30 a second); one replica alone allows that too."""
    assert run.busiest_second <= run.ceiling, f"{run.busiest_second} messages in one second"
