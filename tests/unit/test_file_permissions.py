"""Residents' data on the server's disk is the bot's alone: the SQLite files are created readable
by their owner only (whatever the umask), and downloads for a bucket are staged in a folder made
with mkdtemp (a fresh name, mode 700), never a fixed name in /tmp that another user could make first."""

from __future__ import annotations

import os
import stat
import tempfile
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.services.storage import S3FileStore
from bot.store.db import Database


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_the_database_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    previous = os.umask(0o022)  # a usual umask: files 644 unless the bot says otherwise
    try:
        database = Database(f"sqlite+aiosqlite:///{tmp_path / 'data' / 'petent.db'}")
        async with database.write() as session:
            await session.execute(text("CREATE TABLE t (x TEXT)"))
            await session.execute(text("INSERT INTO t VALUES ('Anna Nowak, +48 600 111 222')"))
        files = sorted(tmp_path.joinpath("data").glob("petent.db*"))
        assert [f.name for f in files] == ["petent.db", "petent.db-shm", "petent.db-wal"]
        assert {f.name: oct(mode(f)) for f in files} == {f.name: "0o600" for f in files}
        await database.dispose()
    finally:
        os.umask(previous)


async def test_database_files_made_before_are_narrowed_to_their_owner(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    for name in ("old.db", "old.db-wal"):
        (tmp_path / name).write_bytes(b"")
        (tmp_path / name).chmod(0o644)
    database = Database(f"sqlite+aiosqlite:///{path}")
    assert (oct(mode(path)), oct(mode(tmp_path / "old.db-wal"))) == ("0o600", "0o600")
    await database.dispose()


def test_the_buckets_staging_folder_is_made_with_mkdtemp(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytest.importorskip("minio")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    squatted = tmp_path / "petent-incoming"
    squatted.mkdir(mode=0o777)  # what another user could prepare under the old fixed name
    store = S3FileStore("http://127.0.0.1:9", "petent", "access", "secret-key-0123456789")
    staging = store.staging()
    assert staging != squatted and staging.parent == tmp_path and staging.name.startswith("petent-incoming-")
    assert oct(mode(staging)) == "0o700"
    assert store.staging() == staging  # one folder for the process
    other = S3FileStore("http://127.0.0.1:9", "petent", "access", "secret-key-0123456789").staging()
    assert other != staging


async def test_downloads_an_earlier_process_left_in_its_own_folder_are_removed_at_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytest.importorskip("minio")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    earlier = Path(tempfile.mkdtemp(prefix="petent-incoming-"))  # a process killed mid-download
    stale, fresh = earlier / "download-abc123", earlier / "download-def456"
    for path in (stale, fresh):
        path.write_bytes(b"%PDF- a resident's scan")
    two_hours_ago = time.time() - 2 * 3600
    os.utime(stale, (two_hours_ago, two_hours_ago))
    store = S3FileStore("http://127.0.0.1:9", "petent", "access", "secret-key-0123456789")
    monkeypatch.setattr(store.client, "bucket_exists", lambda bucket: True)
    await store.check()
    assert (stale.exists(), fresh.exists()) == (False, True)  # another replica's download in progress stays
