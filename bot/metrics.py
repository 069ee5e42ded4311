"""What the bot measures, in the Prometheus text format at /metrics (bot.web).

Counters and histograms are updated as things happen (each process its own: Prometheus scrapes
every replica). The figures that live in the database — outbox depth and age, open and overdue
cases per team — are read when /metrics is scraped. The process's CPU and memory come with
prometheus_client's default collectors.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import case, func, select
from sqlmodel import col

from bot import clock
from bot.store.db import Database
from bot.store.models import CLOSED_STATUSES, Case, OutboxMessage, OutboxStatus

UPDATES = Counter(
    "petent_updates_total", "Updates handled, by the flow that took them and the outcome", ["flow", "outcome"]
)
UPDATE_SECONDS = Histogram(
    "petent_update_seconds",
    "Time to handle an update, by flow",
    ["flow"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SENT = Counter("petent_telegram_sent_total", "Requests that put something into a chat, by lane", ["lane"])
RETRY_AFTER = Counter("petent_telegram_429_total", "429 answers (Too Many Requests) from Telegram")
RETRIES = Counter(
    "petent_telegram_retries_total",
    "Requests tried again after a Telegram server or network error",
    ["error"],
)
WEBHOOK_ATTEMPTS = Counter(
    "petent_webhook_attempts_total",
    "Case events posted to a receiver (CASE_WEBHOOKS), by outcome: delivered, unavailable, refused",
    ["receiver", "outcome"],
)
OUTBOX_DEPTH = Gauge("petent_outbox_pending", "Outbox rows waiting to be sent")
OUTBOX_AGE = Gauge("petent_outbox_oldest_seconds", "Age of the oldest outbox row waiting to be sent")
CASES_OPEN = Gauge("petent_cases_open", "Cases not closed, per team", ["team"])
CASES_OVERDUE = Gauge("petent_cases_overdue", "Open cases past their (extended) deadline, per team", ["team"])


class UpdateMetrics(BaseMiddleware):
    """Outer middleware on updates: times each one; the flow is named by `FlowLabel` below."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        label = data["metrics_flow"] = {"flow": "none"}
        started = time.perf_counter()
        outcome = "error"
        try:
            result = await handler(event, data)
            outcome = "handled" if label["flow"] != "none" else "ignored"
            return result
        finally:
            UPDATES.labels(label["flow"], outcome).inc()
            UPDATE_SECONDS.labels(label["flow"]).observe(time.perf_counter() - started)


class FlowLabel(BaseMiddleware):
    """Inner middleware on one router's observers: names the flow that takes the update (intake,
    clerk, …) after the router, so a handler shared by several flows (the form engine's) counts
    for the flow it serves."""

    def __init__(self, flow: str) -> None:
        self.flow = flow

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        if "metrics_flow" in data:
            data["metrics_flow"]["flow"] = self.flow
        return await handler(event, data)


def flow_of(router_name: str) -> str:
    """A router's flow: "clerk-outside" and "projects-staff" count as "clerk" and "projects"."""
    return re.sub(r"-(outside|staff|unprompted)$", "", router_name)


def instrument(dispatcher: Any, routers: list[Any]) -> None:
    dispatcher.update.outer_middleware(UpdateMetrics())
    for router in routers:
        for name, observer in router.observers.items():
            if name not in ("update", "error"):
                observer.middleware(FlowLabel(flow_of(router.name)))


async def outbox_figures(database: Database) -> tuple[int, float]:
    """Rows waiting to be sent, and the age in seconds of the oldest of them."""
    async with database.read() as session:
        depth, oldest = (
            await session.execute(
                select(func.count(), func.min(col(OutboxMessage.created_at))).where(
                    col(OutboxMessage.status) == OutboxStatus.PENDING
                )
            )
        ).one()
    return depth, (clock.now() - oldest).total_seconds() if oldest else 0.0


async def refresh_from_store(database: Database, today: date, team_of: Callable[[str | None], str]) -> None:
    """The gauges kept in the database, read at scrape time."""
    depth, age = await outbox_figures(database)
    due = func.coalesce(col(Case.extended_until), col(Case.deadline))
    async with database.read() as session:
        per_team = (
            await session.execute(
                select(col(Case.team_id), func.count(), func.sum(case((due < today, 1), else_=0)))
                .where(col(Case.status).not_in(CLOSED_STATUSES))
                .group_by(col(Case.team_id))
            )
        ).all()
    OUTBOX_DEPTH.set(depth)
    OUTBOX_AGE.set(age)
    CASES_OPEN.clear()
    CASES_OVERDUE.clear()
    for team_id, open_count, overdue in per_team:
        CASES_OPEN.labels(team_of(team_id)).inc(open_count)
        CASES_OVERDUE.labels(team_of(team_id)).inc(overdue or 0)
