"""The application factory: configuration in, a ready Bot and Dispatcher out."""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import signal
import socket
from dataclasses import dataclass
from datetime import timedelta

from aiogram import Bot, Dispatcher
from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage
from aiogram.fsm.storage.memory import SimpleEventIsolation
from aiogram.fsm.strategy import FSMStrategy
from aiogram.types import BotCommandScopeAllPrivateChats
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from aiohttp import web

from bot import metrics
from bot.aio import finish_or_cancel
from bot.config import Config
from bot.limiter import Lanes, RateLimiter, SharedLanes
from bot.middlewares.i18n import ResidentI18nMiddleware
from bot.middlewares.redis_outage import RedisOutageMiddleware
from bot.middlewares.residents import ResidentMiddleware
from bot.middlewares.throttling import ThrottlingMiddleware
from bot.open311 import Open311Service
from bot.services import texts
from bot.services.announcements import Announcements
from bot.services.area_notices import AreaNotices
from bot.services.audits import Audits
from bot.services.broadcaster import Broadcaster, started_after_commit
from bot.services.case_commands import CaseCommands
from bot.services.case_notices import CaseNotices
from bot.services.case_queries import CaseQueries
from bot.services.deadlines import WorkingCalendar
from bot.services.files import FILE_DOWNLOADS, DiskGuard, FileKeeper
from bot.services.groups import ClerkTexts, GroupSender
from bot.services.leader import run_as_leader
from bot.services.metoo import MeToo
from bot.services.news import NewsService
from bot.services.nonconformities import NcCardSender, Nonconformities
from bot.services.notifications import ResidentSender, ResidentTexts
from bot.services.objectives import ObjectiveMeter
from bot.services.outbox import Kind, Outbox, Pool
from bot.services.outbox_payloads import MessagePayload
from bot.services.privacy import DataRights
from bot.services.profiles import ResidentProfiles
from bot.services.projects import ProjectService
from bot.services.proposals import Proposals
from bot.services.quality import QualityService
from bot.services.responsibility import Responsibility
from bot.services.review import ManagementReview
from bot.services.schedule import Schedule
from bot.services.senders import Senders, outbox_senders
from bot.services.storage import FileStore, file_stores
from bot.services.surveys import SurveyService
from bot.services.teams import TeamDirectory
from bot.services.visits import VisitDesk
from bot.services.webhooks import WebhookSender
from bot.settings import LOCALES, LOCALES_DIR, ConfigError
from bot.store.db import Database
from bot.store.fsm import SQLStorage, forget_conversations
from bot.store.migrate import upgrade
from bot.store.models import OutboxMessage
from bot.telegram import create_bot
from bot.web import OPS, build_ops_app, build_web_app, serve
from flows import routers
from flows.cases import navigation_leaves_the_prompt
from flows.common import resident_commands

log = logging.getLogger(__name__)

WEBHOOK_CONCURRENCY = 8  # case events sent at once (to all receivers together)
SCHEDULE_GRACE = 10.0  # seconds a scheduled job under way may take to finish at a stop


