"""The bot's one web server: Telegram's webhook (in webhook mode), /healthz, /metrics, the
Open311 GeoReport v2 API (bot.open311, under /open311/v2/) and the projects' open data
(bot.open_projects: /projects, /projects.json, /projects.csv).

The webhook answers Telegram only once the update is handled (not in the background): a replica
that dies mid-update never said 200, so Telegram delivers the update again, to whichever replica
answers. The secret token Telegram sends with every request is checked; other requests get 401.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from bot import clock, metrics
from bot.open311 import Open311Api
from bot.open_projects import OpenProjects
from bot.telegram import single_attempt

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

TELEGRAM_CHECK_EVERY = 30.0  # seconds a getMe answer is trusted: probes must not hammer Telegram
CHECK_TIMEOUT = 5.0


class Health:
    """Is this replica able to serve? Database, Redis (if used) and Telegram reachable; the
    outbox's lag is reported alongside (it is shared by all replicas, so it does not fail one)."""

    def __init__(self, app: App) -> None:
        self.app = app
        self._telegram: tuple[float, str] = (float("-inf"), "unknown")

    async def checks(self) -> dict[str, Any]:
        result: dict[str, Any] = {"database": await self._probe(self._database())}
        redis = getattr(self.app.dispatcher.storage, "redis", None)
        if redis is not None:
            result["redis"] = await self._probe(redis.ping())
        result["telegram"] = await self._telegram_state()
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

    async def _handle_request(self, bot: Any, request: web.Request) -> web.Response:
        try:
            return await super()._handle_request(bot, request)
        except Exception:
            log.exception("update failed")
            return web.json_response({})


def build_web_app(app: App, webhook: bool) -> web.Application:
    settings = app.config.settings
    web_app = web.Application()
    health = Health(app)

    async def healthz(request: web.Request) -> web.Response:
        checks = await health.checks()
        healthy = all(value == "ok" for key, value in checks.items() if key != "outbox")
        return web.json_response({"status": "ok" if healthy else "unavailable", **checks}, status=200 if healthy else 503)

    async def metrics_page(request: web.Request) -> web.Response:
        today = clock.now().astimezone(settings.tz).date()
        await metrics.refresh_from_store(app.database, today, lambda team_id: app.teams.get(team_id).id)
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    web_app.router.add_get("/healthz", healthz)
    web_app.router.add_get("/metrics", metrics_page)
    Open311Api.route(web_app.router, Open311Api(app.open311).handle)
    OpenProjects.route(web_app.router, OpenProjects(app.projects, app.i18n, app.config).handle)
    if webhook:
        assert settings.webhook_url is not None and settings.webhook_secret is not None
        secret = settings.webhook_secret.get_secret_value()
        handler = WebhookHandler(app.dispatcher, app.bot, handle_in_background=False, secret_token=secret)
        handler.register(web_app, path=urlsplit(settings.webhook_url).path or "/")
    return web_app


async def serve(web_app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(web_app, access_log=None)  # no access log: addresses and paths are not needed
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("web server listening", extra={"host": host, "port": port})
    return runner
