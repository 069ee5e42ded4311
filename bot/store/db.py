"""Engine and sessions, one code path for SQLite (embedded) and PostgreSQL.

Sessions are short: open one for a unit of work, never across a call to Telegram.

SQLite allows one writer at a time. A transaction that starts by reading and then writes can
fail at once with "database is locked" instead of waiting, so writing transactions begin with
BEGIN IMMEDIATE (take the write lock first) and are serialised in-process by a lock; readers
use WAL snapshots and never wait.

SQL parameters are what residents wrote (descriptions, addresses, phones): the engines hide
them from error messages and from SQL logging at any level.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy import event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult, Result, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import PoolResetState
from sqlmodel import SQLModel

log = logging.getLogger(__name__)

_BEGIN = "petent_begin"
_BEGUN = "petent_begun"  # False from BEGIN sent until it returned


class Database:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        if self.is_sqlite:
            self._prepare_sqlite_file()
            # A connection is cheap to keep and dear to open (a thread of aiosqlite's, four PRAGMAs):
            # with SQLAlchemy's default of 5 kept, a burst of 100 residents opened and closed 161.
            self.engine: AsyncEngine = create_async_engine(
                url,
                echo=echo,
                hide_parameters=True,
                connect_args={"timeout": 30},
                pool_reset_on_return=None,
                pool_size=20,
                max_overflow=20,
            )  # reset by _on_reset below
            self._configure_sqlite(self.engine)
            writer = self.engine.execution_options(**{_BEGIN: "BEGIN IMMEDIATE"})
            self._write_lock: asyncio.Lock | None = asyncio.Lock()
        else:
            self.engine = create_async_engine(
                url, echo=echo, hide_parameters=True, pool_size=10, max_overflow=10, pool_pre_ping=True
            )
            writer = self.engine
            self._write_lock = None
        self._reader = async_sessionmaker(self.engine, expire_on_commit=False)
        single = self.engine.execution_options(**{_BEGIN: None}) if self.is_sqlite else self.engine
        self._single_reader = async_sessionmaker(single, expire_on_commit=False)
        # Awaited before each write transaction begins: the conversations an update changed are
        # written first, so they keep their order against its other writes (bot.store.fsm).
        self.before_write: list[Callable[[], Awaitable[None]]] = []
        # Called with the session once a write transaction has committed (the outbox wakes its
        # senders for the rows it added: bot.services.outbox).
        self.after_commit: list[Callable[[AsyncSession], None]] = []
        self._writer = async_sessionmaker(writer, expire_on_commit=False)

    def _prepare_sqlite_file(self) -> None:
        """The database's folder, and the file itself readable by its owner only: residents' data.
        SQLite gives the -wal and -shm files the database file's permissions; ones made before
        (by an earlier version, under a looser umask) are narrowed to the owner too."""
        database = self.url.database
        if not database or database == ":memory:" or database.startswith("file:"):
            return
        path = Path(database)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))  # an empty file is an empty database
        for file in (
            path,
            path.with_name(path.name + "-wal"),
            path.with_name(path.name + "-shm"),
            path.with_name(path.name + "-journal"),
        ):
            if file.exists() and file.stat().st_mode & 0o077:
                file.chmod(0o600)

    @staticmethod
    def _configure_sqlite(engine: AsyncEngine) -> None:
        sync_engine = engine.sync_engine

        @event.listens_for(sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy (not the driver) issue BEGIN, so we choose its flavour.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        # Each call into aiosqlite is a trip to its thread and back through the event loop, which
        # costs the bot more CPU than SQLite's work: BEGIN goes to the driver directly (one trip;
        # through a cursor of SQLAlchemy's it takes three), and a connection coming back to the
        # pool is rolled back only if it may be in a transaction (not after every COMMIT).
        #
        # "May be": aiosqlite runs a call in its thread even when the caller was cancelled while
        # waiting for it, so a connection whose BEGIN was cancelled reads as outside a transaction
        # until the BEGIN runs, later. Such a connection is rolled back (the ROLLBACK queues behind
        # the BEGIN), as is any whose BEGIN did not return normally; a statement cancelled inside a
        # transaction leaves it in one, which in_transaction shows.
        @event.listens_for(sync_engine, "begin")
        def _on_begin(connection: Any) -> None:
            begin = connection.get_execution_options().get(_BEGIN, "BEGIN")
            if begin is None:  # read_one: its one statement runs on its own, nothing to begin or roll back
                return
            fairy = connection.connection
            fairy.info[_BEGUN] = False
            fairy.dbapi_connection.run_async(lambda driver: driver.execute(begin))
            fairy.info[_BEGUN] = True

        @event.listens_for(sync_engine, "reset")
        def _on_reset(dbapi_connection: Any, record: Any, state: PoolResetState) -> None:
            if not state.asyncio_safe:  # garbage collected: the pool drops it, nothing can be awaited
                return
            try:
                clean = (
                    record is None or record.info.get(_BEGUN, True)
                ) and not dbapi_connection.driver_connection.in_transaction
            except ValueError:  # aiosqlite's connection already closed: nothing to roll back
                return
            if not clean:
                dbapi_connection.rollback()
                if record is not None:
                    record.info[_BEGUN] = True

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reading (it may still write on PostgreSQL, but should not)."""
        async with self._reader() as session:
            yield session

    @asynccontextmanager
    async def read_one(self) -> AsyncIterator[AsyncSession]:
        """A session for one SELECT (one row by its key, on every update): on SQLite it runs
        without BEGIN and ROLLBACK, a statement being consistent by itself, two trips to
        aiosqlite's thread fewer. Statements that must agree with each other use `read`."""
        async with self._single_reader() as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A transaction that commits on success and rolls back on any exception."""
        for hook in self.before_write:
            await hook()
        if self._write_lock is None:
            async with self._writer() as session, session.begin():
                yield session
        else:
            async with self._write_lock, self._writer() as session, session.begin():
                yield session
        for on_commit in self.after_commit:
            try:
                on_commit(session)
            except Exception:  # committed all the same: the caller must not think otherwise (and retry)
                log.exception("after-commit hook failed")

    async def dispose(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def only_process(self) -> AsyncIterator[None]:
        """Hold this database for one bot process, or raise AnotherProcess.

        Without Redis, conversations and their locks live in this process (bot.store.fsm): a
        second process on the same database would keep its own, stale copy. The hold ends with the
        process however it ends (kill -9 included): a PostgreSQL session's advisory lock, an
        flock on SQLite's file."""
        if self.is_sqlite:
            import fcntl

            path = Path(f"{self.url.database or 'memory'}.lock")
            with path.open("a") as lock_file:  # noqa: ASYNC230  # once, at start, before serving
                try:
                    fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise AnotherProcess(str(self.url.database)) from None
                yield
            return
        async with self.engine.connect() as connection:
            if not await connection.scalar(text("SELECT pg_try_advisory_lock(7424502)")):
                raise AnotherProcess(self.url.render_as_string(hide_password=True))
            yield


class AnotherProcess(Exception):
    def __str__(self) -> str:
        return (
            f"another Petent process is running on the database {self.args[0]}: without REDIS_URL only one may run; "
            "stop the other, or set REDIS_URL for several replicas"
        )


def insert_for(session: AsyncSession, table: Any) -> Any:
    """INSERT with ON CONFLICT support for the session's database (SQLite or PostgreSQL)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def rowcount(result: Result[Any]) -> int:
    """The rows an UPDATE or DELETE matched (session.execute types every result as a plain Result)."""
    return cast(CursorResult[Any], result).rowcount or 0


def table_of(model: type[SQLModel]) -> sa.Table:
    """A table model's Table, for bulk statements (SQLModel does not type `__table__`)."""
    return cast(sa.Table, model.__table__)  # type: ignore[attr-defined]