@dataclass
class App:
    config: Config
    database: Database
    bot: Bot
    dispatcher: Dispatcher
    i18n: I18n
    outbox: Outbox
    schedule: Schedule
    announcements: Announcements
    teams: TeamDirectory
    open311: Open311Service
    files: FileStore
    quality: QualityService
    projects: ProjectService
    webhooks: WebhookSender | None = None
    disk: DiskGuard | None = None

    async def prepare(self) -> None:
        """Migrate the schema and publish the command menu in every language."""
        await upgrade(self.database)
        await self.set_commands()

    async def set_commands(self) -> None:
        scope = BotCommandScopeAllPrivateChats()
        with self.i18n.context():
            for locale in LOCALES:
                with self.i18n.use_locale(locale):
                    await self.bot.set_my_commands(resident_commands(), scope=scope, language_code=locale)
            with self.i18n.use_locale(self.config.settings.default_locale):
                await self.bot.set_my_commands(resident_commands(), scope=scope)

    def say_who_acts(self) -> None:
        """One line at start-up when a staff group lists nobody in the municipality file."""
        unlisted = self.teams.unlisted()
        if unlisted:
            log.warning(
                "nobody is listed in the municipality file for these staff groups, so anyone in them who may post may act",
                extra={"groups": ", ".join(unlisted)},
            )

    async def run(self, webhook: bool = False) -> None:
        """Long polling, or Telegram's webhook; the web server (webhook, Open311) when configured, and
        the operators' listener (/healthz, /metrics) unless OPS_LISTEN is off.
        Without Redis, only one process may run on the database."""
        if self.config.settings.redis_url:
            await self._run(webhook)
            return
        async with self.database.only_process():
            await self._run(webhook)

    async def _run(self, webhook: bool) -> None:
        await self.prepare()
        settings = self.config.settings
        me = await self.bot.me()  # remembered by the Bot: the visit survey's posters link to its username
        self.say_who_acts()
        _start_up_done()
        await self.announcements.resume()
        redis = getattr(self.dispatcher.storage, "redis", None)  # the replicas' shared store, if any
        sending = asyncio.create_task(self.outbox.run())
        scheduling = asyncio.create_task(
            run_as_leader(redis, self.schedule.run, stopping=self.schedule.stopping)
        )
        picking = asyncio.create_task(self.announcements.pick_up(self.schedule.stopping))
        port, ops = settings.web_listen_port, settings.ops_address
        runners: list[web.AppRunner] = []
        allowed = self.dispatcher.resolve_used_update_types()
        try:
            if port:
                runners.append(await serve(build_web_app(self, webhook), settings.web_host, port))
            if ops is not None:  # last: a probe that finds /healthz finds the public server up too
                runners.append(await serve(build_ops_app(self), *ops, what=OPS))
            if webhook:
                assert settings.webhook_url is not None and settings.webhook_secret is not None
                await self.bot.set_webhook(
                    settings.webhook_url,
                    secret_token=settings.webhook_secret.get_secret_value(),
                    allowed_updates=allowed,
                )
                log.info("webhook set", extra={"bot_id": me.id, "username": me.username})
                await _until_stopped()
            else:
                log.info("polling", extra={"bot_id": me.id, "username": me.username})
                # The session stays open for the shutdown (App.close closes it last): announcements
                # and the outbox finish the sends in hand, which a closed session would fail after
                # Telegram had them (sent again at the next start).
                await self.dispatcher.start_polling(
                    self.bot, allowed_updates=allowed, close_bot_session=False
                )
        finally:
            # Not cancelled: each ends between two pieces of work (Outbox.stop, Schedule.stop); a
            # report or a retention run still going after the grace is cancelled.
            self.outbox.stop()
            self.schedule.stop()
            if not await finish_or_cancel([scheduling, picking], SCHEDULE_GRACE):
                log.warning("scheduled work cut short by the stop")
            await asyncio.gather(
                sending, return_exceptions=True
            )  # the outbox too: both end before close() writes
            for runner in runners:
                await runner.cleanup()

    async def close(self) -> None:
        await self.announcements.close()
        await self.outbox.drain()
        self.outbox.close()
        if self.webhooks is not None:
            await self.webhooks.close()
        await self.dispatcher.storage.close()
        await self.bot.session.close()
        await self.database.dispose()


def _start_up_done() -> None:
    """What start-up built (the imported modules, the app, the catalogs) lives as long as the
    process: collected once, then moved out of the garbage collector's reach (gc.freeze), whose
    full passes otherwise walk all of it again while updates are handled."""
    gc.collect()
    gc.freeze()


async def _until_stopped() -> None:
    """Wait for SIGTERM or SIGINT, as polling does, so that shutdown runs its course."""
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    await stopped.wait()
    log.info("stopping")


