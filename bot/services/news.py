"""News for residents: subscriptions by topic (and their eldership), audiences, the latest ones."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, cast, exists, func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import col

from bot.store.db import Database
from bot.store.models import Broadcast, BroadcastStatus, Resident

ELDERSHIP_TOPIC = "eldership"  # news from the resident's own eldership
# In a broadcast's audience: sent to the followers of something (bot.services.projects), not news.
FOLLOWERS = "followers"


@dataclass(frozen=True)
class Audience:
    """Who gets an announcement: subscribers of `topic` (None: every resident), optionally only
    those of one language or one eldership. Residents who blocked the bot are never counted."""

    topic: str | None = None
    locale: str | None = None
    eldership: str | None = None

    def includes(self, resident: Resident) -> bool:
        return (
            resident.consent_at is not None
            and resident.blocked_at is None
            and (self.topic is None or self.topic in (resident.news_topics or []))
            and (self.locale is None or resident.locale == self.locale)
            and (self.eldership is None or resident.eldership_id == self.eldership)
        )

    def as_dict(self) -> dict[str, str | None]:
        return {"topic": self.topic, "locale": self.locale, "eldership": self.eldership}


def audience_where(audience: Audience, is_sqlite: bool) -> list[ColumnElement[bool]]:
    """`Audience.includes` in SQL: the database picks the residents (an index each on their
    language and eldership; the topic inside the JSON list of their subscriptions)."""
    where: list[ColumnElement[bool]] = [
        col(Resident.consent_at).is_not(None),
        col(Resident.blocked_at).is_(None),
    ]
    if audience.locale is not None:
        where.append(col(Resident.locale) == audience.locale)
    if audience.eldership is not None:
        where.append(col(Resident.eldership_id) == audience.eldership)
    if audience.topic is not None:
        if is_sqlite:
            topics = func.json_each(Resident.news_topics).table_valued("value")
            where.append(exists(select(1).select_from(topics).where(topics.c.value == audience.topic)))
        else:
            where.append(cast(Resident.news_topics, JSONB).contains([audience.topic]))
    return where


class NewsService:
    def __init__(self, database: Database, default_locale: str) -> None:
        self.database = database
        self.default_locale = default_locale

    async def recipients(self, audience: Audience) -> list[tuple[int, str]]:
        """Who gets an announcement to `audience`, with their language, in the order of their ids."""
        async with self.database.read() as session:
            rows = await session.execute(
                select(col(Resident.id), col(Resident.locale))
                .where(*audience_where(audience, self.database.is_sqlite))
                .order_by(col(Resident.id))
            )
            return [(resident_id, locale or self.default_locale) for resident_id, locale in rows.all()]

    async def count(self, audience: Audience) -> int:
        """How many residents an announcement to `audience` reaches now (the composer shows it)."""
        async with self.database.read() as session:
            return int(
                (
                    await session.execute(
                        select(func.count())
                        .select_from(Resident)
                        .where(*audience_where(audience, self.database.is_sqlite))
                    )
                ).scalar_one()
            )

    async def toggle_topic(self, resident_id: int, topic: str) -> list[str]:
        async with self.database.write() as session:
            resident = await session.get_one(Resident, resident_id)
            topics = list(resident.news_topics or [])
            topics.remove(topic) if topic in topics else topics.append(topic)
            resident.news_topics = topics
            return topics

    async def set_eldership(self, resident_id: int, eldership_id: str | None) -> None:
        async with self.database.write() as session:
            resident = await session.get_one(Resident, resident_id)
            resident.eldership_id = eldership_id
            if eldership_id and ELDERSHIP_TOPIC not in (resident.news_topics or []):
                resident.news_topics = [*(resident.news_topics or []), ELDERSHIP_TOPIC]

    async def latest(self, resident: Resident, limit: int = 5) -> list[Broadcast]:
        """The latest announcements this resident would have received (newest first)."""
        async with self.database.read() as session:
            rows = await session.execute(
                select(Broadcast)
                .where(col(Broadcast.status) != BroadcastStatus.STOPPED)
                .order_by(col(Broadcast.id).desc())
                .limit(50)
            )
            found = []
            for broadcast in rows.scalars():
                if broadcast.audience.get(FOLLOWERS):
                    continue  # a notice to the followers of a project: not an announcement
                audience = Audience(
                    **{k: broadcast.audience.get(k) for k in ("topic", "locale", "eldership")}
                )
                if audience.includes(resident.model_copy(update={"blocked_at": None})):
                    found.append(broadcast)
                if len(found) == limit:
                    break
            return found
