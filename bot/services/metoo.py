""" "Me too": one problem reported once, followed by everyone it affects.

While a resident reports a problem, once its category and place are known, `MeToo.nearby` offers
up to five open reports of the same category within the category's radius (the municipality
file, `radius_m`; 250 m by default), or in the same eldership when no place was given: nearest
first, then newest. What a resident sees of another's case is `Shown`: the category, how far,
since when, its status, and its description only where a clerk made the report public
(`Case.public`); never the other resident's words, name or photos otherwise.

"➕ This affects me too" is a `Follow` of kind CASE (the same table as projects' follows, so
/mydata and /forget cover it). Followers are told of the case's status changes, and of its final
answer where the case is public (otherwise that it was resolved), once each, in their language,
through the broadcaster's bulk lane (`notice_followers`, in the case change's transaction). The case's
card shows how many residents it affects.

The query stays fast: the index on (category_id, status, received_at) narrows to the category's
open cases, the (latitude, longitude) index to a bounding box; the distance is computed here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import TYPE_CHECKING

from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.config import Config
from bot.services import case_queries, texts
from bot.services.broadcaster import TextVersion, Version, add_broadcast, fan_out_after_commit
from bot.services.news import FOLLOWERS
from bot.settings import LOCALES
from bot.store.db import Database
from bot.store.models import (
    CLOSED_STATUSES,
    Broadcast,
    Case,
    CaseKind,
    CaseStatus,
    Follow,
    FollowKind,
    Resident,
)

if TYPE_CHECKING:
    from bot.services.case_notices import CaseNotices

NEARBY_MAX = 5  # FixMyStreet's: at most five suggestions
CANDIDATES_MAX = 200  # open cases of the category in the box, newest first, before the distance is measured
EARTH_RADIUS_M = 6_371_000.0
METRES_PER_DEGREE = 111_320.0


class MeTooError(Exception):
    """A case that cannot be followed; the message is for the resident, in their language."""


@dataclass(frozen=True)
class Shown:
    """What a resident may see of another resident's case."""

    case_id: int
    number: str
    category_id: str
    status: str
    received_at: datetime
    distance_m: float | None  # None: no place on one side (same eldership)
    description: str | None  # only a public report's


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The great-circle distance (haversine), in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


def _open() -> ColumnElement[bool]:
    return col(Case.status).not_in(CLOSED_STATUSES)


def shown(case: Case, distance: float | None) -> Shown:
    return Shown(
        case.id,
        case.number,
        case.category_id,
        case.status,
        case.received_at,
        distance,
        case.description if case.public else None,
    )


async def followers_of(session: AsyncSession, case_id: int, default_locale: str) -> list[tuple[int, str]]:
    """The residents following a case (who can still be written to), with their language."""
    query = (
        select(col(Resident.id), col(Resident.locale))
        .join(Follow, col(Follow.resident_id) == col(Resident.id))
        .where(
            col(Follow.kind) == FollowKind.CASE,
            col(Follow.target) == str(case_id),
            col(Resident.consent_at).is_not(None),
            col(Resident.blocked_at).is_(None),
        )
        .order_by(col(Resident.id))
    )
    return [
        (resident_id, locale or default_locale)
        for resident_id, locale in (await session.execute(query)).all()
    ]


async def affected(session: AsyncSession, case: Case) -> int:
    """Residents the case affects: its own resident (if any) and its followers."""
    followers = await session.scalar(
        select(func.count())
        .select_from(Follow)
        .where(col(Follow.kind) == FollowKind.CASE, col(Follow.target) == str(case.id))
    )
    return (followers or 0) + (1 if case.resident_id is not None else 0)


@dataclass(frozen=True)
class Related:
    """What a case's card says about the residents it affects and the cases merged with it."""

    affected: int = 0
    original: str | None = None  # this case is a duplicate of that one (its number)
    duplicates: tuple[str, ...] = ()  # numbers of the cases merged into this one
    notices: int = 0  # area notices sent from its card (bot.services.area_notices)
    latest_notice: datetime | None = None


async def related_of(session: AsyncSession, case: Case) -> Related:
    original = (
        await session.scalar(select(col(Case.number)).where(col(Case.id) == case.duplicate_of))
        if case.duplicate_of
        else None
    )
    duplicates = (
        await session.execute(
            select(col(Case.number)).where(col(Case.duplicate_of) == case.id).order_by(col(Case.id))
        )
    ).scalars()
    notices, latest = (
        await session.execute(
            select(func.count(), func.max(col(Broadcast.created_at))).where(col(Broadcast.case_id) == case.id)
        )
    ).one()
    return Related(await affected(session, case), original, tuple(duplicates), notices, latest)


async def add_follow(session: AsyncSession, resident_id: int, case: Case) -> bool:
    """`resident_id` follows `case` (inside the caller's transaction); False if they already did."""
    mine = and_(
        col(Follow.resident_id) == resident_id,
        col(Follow.kind) == FollowKind.CASE,
        col(Follow.target) == str(case.id),
    )
    if (await session.execute(select(col(Follow.id)).where(mine))).first() is not None:
        return False
    session.add(Follow(resident_id=resident_id, kind=FollowKind.CASE, target=str(case.id)))
    return True