def load_i18n(default_locale: str) -> I18n:
    try:
        i18n = I18n(path=LOCALES_DIR, default_locale=default_locale, domain="bot")
    except RuntimeError as exc:  # a .po without its compiled .mo
        raise ConfigError(f"translations are not compiled ({exc}): run `make compile`") from None
    missing = [locale for locale in LOCALES if locale not in i18n.available_locales]
    if missing:
        raise ConfigError(
            f"translations missing for {', '.join(missing)} in {LOCALES_DIR}: run `make compile`"
        )
    return i18n


def _fsm(config: Config, database: Database) -> tuple[BaseStorage, BaseEventIsolation]:
    # A conversation left waiting (a draft with a phone or an address) is forgotten after this.
    ttl = timedelta(hours=config.settings.conversation_ttl_hours)
    if config.settings.redis_url:
        from aiogram.fsm.storage.redis import DefaultKeyBuilder, RedisEventIsolation, RedisStorage

        key_builder = DefaultKeyBuilder(with_destiny=True)
        storage = RedisStorage.from_url(
            config.settings.redis_url, key_builder=key_builder, state_ttl=ttl, data_ttl=ttl
        )
        return storage, RedisEventIsolation(storage.redis)
    return SQLStorage(database, ttl=ttl), SimpleEventIsolation()


@dataclass
class Services:
    """Everything the handlers use, wired once."""

    config: Config
    database: Database
    bot: Bot
    i18n: I18n
    calendar: WorkingCalendar
    teams: TeamDirectory
    outbox: Outbox
    commands: CaseCommands  # every change to a case
    queries: CaseQueries  # every look-up of a case
    notices: CaseNotices  # what a change queues, and the schedule's messages
    clerk_texts: ClerkTexts
    schedule: Schedule
    quality: QualityService
    nonconformities: Nonconformities
    review: ManagementReview
    responsibility: Responsibility
    audits: Audits
    proposals: Proposals
    residents: ResidentSender
    rights: DataRights
    surveys: SurveyService
    webhooks: WebhookSender
    open311: Open311Service
    files: FileStore  # where the municipality keeps the files (FILES_DIR or FILES_S3_*)
    disk: DiskGuard  # is there room for more (FILES_MIN_FREE_BYTES)
    projects: ProjectService


