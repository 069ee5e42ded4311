"""Residents' profiles, as the flows change them: language, consent, blocking the bot.
(Erasing a profile is a data right: bot.services.privacy.)"""

from __future__ import annotations

from bot.store import residents as rows
from bot.store.db import Database
from bot.store.models import Resident


class ResidentProfiles:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def get(self, user_id: int) -> Resident | None:
        return await rows.get_resident(self.database, user_id)

    async def choose_language(self, user_id: int, locale: str) -> Resident:
        """Remember the chosen language, creating the profile on the first choice."""
        return await rows.set_locale(self.database, user_id, locale)

    async def give_consent(self, user_id: int, display_name: str, locale: str) -> Resident:
        return await rows.give_consent(self.database, user_id, display_name, locale)

    async def set_blocked(self, user_id: int, blocked: bool) -> None:
        """The resident blocked (or unblocked) the bot: they leave (or rejoin) every audience."""
        await rows.set_blocked(self.database, user_id, blocked)
