"""Area notices ("📣 Notify the area" on a report's card): a water outage, a closed road, a storm.

A clerk of the case's team writes a short notice in Polish and in Lithuanian (one may be left
out: then everyone gets the one given) and picks who gets it (`Reach`): the residents the case
affects (its own resident and its followers, as the card counts them), the subscribers of the
news of the case's eldership, or both. It is a broadcast like any announcement (one delivery per
resident, so the 30/s pace, leases, resuming after a crash and 429s all apply), linked to the
case (`Broadcast.case_id`): the card counts it, /broadcasts names the case. Each resident gets it
once, in their language; residents who stopped the bot or erased their profile get nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from html import escape

from aiogram.filters.callback_data import CallbackData
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.config import Config
from bot.services import case_queries
from bot.services.broadcaster import TextVersion, Version, add_broadcast
from bot.services.case_commands import Clerk
from bot.services.case_notices import CaseNotices
from bot.services.metoo import followers_of
from bot.services.news import ELDERSHIP_TOPIC, FOLLOWERS, Audience, audience_where
from bot.services.numbers import RowId
from bot.store.db import Database
from bot.store.models import CLOSED_STATUSES, Broadcast, Case, CaseKind, Resident

NOTICE_MIN, NOTICE_MAX = 3, 3500  # characters a clerk writes; the heading fits beside them in one message
NOTICE_LOCALES = (
    "pl",
    "lt",
)  # asked in this order; residents reading another language get the first one given


class NotifyArea(CallbackData, prefix="an"):
    """ "📣 Notify the area" on a case's card."""

    case_id: RowId


class Reach(StrEnum):
    AFFECTED = "affected"  # the case's own resident and its followers ("me too", merged duplicates)
    SUBSCRIBERS = "subscribers"  # the subscribers of the news of the case's eldership
    BOTH = "both"


class NoticeRefused(Exception):
    """A notice that cannot be sent; the message is for the clerk (in the current locale)."""


def can_notify(case: Case) -> bool:
    """An open report of a problem (a place, not a person); a duplicate's residents follow its original."""
    return case.purged_at is None and case.kind == CaseKind.REPORT and case.status not in CLOSED_STATUSES


def check_notice(text: str) -> str:
    """The clerk's notice in one language, trimmed; NoticeRefused if it is too short or too long."""
    text = text.strip()
    if not NOTICE_MIN <= len(text) <= NOTICE_MAX:
        raise NoticeRefused(
            _(
                "Please write {min} to {max} character.",
                "Please write {min} to {max} characters.",
                NOTICE_MAX,
            ).format(min=NOTICE_MIN, max=NOTICE_MAX)
        )
    return text


@dataclass(frozen=True)
class ReachCounts:
    """How many residents each choice reaches now (each counted once)."""

    affected: int
    subscribers: (
        int | None
    )  # None: the case has no eldership (the whole district), so there are none to choose
    both: int


