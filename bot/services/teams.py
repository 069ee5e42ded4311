"""Teams: which team a case goes to (routing), where each team works (its group, followed when
Telegram moves it), and who may act for it (roles).

A member or head listed in the municipality file acts on the team's cases; so does an admin of
the team's group (asked with getChatMember, remembered for a few minutes). A team that lists
nobody (the zero-config desk in ADMIN_CHAT_ID) lets every member of its group act. Heads alone
assign and reassign.
"""

from __future__ import annotations

import logging
import time
from enum import StrEnum

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError

from bot.config import Municipality, Team

log = logging.getLogger(__name__)

MEMBERSHIP_SECONDS = 300
_CACHE_LIMIT = 10_000


class Role(StrEnum):
    HEAD = "head"
    MEMBER = "member"
    ADMIN = "admin"  # an admin of the team's group
    NONE = "none"

    @property
    def acts(self) -> bool:
        return self is not Role.NONE

    @property
    def assigns(self) -> bool:
        return self is Role.HEAD


class TeamDirectory:
    def __init__(self, municipality: Municipality, bot: Bot, comms_chat_id: int) -> None:
        assert municipality.routing is not None, "load_config gives every municipality a routing"
        self.municipality = municipality
        self.routing = municipality.routing
        self.bot = bot
        self.comms_chat_id = comms_chat_id
        self._chat_of = {team.id: team.chat_id for team in municipality.teams}
        self._membership: dict[tuple[int, int], tuple[str, float]] = {}

    # --- teams and their groups ---

    @property
    def teams(self) -> list[Team]:
        return self.municipality.teams

    @property
    def default(self) -> Team:
        return self.municipality.team_by_id[self.routing.default_team]

    @property
    def quality_team(self) -> Team:
        """Where quality matters go (visitors' proposals, the quality loop): the team marked
        `quality = true` in the municipality file, else the default team. The one place that says so."""
        return next((team for team in self.teams if team.quality), self.default)

    @property
    def escalation(self) -> Team | None:
        return self.municipality.team_by_id.get(self.routing.escalation_team or "")

    def get(self, team_id: str | None) -> Team:
        """The team by id; cases from before teams (None) and unknown ids belong to the default team."""
        return self.municipality.team_by_id.get(team_id or "", self.default)

    def route(self, kind: str, category_id: str, eldership_id: str | None) -> Team:
        rule = next((r for r in self.routing.rules if r.matches(kind, category_id, eldership_id)), None)
        return self.municipality.team_by_id[rule.team] if rule else self.default

    def chat_of(self, team: Team) -> int:
        return self._chat_of[team.id]

    def teams_in(self, chat_id: int) -> list[Team]:
        return [team for team in self.teams if self._chat_of[team.id] == chat_id]

    def is_team_chat(self, chat_id: int) -> bool:
        return chat_id in self._chat_of.values()

    @property
    def comms(self) -> int:
        """The communications group: the only place that broadcasts."""
        return self.comms_chat_id

    def is_staff_chat(self, chat_id: int) -> bool:
        return chat_id == self.comms_chat_id or self.is_team_chat(chat_id)

    def follow(self, old_chat_id: int, new_chat_id: int) -> list[Team]:
        """A team group became a supergroup with a new id: its teams move with it."""
        moved = self.teams_in(old_chat_id)
        for team in moved:
            self._chat_of[team.id] = new_chat_id
        if old_chat_id == self.comms_chat_id:
            self.comms_chat_id = new_chat_id
        return moved

    def others(self, team: Team) -> list[Team]:
        return [t for t in self.teams if t.id != team.id]

    # --- roles ---

    async def role(self, user_id: int, team: Team) -> Role:
        if user_id in team.heads:
            return Role.HEAD
        if user_id in team.members:
            return Role.MEMBER
        status = await self._status(self.chat_of(team), user_id)
        if status in ("creator", "administrator"):
            return Role.ADMIN
        if not team.lists_people() and status in ("member", "restricted"):
            return Role.MEMBER
        return Role.NONE

    async def _status(self, chat_id: int, user_id: int) -> str:
        key = (chat_id, user_id)
        cached = self._membership.get(key)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        try:
            member = await self.bot.get_chat_member(chat_id, user_id)
            status = str(member.status)
        except TelegramAPIError as exc:
            log.warning("could not check a clerk's membership", extra={"chat_id": chat_id, "user_id": user_id, "error": type(exc).__name__})
            return "left"  # not remembered: asked again next time
        if len(self._membership) >= _CACHE_LIMIT:
            self._membership.clear()
        self._membership[key] = (status, time.monotonic() + MEMBERSHIP_SECONDS)
        return status

    async def member_name(self, team: Team, user_id: int) -> str:
        """A listed clerk's name as Telegram knows it (for the assign buttons)."""
        try:
            member = await self.bot.get_chat_member(self.chat_of(team), user_id)
            return member.user.full_name
        except TelegramAPIError:
            return str(user_id)
