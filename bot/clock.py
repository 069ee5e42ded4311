"""The time, for everything that dates cases and deadlines.

PETENT_FROZEN_TIME (an ISO date-time with zone, e.g. 2026-11-23T09:00:00+02:00) starts the
clock at that moment instead of now, and lets it run on from there: tests and demos use it to
get known deadlines and digests. Never set it in production. It is read at the first reading
of the clock, not at import, so a process forked after importing the bot gets its own.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

_origin: tuple[datetime | None, float] | None = None  # (the frozen start or None, monotonic then)


def now() -> datetime:
    global _origin
    if _origin is None:
        frozen = os.environ.get("PETENT_FROZEN_TIME")
        _origin = (datetime.fromisoformat(frozen).astimezone(UTC) if frozen else None, time.monotonic())
    start, started = _origin
    if start is None:
        return datetime.now(UTC)
    return start + timedelta(seconds=time.monotonic() - started)
