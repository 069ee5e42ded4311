"""Teams: which team a case goes to (routing), where each team works (its group, followed when
Telegram moves it), and who may act for it and in the communications group (roles, by the one
rule of bot.services.roles). Heads alone assign and reassign.
"""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError

from bot.municipality import Municipality, Team
from bot.services.roles import Role, StaffRoles

log = logging.getLogger(__name__)


class TeamDirectory:
    def __init__(self, municipality: Municipality, bot: Bot, comms_chat_id: int) -> None:
        assert municipality.routing is not None, "load_config gives every municipality a routing"
        self.municipality = municipality
        self.routing = municipality.routing
        self.bot = bot
        self.comms_chat_id = comms_chat_id
        self._chat_of = {team.id: team.chat_id for team in municipality.teams}
        self.roles = StaffRoles(bot)

    # --- teams and their groups ---

    @property
    def teams(self) -> list[Team]:
        return self.municipality.teams

    @property
    def default(self) -> Team:
        return self.municipality.team_by_id[self.routing.default_team]

    @property
    def quality_team(self) -> Team:
        """Where quality matters go (visitors' proposals, the quality loop): Municipality.quality_team."""
        return self.municipality.quality_team

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
        return await self.roles.role(self.chat_of(team), user_id, team.heads, team.members)

    async def comms_role(self, user_id: int) -> Role:
        """In the communications group: its listed staff (the municipality file's `[comms]`) and its admins."""
        return await self.roles.role(self.comms, user_id, (), self.municipality.comms.members)

    async def report_scope(self, user_id: int, chat_id: int) -> list[Team] | None:
        """The teams whose figures /report shows this person in `chat_id`: None for the whole
        municipality (with every satisfaction comment), which is for the head of any team and for
        the quality staff (until there is a quality group: the admins of the default team's group);
        for anyone else, the teams of this group they act for."""
        if any(user_id in team.heads for team in self.teams):
            return None
        if (await self.roles.membership(self.chat_of(self.default), user_id)).admin:
            return None
        return [team for team in self.teams_in(chat_id) if (await self.role(user_id, team)).acts]

    def unlisted(self) -> list[str]:
        """The staff groups that list nobody (anyone there who may post acts), for the start-up log."""
        names = [f"{team.id} ({self.chat_of(team)})" for team in self.teams if not team.lists_people()]
        if not self.municipality.comms.members:
            names.append(f"comms ({self.comms})")
        return names

    async def member_name(self, team: Team, user_id: int) -> str:
        """A listed clerk's name as Telegram knows it (for the assign buttons)."""
        try:
            member = await self.bot.get_chat_member(self.chat_of(team), user_id)
            return member.user.full_name
        except TelegramAPIError:
            return str(user_id)
