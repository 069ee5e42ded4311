"""The time, for everything that dates cases and deadlines.

PETENT_FROZEN_TIME (an ISO date-time with zone, e.g. 2026-11-23T09:00:00+02:00) starts the
clock at that moment instead of now, and lets it run on from there: tests and demos use it to
get known deadlines and digests. Never set it in production.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

_FROZEN = os.environ.get("PETENT_FROZEN_TIME")
_START = datetime.fromisoformat(_FROZEN).astimezone(UTC) if _FROZEN else None
_STARTED = time.monotonic()


def now() -> datetime:
    if _START is None:
        return datetime.now(UTC)
    return _START + timedelta(seconds=time.monotonic() - _STARTED)
