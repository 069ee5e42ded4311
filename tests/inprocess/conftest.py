"""The fast tier: the bot's real Dispatcher (`build_app`) in the test's own process, without
Telegram's pacing (in the bot and in the emulator), fed the
updates the emulator holds (`Dispatcher.feed_update`, one at a time, as polling does), its Bot's
session pointed at the emulator served on 127.0.0.1. People are driven with the same
`bot.sandbox.driver` as end to end, so a test reads alike in both tiers.

For flow logic: what a person sees after what they did. What needs a real process (restarts,
kill -9, replicas, the web server, signals) stays in tests/e2e."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, or_, select
from sqlmodel import col

from bot.app import App, build_app
from bot.sandbox.emulator import Emulator, Limits
from bot.services.outbox import UNFINISHED
from bot.store.db import Database
from bot.store.models import OutboxMessage, utcnow
from flows import routers
from flows.common import acknowledgements_pending
from tests.factories import test_config
from tests.support.driver import Person, Received, Telegram
from tests.support.helpers import Desk, onboard, served_emulator, submit_case, teams_desk

FROZEN_TIME = "2026-11-23T09:00:00+02:00"  # a Monday, as end to end


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with served_emulator(Limits(enabled=False)) as emulator:  # pacing is tested in unit and end to end
        yield emulator


@pytest.fixture
async def telegram(emulator: Emulator) -> AsyncIterator[Telegram]:
    telegram = Telegram(emulator)
    yield telegram
    await telegram.close()


class Feeder:
    """Polling without its concurrency: each update the emulator holds goes through the dispatcher
    in turn. (Waiting on the emulator itself, not in a long getUpdates, leaves no request open at
    the end.) An update is handled under `handling`, so that the teardown stops this between two
    updates: a task cancelled inside a SQLite transaction can leave it open (see Outbox.stop)."""

    def __init__(self, app: App, emulator: Emulator) -> None:
        self.app = app
        self.emulator = emulator
        self.offset = 0  # every update below it has been handled, or is being handled
        self.handling = asyncio.Lock()
        self.failures: list[BaseException] = []

    def _waiting(self) -> bool:
        return bool(self.emulator._redeliveries) or any(
            u["update_id"] >= self.offset for u in self.emulator._updates
        )

    async def run(self) -> None:
        allowed = self.app.dispatcher.resolve_used_update_types()
        while True:
            await self.emulator.wait_for(self._waiting, 10)
            async with self.handling:
                for update in await self.app.bot.get_updates(
                    offset=self.offset, timeout=0, allowed_updates=allowed
                ):
                    self.offset = max(self.offset, update.update_id + 1)
                    try:
                        await self.app.dispatcher.feed_update(self.app.bot, update)
                    except Exception as exc:  # a handler's error: the test fails at teardown, with it
                        self.failures.append(exc)

    def caught_up(self) -> bool:
        """Every update the emulator holds has been handled: none waits, none is being handled."""
        return not self.handling.locked() and not self._waiting()


# An unfinished outbox row due within this many seconds is "still to come" for `settled`: the
# outbox's first retry (0.5 s). A row due later is scheduled on purpose (what a resident adds is
# gathered for GATHER_QUIET_SECONDS, at least 1 s here), and the barrier does not wait for it.
SETTLE_HORIZON = 0.5


async def _outbox_due_soon(app: App) -> bool:
    async with app.database.read() as session:
        due = (
            select(func.count())
            .select_from(OutboxMessage)
            .where(
                col(OutboxMessage.status).in_(UNFINISHED),
                or_(
                    col(OutboxMessage.due_at).is_(None),
                    col(OutboxMessage.due_at) <= utcnow() + timedelta(seconds=SETTLE_HORIZON),
                ),
            )
        )
        return bool(await session.scalar(due))


async def settled(app: App, feeder: Feeder, timeout: float = 15.0) -> None:
    """The deterministic barrier behind `Person.nothing_more` in process: the dispatcher has handled
    every update fed to it, no acknowledgement (an album's, a gathered message's) waits to be sent,
    no announcement is being sent, and the outbox has nothing unfinished that is due within
    SETTLE_HORIZON. Whatever the bot was going to send by then is in the emulator already."""
    deadline = time.monotonic() + timeout
    while True:
        idle = feeder.caught_up() and not acknowledgements_pending() and not app.announcements._running
        if (
            idle and not await _outbox_due_soon(app) and feeder.caught_up()
        ):  # caught up still, after reading the store
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the bot did not settle within {timeout} s")
        await asyncio.sleep(0.01)


@contextlib.contextmanager
def routers_given_back() -> Iterator[None]:
    """The flows' routers are module-level: build_app attaches them to its dispatcher and adds a
    middleware to each (metrics). Undone afterwards, so that the next test's app can have them."""
    flows = routers()
    observers = [observer for router in flows for observer in router.observers.values()]
    saved = [(list(o.middleware._middlewares), list(o.outer_middleware._middlewares)) for o in observers]
    try:
        yield
    finally:
        for observer, (inner, outer) in zip(observers, saved, strict=True):
            observer.middleware._middlewares[:] = inner
            observer.outer_middleware._middlewares[:] = outer
        for router in flows:
            router._parent_router = None