class FollowerTexts:
    """What a follower of a case is told, in each language."""

    def __init__(self, i18n: I18n, config: Config) -> None:
        self.i18n = i18n
        self.config = config

    def _category(self, case: Case) -> str:
        entry = self.config.municipality.category_by_id.get(case.category_id)
        return escape(entry.get(texts.current_locale())) if entry else case.category_id

    def _heading(self, case: Case) -> str:
        return _("🔔 <b>{category}</b> · case {number}, which you follow").format(
            category=self._category(case), number=case.number
        )

    def status(self, case: Case, answer: str | None) -> str:
        """The case's new status; a public case's final answer (the clerk's words, escaped) when it has one."""
        lines = [self._heading(case)]
        if case.status == CaseStatus.ANSWERED and case.public and answer:
            lines += [_("The municipality's answer:"), escape(texts.shorten(answer, 3500))]
        elif case.status == CaseStatus.ANSWERED:
            lines.append(_("The problem has been dealt with: the case is resolved."))
        elif case.status == CaseStatus.DUPLICATE:
            lines.append(_("It was merged with another report of the same problem."))
        else:
            lines.append(_("Status: {status}").format(status=texts.status_label(case.status)))
        return "\n\n".join(lines)

    def versions(self, build: object) -> dict[str, Version]:
        versions: dict[str, Version] = {}
        with self.i18n.context():
            for locale in LOCALES:
                with self.i18n.use_locale(locale):
                    versions[locale] = TextVersion(text=build())  # type: ignore[operator]
        return versions


async def notice_followers(
    session: AsyncSession, texts_: FollowerTexts, case: Case, answer: str | None, default_locale: str
) -> None:
    """The case's followers told of its status, once each, in their language (the bulk lane),
    inside the caller's transaction; sending starts once it commits."""
    recipients = await followers_of(session, case.id, default_locale)
    if not recipients:
        return
    broadcast = await add_broadcast(
        session,
        texts_.versions(lambda: texts_.status(case, answer)),
        recipients,
        audience={FOLLOWERS: f"case:{case.id}"},
    )
    fan_out_after_commit(session, broadcast)


class MeToo:
    def __init__(self, database: Database, config: Config, notices: CaseNotices) -> None:
        self.database = database
        self.config = config
        self.municipality = config.municipality
        self.notices = notices

    async def follow(self, resident_id: int, case_id: int) -> Case:
        """ "This affects me too": the resident follows the case; its card shows one more affected."""
        async with self.database.write() as session:
            case = await self._check(session, resident_id, case_id)
            if await add_follow(session, resident_id, case):
                await self.notices.refresh_card(session, case)
        return case

    async def nearby(
        self,
        resident_id: int,
        category_id: str,
        *,
        latitude: float | None = None,
        longitude: float | None = None,
        eldership_id: str | None = None,
    ) -> list[Shown]:
        """Up to five open reports of the category near the place (within the category's radius),
        or in the eldership when no place was given (none without either): nearest, then newest, first.
        The resident's own cases are not offered."""
        category = self.municipality.category_by_id.get(category_id)
        if category is None:
            return []
        query = select(Case).where(
            col(Case.category_id) == category_id,
            _open(),
            col(Case.kind) == CaseKind.REPORT,
            col(Case.purged_at).is_(None),
            or_(col(Case.resident_id).is_(None), col(Case.resident_id) != resident_id),
        )
        if latitude is not None and longitude is not None:
            radius = category.radius_m
            dlat = radius / METRES_PER_DEGREE
            dlon = radius / (METRES_PER_DEGREE * max(math.cos(math.radians(latitude)), 0.01))
            query = query.where(
                col(Case.latitude).between(latitude - dlat, latitude + dlat),
                col(Case.longitude).between(longitude - dlon, longitude + dlon),
            )
        elif eldership_id is not None:
            query = query.where(col(Case.eldership_id) == eldership_id)
        else:
            return []
        async with self.database.read() as session:
            rows = list(
                (
                    await session.execute(
                        query.order_by(col(Case.received_at).desc(), col(Case.id).desc()).limit(
                            CANDIDATES_MAX
                        )
                    )
                ).scalars()
            )
        found: list[Shown] = []
        for case in rows:
            if latitude is not None and longitude is not None:
                assert case.latitude is not None and case.longitude is not None, (
                    "the box holds only placed cases"
                )
                distance = distance_m(latitude, longitude, case.latitude, case.longitude)
                if distance > category.radius_m:
                    continue
                found.append(shown(case, distance))
            else:
                found.append(shown(case, None))
        found.sort(key=lambda s: (s.distance_m or 0.0, -s.received_at.timestamp()))
        return found[:NEARBY_MAX]

    async def followed(self, resident_id: int) -> list[Shown]:
        """The cases the resident follows (someone else's reports), newest first, as they may see them."""
        ids = select(col(Follow.target)).where(
            col(Follow.resident_id) == resident_id, col(Follow.kind) == FollowKind.CASE
        )
        async with self.database.read() as session:
            targets = [int(t) for t in (await session.execute(ids)).scalars()]
            if not targets:
                return []
            rows = (
                await session.execute(
                    select(Case).where(col(Case.id).in_(targets)).order_by(col(Case.received_at).desc())
                )
            ).scalars()
            return [shown(case, None) for case in rows if case.purged_at is None]

    async def _check(self, session: AsyncSession, resident_id: int, case_id: int) -> Case:
        case = await session.get(Case, case_id, with_for_update=True)
        if case is None or case.purged_at is not None or case.kind != CaseKind.REPORT:
            raise MeTooError(_("This case can no longer be followed."))
        if case.status in CLOSED_STATUSES:
            raise MeTooError(
                _("This problem has already been dealt with; if it is back, please report it as a new case.")
            )
        resident = await case_queries.resident_of(session, case)
        if case.resident_id == resident_id and not case_queries.kept_apart(case, resident):
            raise MeTooError(_("This is your own case: you are told of it already."))
        return case
