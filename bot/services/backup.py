"""Backups that restore: the database and the municipality's copies of files, with a manifest.

`petent backup DEST` writes a folder (or DEST.tar.gz) holding
- `database.sqlite` (SQLite's online backup API: consistent while the bot runs) or
  `database.dump` (`pg_dump --format=custom`: one consistent snapshot of PostgreSQL);
- `files/<storage key>`: every file the store keeps (FILES_DIR or the S3 bucket), read through
  the store and checked against the SHA-256 recorded when it was kept;
- `manifest.json`: when, which schema revision, the row count of every table, every file's key,
  size and SHA-256.

`petent restore SOURCE` brings it back into an empty database and the configured file store,
upgrades the schema if the code is newer, and checks every table's row count and every file's
SHA-256 against the manifest. It refuses a database that holds anything: a restore never
merges into live data.

What was sent before the backup stays sent (the outbox's and the broadcasts' rows keep their
status); what was pending is sent by the restored bot. A row that was being sent at the moment
of the backup is sent again after its lease: the same window as a crash.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sqlalchemy import inspect, select, text
from sqlmodel import SQLModel, col

from bot.services.storage import FileStore
from bot.store.db import Database
from bot.store.migrate import upgrade
from bot.store.models import Attachment, utcnow

log = logging.getLogger(__name__)

FORMAT = 1
MANIFEST = "manifest.json"
SQLITE_FILE, PG_DUMP = "database.sqlite", "database.dump"


class BackupError(Exception):
    """The backup or the restore cannot go on; the message says why, in one line."""


@dataclass
class KeptFile:
    key: str
    size: int
    sha256: str


@dataclass
class Manifest:
    format: int
    created_at: str
    database: str  # sqlite | postgresql
    revision: str | None
    tables: dict[str, int]
    files: list[KeptFile] = field(default_factory=list)

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        try:
            raw = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BackupError(f"{folder}: no {MANIFEST}: not a Petent backup") from None
        if raw.get("format") != FORMAT:
            raise BackupError(f"{folder}: backup format {raw.get('format')}, this version reads {FORMAT}")
        raw["files"] = [KeptFile(**kept) for kept in raw.get("files", [])]
        return cls(**raw)

    def write(self, folder: Path) -> None:
        (folder / MANIFEST).write_text(
            json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )


def _tables() -> list[str]:
    return [table.name for table in SQLModel.metadata.sorted_tables]


async def table_counts(database: Database, tables: list[str] | None = None) -> dict[str, int]:
    """The row count of each table: today's, or those a backup names (its schema may be older than the code)."""
    names = _tables() if tables is None else tables
    if bad := [name for name in names if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name)]:
        raise BackupError(f"the manifest names a table that cannot be: {bad[0]!r}")
    async with database.read() as session:
        return {
            name: (await session.execute(text(f'SELECT count(*) FROM "{name}"'))).scalar_one()
            for name in names
        }


async def _revision(database: Database) -> str | None:
    async with database.read() as session:
        return (await session.execute(text("SELECT version_num FROM alembic_version"))).scalar_one_or_none()


def _libpq(database: Database) -> tuple[str, dict[str, str]]:
    """The database's address for pg_dump and pg_restore, the password in the environment (not
    on a command line that `ps` shows)."""
    url = database.url.set(drivername="postgresql")
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return url.set(password=None).render_as_string(hide_password=False), env


def _run(command: list[str], env: dict[str, str] | None = None) -> None:
    try:
        subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    except FileNotFoundError:
        raise BackupError(f"{command[0]} is not installed (PostgreSQL's client tools)") from None
    except subprocess.CalledProcessError as exc:
        raise BackupError(
            f"{command[0]} failed: {(exc.stderr or '').strip().splitlines()[-1:] or exc.returncode}"
        ) from None


def _sqlite_copy(source: str, target: Path) -> None:
    """SQLite's online backup: a consistent copy while the bot writes (WAL included)."""
    with sqlite3.connect(source) as origin, sqlite3.connect(target) as copy:
        origin.backup(copy)
    copy.close()