class AreaNotices:
    def __init__(self, database: Database, config: Config, i18n: I18n, notices: CaseNotices) -> None:
        self.database = database
        self.config = config
        self.i18n = i18n
        self.notices = notices
        self.default_locale = config.settings.default_locale

    async def counts(self, case: Case) -> ReachCounts:
        async with self.database.read() as session:
            affected = await self._affected(session, case)
            subscribers = await self._subscribers(session, case)
        return ReachCounts(
            len(affected),
            len(subscribers) if case.eldership_id else None,
            len(affected.keys() | subscribers.keys()),
        )

    def messages(self, case: Case, notice: dict[str, str]) -> dict[str, str]:
        """The notice as residents get it, by locale (the clerk's words escaped): the preview shows these, the broadcast sends them."""
        messages: dict[str, str] = {}
        with self.i18n.context():
            for locale in (code for code in NOTICE_LOCALES if notice.get(code)):
                with self.i18n.use_locale(locale):
                    messages[locale] = self._heading(case, locale) + "\n\n" + escape(notice[locale])
        return messages

    async def send(
        self, case_id: int, clerk: Clerk, notice: dict[str, str], reach: Reach
    ) -> tuple[Broadcast, int]:
        """The notice stored as a broadcast of the case, with a delivery for each recipient, and the
        card refreshed, in one transaction; the caller starts the sending. Returns it and how many
        residents it goes to."""
        if not any(notice.get(code) for code in NOTICE_LOCALES):
            raise NoticeRefused(_("Nothing to send: the notice has no text in either language."))
        async with self.database.write() as session:
            case = await session.get(Case, case_id, with_for_update=True)
            if case is None or not can_notify(case):
                raise NoticeRefused(_("This cannot be done with the case now."))
            if reach is not Reach.AFFECTED and not case.eldership_id:
                raise NoticeRefused(
                    _("This case has no eldership: only the residents it affects can be notified.")
                )
            recipients: dict[int, str] = {}
            if reach in (Reach.AFFECTED, Reach.BOTH):
                recipients |= await self._affected(session, case)
            if reach in (Reach.SUBSCRIBERS, Reach.BOTH):
                recipients |= await self._subscribers(session, case)
            versions: dict[str, Version] = {
                locale: TextVersion(text=text) for locale, text in self.messages(case, notice).items()
            }
            if not recipients:
                raise NoticeRefused(
                    _("Nobody would get this notice: nobody is affected or subscribed now. Nothing was sent.")
                )
            broadcast = await add_broadcast(
                session,
                versions,
                sorted(recipients.items()),
                audience=_audience(case, reach),
                author=(clerk.id, clerk.name),
                paid=self.config.settings.paid_broadcast,
            )
            broadcast.case_id = case.id
            await self.notices.refresh_card(session, case)
        return broadcast, len(recipients)

    async def case_numbers(self, broadcasts: list[Broadcast]) -> dict[int, str]:
        """The case of each broadcast that is an area notice, by the broadcast's id (for /broadcasts)."""
        linked = {b.id: b.case_id for b in broadcasts if b.case_id is not None}
        if not linked:
            return {}
        async with self.database.read() as session:
            rows = await session.execute(
                select(col(Case.id), col(Case.number)).where(col(Case.id).in_(set(linked.values())))
            )
            numbers: dict[int, str] = {row[0]: row[1] for row in rows}
        return {
            broadcast_id: numbers[case_id] for broadcast_id, case_id in linked.items() if case_id in numbers
        }

    async def _affected(self, session: AsyncSession, case: Case) -> dict[int, str]:
        """The case's own resident (unless they erased their profile since) and its followers, who can be written to."""
        found = dict(await followers_of(session, case.id, self.default_locale))
        resident = await case_queries.resident_of(session, case)
        if (
            resident is not None
            and not case_queries.kept_apart(case, resident)
            and Audience().includes(resident)
        ):
            found.setdefault(resident.id, resident.locale or self.default_locale)
        return found

    async def _subscribers(self, session: AsyncSession, case: Case) -> dict[int, str]:
        """Residents subscribed to the news of the case's eldership (the rule of announcements: `Audience`)."""
        if not case.eldership_id:
            return {}
        audience = Audience(topic=ELDERSHIP_TOPIC, eldership=case.eldership_id)
        rows = await session.execute(
            select(col(Resident.id), col(Resident.locale)).where(
                *audience_where(audience, self.database.is_sqlite)
            )
        )
        return {resident_id: locale or self.default_locale for resident_id, locale in rows.all()}

    def _heading(self, case: Case, locale: str) -> str:
        municipality = self.config.municipality
        category = municipality.category_by_id.get(case.category_id)
        eldership = municipality.eldership_by_id.get(case.eldership_id or "")
        return _("📣 <b>Announcement</b> · {category} · {place}").format(
            category=escape(category.get(locale)) if category else case.category_id,
            place=escape(eldership.get(locale)) if eldership else _("whole district"),
        )


def _audience(case: Case, reach: Reach) -> dict[str, str | None]:
    """As announcements record it: a notice that reaches the eldership's subscribers is among their
    latest news (bot.services.news); one to the affected residents alone is a followers' notice."""
    if reach is Reach.AFFECTED:
        return {FOLLOWERS: f"case:{case.id}", "reach": reach}
    return {**Audience(topic=ELDERSHIP_TOPIC, eldership=case.eldership_id).as_dict(), "reach": reach}