def build_services(config: Config, database: Database | None = None, bot: Bot | None = None) -> Services:
    settings = config.settings
    i18n = load_i18n(settings.default_locale)
    database = database or Database(settings.database_url)
    lanes = Lanes(
        global_per_second=settings.send_rate_per_second, group_per_minute=settings.group_messages_per_minute
    )
    limiter = RateLimiter(lanes, _shared_lanes(settings.redis_url, lanes))
    bot = bot or create_bot(settings.bot_token.get_secret_value(), settings.telegram_api_url, limiter)
    calendar = WorkingCalendar(settings.tz)
    teams = TeamDirectory(config.municipality, bot, settings.comms_chat_id)
    residents = ResidentSender(bot, database)
    clerk_texts = ClerkTexts(i18n, calendar, config, teams)
    groups = GroupSender(bot, database, clerk_texts, teams)
    # Webhooks and file downloads go out in pools of their own: a slow or unreachable receiver, or
    # a burst of downloads, never takes a slot from the messages people wait for.
    pools = [
        Pool(
            frozenset({Kind.WEBHOOK}),
            concurrency=WEBHOOK_CONCURRENCY,
            max_backoff=settings.case_webhook_max_backoff_seconds,
        ),
        Pool(frozenset({Kind.STORE_FILE}), concurrency=FILE_DOWNLOADS, max_backoff=30.0),
    ]
    outbox = Outbox(
        database, settings.instance_name or socket.gethostname(), on_migrated=groups.migrated, pools=pools
    )
    notices = CaseNotices(database, config, teams, ResidentTexts(i18n, calendar, config), clerk_texts)
    commands = CaseCommands(database, calendar, config, teams, notices)
    queries = CaseQueries(database, teams)
    outbox.on_blocked = functools.partial(_resident_blocked, residents, notices, clerk_texts)
    webhooks = WebhookSender(settings.webhook_receivers, settings.case_webhook_timeout_seconds)
    files, stores = file_stores(settings)
    disk = DiskGuard(
        files, int(settings.files_min_free_bytes), functools.partial(_disk_alert, notices, clerk_texts, teams)
    )
    keeper = FileKeeper(bot, database, files, stores, notices, clerk_texts, disk)
    quality = QualityService(database, calendar, config.municipality)
    surveys = SurveyService(database, calendar, settings.secret_key.get_secret_value())
    rights = DataRights(database, config, calendar, notices, surveys)
    projects = ProjectService(database, i18n, config, teams)
    meter = ObjectiveMeter(quality, config.municipality, projects)
    nonconformities = Nonconformities(
        database, calendar, config.municipality, teams, i18n, meter, settings.admin_locale
    )
    outbox.handle_all(
        outbox_senders(
            Senders(residents, groups, webhooks, keeper, NcCardSender(bot, database, nonconformities))
        )
    )
    audits = Audits(
        database,
        calendar,
        teams,
        nonconformities,
        clerk_texts,
        i18n,
        settings.admin_locale,
        settings.audit_sample_size,
    )
    proposals = Proposals(
        database, commands, notices, nonconformities, config.municipality, i18n, settings.admin_locale
    )
    schedule = Schedule(
        bot,
        i18n,
        database,
        queries,
        notices,
        teams,
        calendar,
        config,
        quality,
        rights,
        projects,
        nonconformities,
    )
    responsibility = Responsibility(teams, config.municipality, queries)
    review = ManagementReview(
        quality,
        meter,
        nonconformities,
        audits,
        proposals,
        i18n,
        calendar,
        settings.admin_locale,
        responsibility,
        projects,
    )
    open311 = Open311Service(database, commands, config, calendar, teams, i18n)
    return Services(
        config=config,
        database=database,
        bot=bot,
        i18n=i18n,
        calendar=calendar,
        teams=teams,
        outbox=outbox,
        commands=commands,
        queries=queries,
        notices=notices,
        clerk_texts=clerk_texts,
        schedule=schedule,
        quality=quality,
        nonconformities=nonconformities,
        review=review,
        audits=audits,
        responsibility=responsibility,
        proposals=proposals,
        residents=residents,
        rights=rights,
        surveys=surveys,
        webhooks=webhooks,
        open311=open311,
        files=files,
        disk=disk,
        projects=projects,
    )


def _shared_lanes(redis_url: str | None, lanes: Lanes) -> SharedLanes | None:
    """With Redis, replicas share the overall and the groups' lanes; without it there is one process."""
    if not redis_url or not lanes.global_per_second:
        return None
    from redis.asyncio import Redis

    return SharedLanes(Redis.from_url(redis_url), lanes)


