"""`python -m bot` / `petent`: run | migrate | sandbox."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from bot.config import ConfigError, load_config
from bot.logs import setup_logging

log = logging.getLogger("bot")


async def _run(args: argparse.Namespace) -> None:
    from bot.app import build_app

    config = load_config()
    setup_logging(config.settings.log_level)
    app = build_app(config)
    try:
        await app.run_polling()
    finally:
        await app.close()


async def _migrate(args: argparse.Namespace) -> None:
    from bot.store.db import Database
    from bot.store.migrate import upgrade

    config = load_config()
    setup_logging(config.settings.log_level)
    database = Database(config.settings.database_url)
    try:
        await upgrade(database)
    finally:
        await database.dispose()
    log.info("schema is up to date")


async def _sandbox(args: argparse.Namespace) -> None:
    from bot.sandbox.run import run_sandbox

    setup_logging("WARNING")
    await run_sandbox(args.host, args.port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="petent", description="Petent: a municipal e-service desk in Telegram")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the bot (long polling)").set_defaults(handler=_run)
    sub.add_parser("migrate", help="apply database migrations and exit").set_defaults(handler=_migrate)
    sandbox = sub.add_parser("sandbox", help="the bot, a local Telegram emulator and a web chat page, no Telegram needed")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=int(os.environ.get("SANDBOX_PORT", "8080")))
    sandbox.set_defaults(handler=_sandbox)
    args = parser.parse_args(argv)

    setup_logging()
    try:
        asyncio.run(args.handler(args))
    except ConfigError as exc:
        print(f"petent: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    except OSError as exc:  # e.g. the sandbox's port is taken
        print(f"petent: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