@pytest.fixture
def expected_errors() -> list[str]:
    """Refusals by Telegram a test provokes on purpose (a part of the error's text), as end to end's `BotProcess.expected_errors`."""
    return []


@pytest.fixture
async def bot(
    emulator: Emulator,
    telegram: Telegram,
    database: Database,
    expected_errors: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[App]:
    """The bot, in process: its dispatcher fed from the emulator, its outbox sending (cases, cards)."""
    monkeypatch.setenv("PETENT_FROZEN_TIME", FROZEN_TIME)
    monkeypatch.setattr("bot.clock._origin", None)  # read again: the clock starts at FROZEN_TIME
    with routers_given_back():
        # No pacing (send_rate_per_second=0): the private chat's one message a second would make
        # every step of a conversation wait; the limiter has tests of its own.
        app = build_app(test_config(database, emulator.url, gather_seconds=1, send_rate_per_second=0))
        await app.set_commands()
        feeder = Feeder(app, emulator)
        feeding = asyncio.create_task(feeder.run())
        sending = asyncio.create_task(app.outbox.run())
        telegram.settle = functools.partial(settled, app, feeder)
        yield app
        telegram.settle = None
        async with feeder.handling:
            feeding.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeding
        app.outbox.stop()
        await sending
        await app.close()
    if feeder.failures:
        raise feeder.failures[0]
    refused = [
        r
        for r in emulator.requests
        if r["status"] in (400, 404) and not any(e in r["error"] for e in expected_errors)
    ]
    assert not refused, f"the bot sent a request Telegram refuses: {refused}"
    assert not emulator.spec.unknown_parameters, (
        f"parameters the Bot API does not document: {emulator.spec.unknown_parameters}"
    )


@pytest.fixture
def store(database: Database) -> Database:
    """The bot's database, for assertions on what it stored (named as end to end)."""
    return database


# --- a submitted case (the desk, satisfaction) ---


@dataclass
class Submitted:
    anna: Person
    clerks: Person
    card: Received

    @property
    def thread(self) -> int:
        assert self.card.thread_id is not None
        return self.card.thread_id


@pytest.fixture
async def submitted(bot: App, telegram: Telegram, clerks: Person) -> Submitted:
    """Anna's report of a pothole, in Polish: its card in the clerks' forum topic."""
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    await submit_case(
        anna, "pl", "🚧 Zgłoszenie problemu", "Drogi, ulice i transport", "Dziura w jezdni przy szkole"
    )
    return Submitted(anna, clerks, await clerks.receive_one())


# --- clerks' side (register, teams, open311) ---


@pytest.fixture
async def teams(
    emulator: Emulator, telegram: Telegram, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Desk:
    """The teams' groups and people, and the municipality file routing to them (read by `bot`: request `desk`)."""
    desk = await teams_desk(emulator, telegram, tmp_path / "municipality.toml")
    monkeypatch.setenv(
        "MUNICIPALITY_FILE", str(tmp_path / "municipality.toml")
    )  # test_config leaves it to the environment
    return desk


@pytest.fixture
async def desk(teams: Desk, bot: App) -> Desk:
    """The bot serving the teams (the teams' file written before the bot reads its configuration)."""
    return teams