def build_app(config: Config, bot: Bot | None = None) -> App:
    settings = config.settings
    services = build_services(config, bot=bot)
    database, bot, i18n, teams = services.database, services.bot, services.i18n, services.teams
    storage, isolation = _fsm(config, database)
    services.rights.conversations = functools.partial(
        forget_conversations, storage, bot.id
    )  # /forget leaves no conversation behind

    # One conversation per person and forum topic: a clerk can answer two cases at once.
    dispatcher = Dispatcher(
        storage=storage, events_isolation=isolation, fsm_strategy=FSMStrategy.USER_IN_TOPIC
    )
    if isinstance(storage, SQLStorage):  # an update's changes written together (bot.store.fsm)
        dispatcher.update.outer_middleware(
            storage.per_update
        )  # inside aiogram's FSM middleware: under the person's lock
        bot.session.middleware(storage.before_request)
    dispatcher["config"] = config
    dispatcher["profiles"] = ResidentProfiles(database)
    dispatcher["calendar"] = services.calendar
    dispatcher["chats"] = dispatcher["teams"] = teams
    dispatcher["commands"] = services.commands
    dispatcher["queries"] = services.queries
    dispatcher["notices"] = services.notices
    dispatcher["clerk_texts"] = services.clerk_texts
    dispatcher["schedule"] = services.schedule
    dispatcher["quality"] = services.quality
    dispatcher["nonconformities"] = services.nonconformities
    dispatcher["review"] = services.review
    dispatcher["responsibility"] = services.responsibility
    dispatcher["audits"] = services.audits
    dispatcher["proposals"] = services.proposals
    dispatcher["rights"] = services.rights
    dispatcher["surveys"] = services.surveys
    dispatcher["visits"] = VisitDesk(bot, i18n, config, teams)
    dispatcher["news"] = NewsService(database, settings.default_locale)
    dispatcher["broadcaster"] = broadcaster = Broadcaster(
        database,
        bot,
        lease=timedelta(seconds=settings.broadcast_lease_seconds),
        on_blocked=services.residents.mark_blocked,
        worker=services.outbox.worker,
        max_backoff=settings.broadcast_max_backoff_seconds,
    )
    dispatcher["announcements"] = announcements = Announcements(broadcaster, bot, i18n, config, teams)
    dispatcher["projects"] = services.projects
    services.projects.on_fanout = announcements.start  # followers' notices go out as the announcements do
    database.after_commit.append(
        started_after_commit(announcements.start)
    )  # and cases' followers' ("me too")
    dispatcher["metoo"] = MeToo(database, config, services.notices)
    dispatcher["area_notices"] = AreaNotices(database, config, i18n, services.notices)
    dispatcher.update.outer_middleware(ResidentMiddleware(database))
    locales = ResidentI18nMiddleware(i18n, teams.is_staff_chat, settings.admin_locale)
    locales.setup(dispatcher)
    if settings.redis_url:
        RedisOutageMiddleware(database, locales).install(dispatcher)
    dispatcher.message.outer_middleware(ThrottlingMiddleware())
    dispatcher.message.outer_middleware(navigation_leaves_the_prompt)
    flows = routers()
    dispatcher.include_routers(*flows)
    metrics.instrument(dispatcher, flows)
    return App(
        config=config,
        database=database,
        bot=bot,
        dispatcher=dispatcher,
        i18n=i18n,
        outbox=services.outbox,
        schedule=services.schedule,
        announcements=announcements,
        teams=teams,
        open311=services.open311,
        files=services.files,
        quality=services.quality,
        webhooks=services.webhooks,
        disk=services.disk,
        projects=services.projects,
    )


async def _disk_alert(
    notices: CaseNotices, clerk_texts: ClerkTexts, teams: TeamDirectory, free: int, minimum: int
) -> None:
    """The files' disk is nearly full: the default team's group is told (once, see DiskGuard)."""
    text = clerk_texts.notice(
        lambda: _(
            "⚠️ The disk where the municipality keeps the files of cases has only {free} free (the minimum is {minimum}). "
            "New files are not downloaded until there is room: please free space or enlarge the disk. They are kept in Telegram meanwhile."
        ).format(free=texts.file_size(free), minimum=texts.file_size(minimum))
    )
    await notices.post_to_group(teams.chat_of(teams.default), text)


async def _resident_blocked(
    residents: ResidentSender, notices: CaseNotices, clerk_texts: ClerkTexts, row: OutboxMessage
) -> None:
    """Telegram said 403 for a resident: mark them, and tell the clerks of the case what did not arrive."""
    if row.chat_id <= 0:
        return
    await residents.mark_blocked(row.chat_id)
    if row.case_id is not None and (
        row.kind == Kind.COPY or (row.kind == Kind.MESSAGE and MessagePayload.of(row).warn_blocked)
    ):
        await notices.post_about(
            row.case_id, clerk_texts.notice(lambda: _("⚠️ Not delivered: the resident has blocked the bot."))
        )
