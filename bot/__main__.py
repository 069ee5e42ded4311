"""`python -m bot` / `petent`: run | migrate."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from bot.config import Config, ConfigError, load_config
from bot.logs import setup_logging

log = logging.getLogger("bot")


async def _run(config: Config) -> None:
    from bot.app import build_app

    app = build_app(config)
    try:
        await app.run_polling()
    finally:
        await app.close()


async def _migrate(config: Config) -> None:
    from bot.store.db import Database
    from bot.store.migrate import upgrade

    database = Database(config.settings.database_url)
    try:
        await upgrade(database)
    finally:
        await database.dispose()
    log.info("schema is up to date")


COMMANDS = {
    "run": (_run, "run the bot (long polling)"),
    "migrate": (_migrate, "apply database migrations and exit"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="petent", description="Petent: a municipal e-service desk in Telegram")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text)
    args = parser.parse_args(argv)

    try:
        config = load_config()
        setup_logging(config.settings.log_level)
        asyncio.run(COMMANDS[args.command][0](config))
    except ConfigError as exc:
        print(f"petent: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
