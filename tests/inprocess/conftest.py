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
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.app import App, build_app
from bot.sandbox.emulator import Emulator, Limits
from bot.store.db import Database
from flows import routers
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


async def _feed(app: App, emulator: Emulator, handling: asyncio.Lock, failures: list[BaseException]) -> None:
    """Polling without its concurrency: each update the emulator holds goes through the dispatcher in turn.
    (Waiting on the emulator itself, not in a long getUpdates, leaves no request open at the end.)
    An update is handled under `handling`, so that the teardown stops this between two updates:
    a task cancelled inside a SQLite transaction can leave it open (see Outbox.stop)."""
    offset = 0
    allowed = app.dispatcher.resolve_used_update_types()
    while True:
        await emulator.wait_for(lambda first=offset: any(u["update_id"] >= first for u in emulator._updates), 10)
        async with handling:
            for update in await app.bot.get_updates(offset=offset, timeout=0, allowed_updates=allowed):
                offset = update.update_id + 1
                try:
                    await app.dispatcher.feed_update(app.bot, update)
                except Exception as exc:  # a handler's error: the test fails at teardown, with it
                    failures.append(exc)


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
async def bot(emulator: Emulator, database: Database, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[App]:
    """The bot, in process: its dispatcher fed from the emulator, its outbox sending (cases, cards)."""
    monkeypatch.setenv("PETENT_FROZEN_TIME", FROZEN_TIME)
    monkeypatch.setattr("bot.clock._origin", None)  # read again: the clock starts at FROZEN_TIME
    with routers_given_back():
        # No pacing (send_rate_per_second=0): the private chat's one message a second would make
        # every step of a conversation wait; the limiter has tests of its own.
        app = build_app(test_config(database, emulator.url, gather_seconds=1, send_rate_per_second=0))
        await app.set_commands()
        failures: list[BaseException] = []
        handling = asyncio.Lock()
        feeding = asyncio.create_task(_feed(app, emulator, handling, failures))
        sending = asyncio.create_task(app.outbox.run())
        yield app
        async with handling:
            feeding.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeding
        app.outbox.stop()
        await sending
        await app.close()
    if failures:
        raise failures[0]
    refused = [r for r in emulator.requests if r["status"] in (400, 404)]
    assert not refused, f"the bot sent a request Telegram refuses: {refused}"
    assert not emulator.spec.unknown_parameters, f"parameters the Bot API does not document: {emulator.spec.unknown_parameters}"


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
    await submit_case(anna, "pl", "🚧 Zgłoszenie problemu", "Drogi, ulice i transport", "Dziura w jezdni przy szkole")
    return Submitted(anna, clerks, await clerks.receive_one())


# --- clerks' side (register, teams, open311) ---


@pytest.fixture
async def teams(emulator: Emulator, telegram: Telegram, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Desk:
    """The teams' groups and people, and the municipality file routing to them (read by `bot`: request `desk`)."""
    desk = await teams_desk(emulator, telegram, tmp_path / "municipality.toml")
    monkeypatch.setenv("MUNICIPALITY_FILE", str(tmp_path / "municipality.toml"))  # test_config leaves it to the environment
    return desk


@pytest.fixture
async def desk(teams: Desk, bot: App) -> Desk:
    """The bot serving the teams (the teams' file written before the bot reads its configuration)."""
    return teams