async def backup(database: Database, store: FileStore, destination: Path) -> Manifest:
    """Write the backup to `destination` (a new folder, or a .tar.gz file)."""
    packed = destination.name.endswith(".tar.gz")
    if destination.exists():
        raise BackupError(f"{destination} exists already: a backup is written to a new place")
    folder = Path(tempfile.mkdtemp(prefix="petent-backup-")) if packed else destination
    folder.mkdir(parents=True, exist_ok=True)
    try:
        manifest = Manifest(
            format=FORMAT,
            created_at=utcnow().isoformat(),
            database="sqlite" if database.is_sqlite else "postgresql",
            revision=await _revision(database),
            tables=await table_counts(database),
        )
        if database.is_sqlite:
            await asyncio.to_thread(_sqlite_copy, str(database.url.database), folder / SQLITE_FILE)
        else:
            address, env = _libpq(database)
            await asyncio.to_thread(
                _run,
                ["pg_dump", "--format=custom", "--no-owner", "--file", str(folder / PG_DUMP), address],
                env,
            )
        manifest.files = await _copy_files_out(database, store, folder / "files")
        manifest.write(folder)
        if packed:
            with tarfile.open(destination, "w:gz") as archive:
                archive.add(folder, arcname=".")
    finally:
        if packed:
            shutil.rmtree(folder, ignore_errors=True)
    log.info(
        "backup written",
        extra={"to": str(destination), "files": len(manifest.files), "rows": sum(manifest.tables.values())},
    )
    return manifest


async def _copy_files_out(database: Database, store: FileStore, folder: Path) -> list[KeptFile]:
    async with database.read() as session:
        kept = (
            await session.execute(
                select(col(Attachment.storage_key), col(Attachment.sha256)).where(
                    col(Attachment.storage_key).is_not(None)
                )
            )
        ).all()
    files: list[KeptFile] = []
    for key, recorded in sorted({(str(key), recorded) for key, recorded in kept}):
        data = await store.get(key)
        digest = hashlib.sha256(data).hexdigest()
        if recorded and digest != recorded:
            raise BackupError(f"file {key}: its bytes no longer match the SHA-256 recorded when it was kept")
        target = folder / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        files.append(KeptFile(key=key, size=len(data), sha256=digest))
    return files


async def restore(database: Database, store: FileStore, source: Path) -> Manifest:
    """Bring the backup at `source` (a folder or a .tar.gz) into an empty database and the store."""
    if source.is_file():
        folder = Path(tempfile.mkdtemp(prefix="petent-restore-"))
        try:
            with tarfile.open(source, "r:gz") as archive:
                archive.extractall(folder, filter="data")
            return await _restore(database, store, folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return await _restore(database, store, source)


async def _restore(database: Database, store: FileStore, folder: Path) -> Manifest:
    manifest = Manifest.read(folder)
    kind = "sqlite" if database.is_sqlite else "postgresql"
    if manifest.database != kind:
        raise BackupError(
            f"the backup is of {manifest.database}, DATABASE_URL is {kind}: restore into the same kind of database"
        )
    if await _holds_tables(database):
        raise BackupError(
            "DATABASE_URL: the database is not empty; a restore goes into an empty database, never over live data"
        )
    if database.is_sqlite:
        await database.dispose()  # no connection may hold the file while it is replaced
        target = Path(str(database.url.database))
        await asyncio.to_thread(_sqlite_copy, str(folder / SQLITE_FILE), target)
    else:
        address, env = _libpq(database)
        await asyncio.to_thread(
            _run,
            ["pg_restore", "--no-owner", "--exit-on-error", "--dbname", address, str(folder / PG_DUMP)],
            env,
        )
    counts = await table_counts(database, list(manifest.tables))
    if counts != manifest.tables:
        differ = {
            name: (counts.get(name), rows)
            for name, rows in manifest.tables.items()
            if counts.get(name) != rows
        }
        raise BackupError(f"restored row counts differ from the manifest (restored, backed up): {differ}")
    await _copy_files_in(database, store, folder / "files", manifest.files)
    await upgrade(database)  # a backup of an older version: its schema is brought up to date
    log.info(
        "backup restored",
        extra={"from": str(folder), "files": len(manifest.files), "rows": sum(manifest.tables.values())},
    )
    return manifest


async def _holds_tables(database: Database) -> bool:
    async with database.engine.connect() as connection:
        names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    return bool(set(names) & (set(_tables()) | {"alembic_version"}))


async def _copy_files_in(database: Database, store: FileStore, folder: Path, files: list[KeptFile]) -> None:
    async with database.read() as session:
        described: dict[str | None, tuple[str | None, str | None]] = {
            key: (mime, name)
            for key, mime, name in (
                await session.execute(
                    select(
                        col(Attachment.storage_key), col(Attachment.content_type), col(Attachment.file_name)
                    ).where(col(Attachment.storage_key).is_not(None))
                )
            ).all()
        }
    for kept in files:
        path = folder / kept.key
        if hashlib.sha256(path.read_bytes()).hexdigest() != kept.sha256:
            raise BackupError(f"file {kept.key}: damaged in the backup (SHA-256 differs from the manifest)")
        mime, name = described.get(kept.key, (None, None))
        staged = store.staging() / f"restore-{hashlib.sha256(kept.key.encode()).hexdigest()[:16]}"
        shutil.copyfile(path, staged)
        await store.put(kept.key, staged, mime or "application/octet-stream", name)
