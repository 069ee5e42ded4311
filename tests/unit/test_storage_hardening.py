"""What a download leaves behind when the bot dies in the middle: a partial copy of a resident's
file that no attachment records, so the retention purge would never delete it."""

from __future__ import annotations

import os
import time
from pathlib import Path

from bot.services.storage import LocalFileStore


async def test_a_download_left_by_a_crash_is_removed_at_start(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path / "files")
    staging = store.staging()
    stale, fresh, other = staging / "download-abc123", staging / "download-def456", staging / "notes.txt"
    for path in (stale, fresh, other):
        path.write_bytes(b"%PDF- a resident's scan")
    two_hours_ago = time.time() - 2 * 3600
    os.utime(stale, (two_hours_ago, two_hours_ago))
    os.utime(other, (two_hours_ago, two_hours_ago))
    await store.check()
    assert (stale.exists(), fresh.exists(), other.exists()) == (
        False,
        True,
        True,
    )  # a download in progress (another replica's) stays
