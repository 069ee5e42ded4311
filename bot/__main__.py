"""`python -m bot` / `petent`: run | migrate | check | report | review | audit-report | backup | restore | sandbox | projects (import, export)."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import sys
from datetime import date
from pathlib import Path

from bot.config import load_config
from bot.logs import setup_logging
from bot.services.backup import BackupError
from bot.settings import LOCALES, ConfigError
from bot.store.db import AnotherProcess

log = logging.getLogger("bot")


async def _run(args: argparse.Namespace) -> None:
    from bot.app import build_app

    config = load_config()
    setup_logging(config.settings.log_level)
    if config.settings.redis_url:
        from bot.store.fsm import check_redis

        await check_redis(config.settings.redis_url)  # a wrong REDIS_URL stops start-up with one line
    from bot.services.storage import check_store, file_stores

    await check_store(
        file_stores(config.settings)[0]
    )  # FILES_DIR writable, or the bucket there: one line naming the setting
    if args.webhook and not config.settings.webhook_url:
        raise ConfigError(
            "--webhook needs WEBHOOK_URL (and WEBHOOK_SECRET): the URL Telegram posts updates to"
        )
    app = build_app(config)
    try:
        await app.run(webhook=config.settings.webhook_url is not None)
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


async def _check(args: argparse.Namespace) -> int:
    """Every problem an operator must fix, one line each, or "ok"; non-zero when any."""
    from bot.services.files import DiskGuard
    from bot.services.selfcheck import problems
    from bot.services.storage import file_stores
    from bot.services.teams import TeamDirectory
    from bot.store.db import Database
    from bot.telegram import create_bot

    config = load_config()
    setup_logging("WARNING")
    settings = config.settings
    database = Database(settings.database_url)
    bot = create_bot(settings.bot_token.get_secret_value(), settings.telegram_api_url)
    redis = None
    if settings.redis_url:
        from redis.asyncio import Redis

        redis = Redis.from_url(settings.redis_url)

    async def no_alert(free: int, minimum: int) -> None:
        """The check reports a full disk; the running bot tells the clerks."""

    disk = DiskGuard(file_stores(settings)[0], int(settings.files_min_free_bytes), no_alert)
    try:
        found = await problems(
            database,
            bot,
            TeamDirectory(config.municipality, bot, settings.comms_chat_id),
            redis=redis,
            redis_url=settings.redis_url,
            disk=disk,
        )
    finally:
        if redis is not None:
            await redis.aclose()
        await bot.session.close()
        await database.dispose()
    print("\n".join(found or ["ok"]))
    return 1 if found else 0


async def _report(args: argparse.Namespace) -> None:
    from bot.app import load_i18n
    from bot.services.deadlines import WorkingCalendar
    from bot.services.quality import Period, QualityService
    from bot.services.report_output import png, report_chart, report_csv, report_xlsx
    from bot.store.db import Database
    from bot.store.migrate import upgrade

    config = load_config()
    setup_logging("WARNING")
    settings = config.settings
    locale = args.locale or settings.admin_locale
    i18n = load_i18n(settings.default_locale)
    database = Database(settings.database_url)
    try:
        await upgrade(database)
        with i18n.context(), i18n.use_locale(locale):
            report = await QualityService(database, WorkingCalendar(settings.tz), config.municipality).report(
                Period(args.start, args.end), locale
            )
            write = {"csv": report_csv, "xlsx": report_xlsx, "png": lambda r: png(report_chart(r))}[
                args.format
            ]
            args.out.write_bytes(write(report))
    finally:
        await database.dispose()
    print(
        f"{args.out}: {args.format.upper()}, {args.start} – {args.end}, {report.received} received, {report.closed} closed"
    )


async def _projects(args: argparse.Namespace) -> int:
    """`petent projects import FILE [--apply]` and `petent projects export FILE` (English, like the rest of the command line)."""
    from bot.app import load_i18n
    from bot.services.project_import import (
        SheetError,
        apply,
        export_rows,
        plan,
        plan_text,
        read_table,
        write_table,
    )
    from bot.services.projects import Actor, ProjectService
    from bot.services.teams import TeamDirectory
    from bot.store.db import Database
    from bot.store.migrate import upgrade

    config = load_config()
    setup_logging("WARNING")
    i18n = load_i18n("en")
    database = Database(config.settings.database_url)
    # Followers' notices are stored as broadcasts: the running bot sends them (it resumes unsent ones at its start).
    teams = TeamDirectory(config.municipality, None, config.settings.comms_chat_id)  # type: ignore[arg-type]
    service = ProjectService(database, i18n, config, teams)
    try:
        await upgrade(database)
        with i18n.context(), i18n.use_locale("en"):
            if args.action == "export":
                args.file.write_bytes(write_table(await export_rows(service), args.file.name))
                print(f"{args.file}: exported")
                return 0
            try:
                table = read_table(args.file.read_bytes(), args.file.name)
            except SheetError as exc:
                print(f"petent: {args.file}: {exc}", file=sys.stderr)
                return 1
            result = await (
                apply(service, table, Actor(None, "petent projects import"))
                if args.apply
                else plan(service, table)
            )
            print(plan_text(result, limit=10**6))
            if result.errors:
                return 1
            if args.apply and result.changes:
                print("Applied.")
            elif result.changes:
                print("Dry run: nothing applied. Run again with --apply to apply.")
            return 0
    finally:
        await database.dispose()


async def _review(args: argparse.Namespace) -> None:
    from bot.app import build_services
    from bot.services.quality import Period
    from bot.store.migrate import upgrade

    config = load_config()
    setup_logging("WARNING")
    services = build_services(config)
    try:
        await upgrade(services.database)
        if args.locale:
            services.review.locale = args.locale
        args.out.write_bytes(await services.review.xlsx(Period(args.start, args.end)))
    finally:
        await services.bot.session.close()
        await services.database.dispose()
    print(f"{args.out}: management review, {args.start} – {args.end}")


async def _audit_report(args: argparse.Namespace) -> int:
    from bot.app import build_services
    from bot.services.nonconformities import NcError
    from bot.store.migrate import upgrade

    config = load_config()
    setup_logging("WARNING")
    services = build_services(config)
    try:
        await upgrade(services.database)
        if args.locale:
            services.audits.locale = args.locale
        try:
            args.out.write_bytes(await services.audits.report(args.audit))
        except NcError as exc:
            with services.i18n.context(), services.i18n.use_locale(services.audits.locale):
                print(f"petent: {exc}", file=sys.stderr)
            return 1
    finally:
        await services.bot.session.close()
        await services.database.dispose()
    print(f"{args.out}: internal audit #{args.audit}")
    return 0


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value}") from None


def _period_problem(start: date, end: date) -> str | None:
    """What the report's limits (quality.check_period, as for /report) say of the period, in
    English like the rest of the command line; None if it is within them."""
    from bot.app import load_i18n
    from bot.services.quality import Period, PeriodError, check_period

    try:
        i18n = load_i18n("en")
    except ConfigError:
        return None  # the report itself names the missing translations
    with i18n.context(), i18n.use_locale("en"):
        try:
            check_period(Period(start, end), date.today())
        except PeriodError as exc:
            return str(exc)
    return None


async def _backup_or_restore(args: argparse.Namespace) -> None:
    from bot.services.backup import backup, restore
    from bot.services.storage import file_stores
    from bot.store.db import Database

    config = load_config()
    setup_logging(config.settings.log_level)
    database = Database(config.settings.database_url)
    store = file_stores(config.settings)[0]
    try:
        if args.command == "backup":
            manifest = await backup(database, store, args.destination)
            print(
                f"petent: backup written to {args.destination}: {sum(manifest.tables.values())} rows, {len(manifest.files)} files"
            )
        else:
            manifest = await restore(database, store, args.source)
            print(
                f"petent: restored the backup of {manifest.created_at}: {sum(manifest.tables.values())} rows, {len(manifest.files)} files, checked"
            )
    finally:
        await database.dispose()


async def _sandbox(args: argparse.Namespace) -> None:
    from bot.sandbox.run import run_sandbox

    setup_logging("WARNING")
    await run_sandbox(args.host, args.port)


def _new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop (libuv, in C) where it is installed, asyncio's own elsewhere: every
    request to Telegram, every trip to aiosqlite's thread wakes the loop, and uvloop's wake-ups,
    timers and sockets cost the bot a fraction of the CPU per update (bench/flow.py)."""
    try:
        import uvloop
    except ImportError:  # not built for this platform (Windows)
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="petent", description="Petent: a municipal e-service desk in Telegram"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run", help="run the bot: long polling, or Telegram's webhook when WEBHOOK_URL is set"
    )
    run.add_argument(
        "--webhook",
        action="store_true",
        help="insist on webhook mode (WEBHOOK_URL and WEBHOOK_SECRET must be set)",
    )
    run.set_defaults(handler=_run, modules=("bot.app",))
    sub.add_parser("migrate", help="apply database migrations and exit").set_defaults(
        handler=_migrate, modules=("bot.store.migrate",)
    )
    check = sub.add_parser(
        "check",
        help="look for what an operator must fix (schema, groups, the bot's rights, Redis, disk): one line each, or ok",
    )
    check.set_defaults(handler=_check, modules=("bot.services.selfcheck",))
    sandbox = sub.add_parser(
        "sandbox", help="the bot, a local Telegram emulator and a web chat page, no Telegram needed"
    )
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=int(os.environ.get("SANDBOX_PORT", "8080")))
    sandbox.set_defaults(handler=_sandbox, modules=("bot.app", "bot.sandbox.run"))
    report = sub.add_parser(
        "report", help="the quality report for a period, as CSV, XLSX or a PNG chart (for audits)"
    )
    report.add_argument(
        "--from", dest="start", type=_day, required=True, metavar="YYYY-MM-DD", help="the first day"
    )
    report.add_argument(
        "--to", dest="end", type=_day, required=True, metavar="YYYY-MM-DD", help="the last day (included)"
    )
    report.add_argument("--format", choices=("csv", "xlsx", "png"), help="default: from the file's extension")
    report.add_argument("--out", type=Path, required=True, metavar="FILE")
    report.add_argument(
        "--locale", choices=LOCALES, help="the language of the headings (default: ADMIN_LOCALE)"
    )
    report.set_defaults(handler=_report, modules=("bot.app", "bot.services.report_output"))
    backup = sub.add_parser(
        "backup", help="write the database and the kept files, with a manifest, to a new folder or a .tar.gz"
    )
    backup.add_argument("destination", type=Path, metavar="DEST")
    backup.set_defaults(handler=_backup_or_restore, modules=("bot.services.backup",))
    restore = sub.add_parser(
        "restore",
        help="bring a backup into an empty database and the file store, then check it against its manifest",
    )
    restore.add_argument("source", type=Path, metavar="SOURCE")
    restore.set_defaults(handler=_backup_or_restore, modules=("bot.services.backup",))
    projects = sub.add_parser(
        "projects",
        help="the projects register: import the spreadsheet (a dry run, then --apply) or export it",
    )
    projects.add_argument("action", choices=("import", "export"))
    projects.add_argument(
        "file", type=Path, metavar="FILE", help="an .xlsx or .csv file in the layout of docs/projects.md"
    )
    projects.add_argument(
        "--apply", action="store_true", help="import: apply the changes (only if the file has no error)"
    )
    projects.set_defaults(handler=_projects, modules=("bot.app", "bot.services.project_import"))
    review = sub.add_parser(
        "review", help="the management review (ISO 9001, 9.3.2) for a period, as one XLSX"
    )
    review.add_argument(
        "--from", dest="start", type=_day, required=True, metavar="YYYY-MM-DD", help="the first day"
    )
    review.add_argument(
        "--to", dest="end", type=_day, required=True, metavar="YYYY-MM-DD", help="the last day (included)"
    )
    review.add_argument("--out", type=Path, required=True, metavar="FILE")
    review.add_argument(
        "--locale", choices=LOCALES, help="the language of the headings (default: ADMIN_LOCALE)"
    )
    review.set_defaults(handler=_review, modules=("bot.app", "bot.services.review"))
    audit = sub.add_parser(
        "audit-report",
        help="an internal audit's report (ISO 9001, 9.2): the sample, the checklist's answers, the findings, as one XLSX",
    )
    audit.add_argument(
        "--audit",
        type=int,
        required=True,
        metavar="NUMBER",
        help="the audit's number (#3 in the quality group: 3)",
    )
    audit.add_argument("--out", type=Path, required=True, metavar="FILE")
    audit.add_argument(
        "--locale", choices=LOCALES, help="the language of the headings (default: ADMIN_LOCALE)"
    )
    audit.set_defaults(handler=_audit_report, modules=("bot.app", "bot.services.audits"))
    args = parser.parse_args(argv)
    if args.command == "projects" and args.file.suffix.lower() not in (".xlsx", ".csv"):
        parser.error("FILE must end in .xlsx or .csv")
    if args.command == "projects" and args.action == "import" and not args.file.is_file():
        parser.error(f"no such file: {args.file}")
    if args.command == "review":
        if args.start > args.end:
            parser.error("--from must not be after --to")
        if problem := _period_problem(args.start, args.end):
            parser.error(f"--from/--to: {problem}")
    if args.command == "report":
        args.format = args.format or args.out.suffix.lstrip(".").lower()
        if args.format not in ("csv", "xlsx", "png"):
            parser.error("--format csv, xlsx or png (or an --out file ending in one of them)")
        if args.start > args.end:
            parser.error("--from must not be after --to")
        if problem := _period_problem(args.start, args.end):
            parser.error(f"--from/--to: {problem}")

    setup_logging()
    try:
        # Imported before the event loop starts (seconds on a busy machine): inside it, a Ctrl-C
        # only cancels the main task, which notices at its first await, once the imports are done.
        # Here it stops the process at once.
        for module in args.modules:
            importlib.import_module(module)
        with asyncio.Runner(loop_factory=_new_event_loop) as runner:
            status = runner.run(args.handler(args))
    except ConfigError as exc:
        print(f"petent: configuration error: {exc}", file=sys.stderr)
        return 2
    except (AnotherProcess, BackupError) as exc:
        print(f"petent: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    except OSError as exc:  # e.g. the sandbox's port is taken
        print(f"petent: {exc}", file=sys.stderr)
        return 1
    return status if isinstance(status, int) else 0


if __name__ == "__main__":
    sys.exit(main())
