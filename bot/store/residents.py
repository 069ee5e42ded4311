"""Resident rows."""

from __future__ import annotations

from bot.store.db import Database
from bot.store.models import Resident, utcnow


async def get_resident(database: Database, user_id: int) -> Resident | None:
    async with database.read_one() as session:
        return await session.get(Resident, user_id)


async def set_locale(database: Database, user_id: int, locale: str) -> Resident:
    """Remember the chosen language, creating the record on first choice."""
    async with database.write() as session:
        resident = await session.get(Resident, user_id)
        if resident is None:
            resident = Resident(id=user_id, locale=locale)
            session.add(resident)
        else:
            resident.locale = locale
            resident.blocked_at = None
    return resident


async def give_consent(database: Database, user_id: int, display_name: str, locale: str) -> Resident:
    async with database.write() as session:
        resident = await session.get(Resident, user_id)
        if resident is None:
            resident = Resident(id=user_id, locale=locale)
            session.add(resident)
        resident.display_name = display_name[:256]
        resident.consent_at = resident.consent_at or utcnow()
        resident.blocked_at = None
    return resident


async def set_phone(database: Database, user_id: int, phone: str | None) -> None:
    """The number the resident chose to share (None forgets it)."""
    async with database.write() as session:
        resident = await session.get(Resident, user_id)
        if resident is not None:
            resident.phone = phone[:32] if phone else None


async def set_blocked(database: Database, user_id: int, blocked: bool) -> None:
    """The resident blocked (or unblocked) the bot: they leave (or rejoin) every audience."""
    async with database.write() as session:
        resident = await session.get(Resident, user_id)
        if resident is not None:
            resident.blocked_at = (resident.blocked_at or utcnow()) if blocked else None
