"""The application factory: configuration in, a ready Bot and Dispatcher out."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from aiogram import Bot, Dispatcher
from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage
from aiogram.fsm.storage.memory import SimpleEventIsolation
from aiogram.fsm.strategy import FSMStrategy
from aiogram.types import BotCommandScopeAllPrivateChats
from aiogram.utils.i18n import I18n

from bot.config import LOCALES, LOCALES_DIR, Config, ConfigError
from bot.limiter import Lanes, RateLimiter
from bot.middlewares.i18n import ResidentI18nMiddleware
from bot.middlewares.residents import ResidentMiddleware
from bot.middlewares.throttling import ThrottlingMiddleware
from bot.services.announcements import Announcements
from bot.services.broadcaster import Broadcaster
from bot.services.cases import CaseService
from bot.services.clerk_desk import ClerkDesk, StaffChats
from bot.services.deadlines import WorkingCalendar
from bot.services.desk import DeskService
from bot.services.news import NewsService
from bot.services.notifications import ResidentNotifier
from bot.services.quality import QualityService
from bot.services.surveys import SurveyService
from bot.store.db import Database
from bot.store.fsm import SQLStorage
from bot.store.migrate import upgrade
from bot.telegram import create_bot
from flows import routers
from flows.common import resident_commands

log = logging.getLogger(__name__)


@dataclass
class App:
    config: Config
    database: Database
    bot: Bot
    dispatcher: Dispatcher
    i18n: I18n
    clerks: ClerkDesk
    announcements: Announcements

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

    async def run_polling(self) -> None:
        await self.prepare()
        me = await self.bot.get_me()
        log.info("polling", extra={"bot_id": me.id, "username": me.username})
        await self.clerks.resume()
        await self.announcements.resume()
        settings = self.config.settings
        schedule = None
        if settings.digest_time is not None or settings.weekly_report is not None:
            schedule = asyncio.create_task(self.clerks.run_schedule())
        try:
            await self.dispatcher.start_polling(self.bot, allowed_updates=self.dispatcher.resolve_used_update_types())
        finally:
            if schedule is not None:
                schedule.cancel()

    async def close(self) -> None:
        await self.announcements.close()
        await self.clerks.drain()
        await self.dispatcher.storage.close()
        await self.bot.session.close()
        await self.database.dispose()


def load_i18n(default_locale: str) -> I18n:
    try:
        i18n = I18n(path=LOCALES_DIR, default_locale=default_locale, domain="bot")
    except RuntimeError as exc:  # a .po without its compiled .mo
        raise ConfigError(f"translations are not compiled ({exc}): run `make compile`") from None
    missing = [locale for locale in LOCALES if locale not in i18n.available_locales]
    if missing:
        raise ConfigError(f"translations missing for {', '.join(missing)} in {LOCALES_DIR}: run `make compile`")
    return i18n


def _fsm(config: Config, database: Database) -> tuple[BaseStorage, BaseEventIsolation]:
    if config.settings.redis_url:
        from aiogram.fsm.storage.redis import DefaultKeyBuilder, RedisEventIsolation, RedisStorage

        storage = RedisStorage.from_url(config.settings.redis_url, key_builder=DefaultKeyBuilder(with_destiny=True))
        return storage, RedisEventIsolation(storage.redis)
    return SQLStorage(database), SimpleEventIsolation()


def build_app(config: Config, bot: Bot | None = None) -> App:
    settings = config.settings
    i18n = load_i18n(settings.default_locale)
    database = Database(settings.database_url)
    limiter = RateLimiter(Lanes(global_per_second=settings.send_rate_per_second, group_per_minute=settings.group_messages_per_minute))
    bot = bot or create_bot(settings.bot_token.get_secret_value(), settings.telegram_api_url, limiter)
    storage, isolation = _fsm(config, database)
    calendar = WorkingCalendar(settings.tz)

    # One conversation per person and forum topic: a clerk can answer two cases at once.
    dispatcher = Dispatcher(storage=storage, events_isolation=isolation, fsm_strategy=FSMStrategy.USER_IN_TOPIC)
    chats = StaffChats(settings.admin_chat_id, settings.comms_chat_id)
    desk = DeskService(database, calendar, config.municipality)
    dispatcher["config"] = config
    dispatcher["db"] = database
    dispatcher["calendar"] = calendar
    dispatcher["chats"] = chats
    dispatcher["desk"] = desk
    dispatcher["cases"] = CaseService(database, calendar, config.municipality, settings.case_prefix, settings.reopen_days)
    dispatcher["notifier"] = ResidentNotifier(bot, i18n, database, calendar, config)
    dispatcher["quality"] = quality = QualityService(database, calendar, config.municipality)
    dispatcher["surveys"] = SurveyService(database, calendar, settings.secret_key.get_secret_value())
    dispatcher["clerks"] = clerks = ClerkDesk(bot, i18n, desk, calendar, config, chats, quality)
    dispatcher["news"] = NewsService(database, settings.default_locale)
    notifier: ResidentNotifier = dispatcher["notifier"]
    dispatcher["broadcaster"] = broadcaster = Broadcaster(
        database, bot, lease=timedelta(seconds=settings.broadcast_lease_seconds), on_blocked=notifier.mark_blocked
    )
    dispatcher["announcements"] = announcements = Announcements(broadcaster, bot, i18n, config, chats)
    dispatcher.update.outer_middleware(ResidentMiddleware(database))
    ResidentI18nMiddleware(i18n, {settings.admin_chat_id, settings.comms_chat_id}, settings.admin_locale).setup(dispatcher)
    dispatcher.message.outer_middleware(ThrottlingMiddleware())
    dispatcher.include_routers(*routers())
    return App(config=config, database=database, bot=bot, dispatcher=dispatcher, i18n=i18n, clerks=clerks, announcements=announcements)
