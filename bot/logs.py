"""Structured log lines: `time level logger message key=value ...`.

Never log the bot token or what residents write (at any level): pass ids and counts instead.
"""

from __future__ import annotations

import logging
import sys

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        if extras:
            line += " " + " ".join(
                f"{k}={v!r}" if isinstance(v, str) and " " in v else f"{k}={v}" for k, v in extras.items()
            )
        return line


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp's access log and asyncio's debug chatter are noise at INFO.
    for noisy in ("aiohttp.access", "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # httpx logs every request's full URL at INFO: a CASE_WEBHOOKS receiver's URL may carry its
    # credentials (user:password@, ?apikey=). The webhook sender logs the receiver's name instead.
    for library in ("httpx", "httpcore"):
        logging.getLogger(library).setLevel(logging.WARNING)
    # aiosqlite logs every statement with its parameters at DEBUG: what residents wrote, their
    # phone and address. SQLAlchemy's own SQL log hides parameters (bot.store.db).
    logging.getLogger("aiosqlite").setLevel(logging.INFO)
