"""The bot's web servers: the public one with Telegram's webhook (in webhook mode), the Open311
GeoReport v2 API (bot.open311, under /open311/v2/) and the projects' open data (bot.open_projects:
/projects, /projects.json, /projects.csv); and the operators' listener (OPS_LISTEN, loopback by
default) with /healthz and /metrics.

The webhook answers Telegram only once the update is handled (not in the background): a replica
that dies mid-update never said 200, so Telegram delivers the update again, to whichever replica
answers. The secret token Telegram sends with every request is checked; other requests get 401.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from bot import clock, metrics
from bot.open311 import Open311Api
from bot.open_projects import OpenProjects
from bot.services.quality import LAST_DAYS_DEFAULT, Period
from bot.services.report_output import service_quality_page
from bot.services.selfcheck import problems
from bot.services.texts import page_locale
from bot.settings import ConfigError, same_secret
from bot.telegram import single_attempt

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

OPS = "ops listener"  # /healthz and /metrics (build_ops_app), in the log and in errors
TELEGRAM_CHECK_EVERY = 30.0  # seconds a getMe answer is trusted: probes must not hammer Telegram
CHECK_TIMEOUT = 5.0


class Health:
    """Is this replica able to serve? Database, Redis (if used) and Telegram reachable, room on the
    files' disk (FILES_MIN_FREE_BYTES); the outbox's lag is reported alongside (it is shared by all
    replicas, so it does not fail one)."""

    def __init__(self, app: App) -> None:
        self.app = app
        self._telegram: tuple[float, str] = (float("-inf"), "unknown")

    async def checks(self) -> dict[str, Any]:
        result: dict[str, Any] = {"database": await self._probe(self._database())}
        redis = getattr(self.app.dispatcher.storage, "redis", None)
        if redis is not None:
            result["redis"] = await self._probe(redis.ping())
        result["telegram"] = await self._telegram_state()
        if self.app.disk is not None:
            result["files"] = (
                await self.app.disk.problem() or "ok"
            )  # a nearly full disk: downloads wait, say so
        depth, age = await metrics.outbox_figures(self.app.database)
        result["outbox"] = {"pending": depth, "oldest_seconds": round(age, 1)}
        return result

    async def _database(self) -> None:
        async with self.app.database.read() as session:
            await session.execute(text("SELECT 1"))

    @staticmethod
    async def _probe(check: Any) -> str:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                await check
        except Exception as exc:  # whatever the reason, this replica cannot serve now
            return f"down: {type(exc).__name__}"
        return "ok"

    async def _telegram_state(self) -> str:
        checked, state = self._telegram
        if time.monotonic() - checked > TELEGRAM_CHECK_EVERY:
            with single_attempt():
                state = await self._probe(self.app.bot.get_me())
            self._telegram = (time.monotonic(), state)
        return state


class WebhookHandler(SimpleRequestHandler):
    """Telegram's webhook. An update that fails with an exception is logged and acknowledged, as
    polling does: Telegram would otherwise deliver it again and again. A replica that dies never
    acknowledges, so its update is delivered again."""

    def verify_secret(self, telegram_secret_token: str, bot: Any) -> bool:
        """Telegram's secret token: anything else (nothing, a wrong one, one not in ASCII) is a 401."""
        return self.secret_token is None or same_secret(telegram_secret_token, self.secret_token)

    async def _handle_request(self, bot: Any, request: web.Request) -> web.Response:
        try:
            return await super()._handle_request(bot, request)
        except Exception:
            log.exception("update failed")
            return web.json_response({})


def add_ops_routes(router: web.UrlDispatcher, app: App) -> None:
    """/healthz for probes and load balancers (?full: the problems `petent check` finds), /metrics for Prometheus: on the operators' listener
    (OPS_LISTEN), never on the public web server (the outbox's depth, the teams' open cases and the
    health of the database are the municipality's business); beside the sandbox's page in the demo."""
    settings = app.config.settings
    health = Health(app)

    async def healthz(request: web.Request) -> web.Response:
        if "full" in request.query:  # what `petent check` finds: one line per problem, or "ok"
            redis = getattr(app.dispatcher.storage, "redis", None)
            found = await problems(
                app.database, app.bot, app.teams, redis=redis, redis_url=settings.redis_url, disk=app.disk
            )
            return web.Response(text="\n".join(found or ["ok"]) + "\n", status=503 if found else 200)
        checks = await health.checks()
        healthy = all(value == "ok" for key, value in checks.items() if key != "outbox")
        return web.json_response(
            {"status": "ok" if healthy else "unavailable", **checks}, status=200 if healthy else 503
        )

    async def metrics_page(request: web.Request) -> web.Response:
        today = clock.now().astimezone(settings.tz).date()
        await metrics.refresh_from_store(app.database, today, lambda team_id: app.teams.get(team_id).id)
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    router.add_get("/healthz", healthz)
    router.add_get("/metrics", metrics_page)


def add_public_routes(router: web.UrlDispatcher, app: App) -> None:
    """What the public web server carries besides Telegram's webhook: the Open311 API and, when
    PUBLIC_SERVICE_QUALITY is on, the visit surveys' page; the projects' open data."""
    settings = app.config.settings

    async def service_quality(request: web.Request) -> web.Response:
        """The visit surveys' figures of the last 30 days per place (PUBLIC_SERVICE_QUALITY), in ?lang= or the browser's language."""
        locale = page_locale(
            request.query.get("lang"), request.headers.get("Accept-Language", ""), settings.default_locale
        )
        today = clock.now().astimezone(settings.tz).date()
        start = today - timedelta(days=LAST_DAYS_DEFAULT - 1)
        with app.i18n.context(), app.i18n.use_locale(locale):
            places, _proposals = await app.quality.visits(
                Period(start, today), locale
            )  # proposals are not published
            page = service_quality_page(
                places, app.config.municipality.name.get(locale), start, today, locale
            )
        return web.Response(
            text=page,
            content_type="text/html",
            charset="utf-8",
            headers={"Cache-Control": "public, max-age=300", "Content-Language": locale},
        )

    if settings.public_service_quality:
        router.add_get("/service-quality", service_quality)
    Open311Api.route(router, Open311Api(app.open311).handle)
    OpenProjects.route(router, OpenProjects(app.projects, app.i18n, app.config).handle)


def build_ops_app(app: App) -> web.Application:
    """The operators' listener (OPS_LISTEN)."""
    ops_app = web.Application()
    add_ops_routes(ops_app.router, app)
    return ops_app


def build_web_app(app: App, webhook: bool) -> web.Application:
    """The public web server (WEB_HOST, WEB_PORT): Telegram's webhook and the Open311 API."""
    settings = app.config.settings
    web_app = web.Application()
    add_public_routes(web_app.router, app)
    if webhook:
        assert settings.webhook_url is not None and settings.webhook_secret is not None
        secret = settings.webhook_secret.get_secret_value()
        handler = WebhookHandler(app.dispatcher, app.bot, handle_in_background=False, secret_token=secret)
        handler.register(web_app, path=urlsplit(settings.webhook_url).path or "/")
    return web_app


async def serve(web_app: web.Application, host: str, port: int, what: str = "web server") -> web.AppRunner:
    runner = web.AppRunner(web_app, access_log=None)  # no access log: addresses and paths are not needed
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        setting = "OPS_LISTEN" if what == OPS else "WEB_HOST, WEB_PORT"
        raise ConfigError(f"{setting}: cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    log.info("%s listening", what, extra={"host": host, "port": port})
    return runner
