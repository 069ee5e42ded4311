"""The responsibility matrix (ISO 9001, 5.3): each team with what its routing rules give it
(kinds, categories, elderships; the default team also everything no rule names), its heads and
members, and its open cases per responsible clerk with the overdue ones. One source for `/who`
in the chat and the management review's Responsibility sheet. Texts in the gettext locale
current when it is called (ADMIN_LOCALE in the staff groups); nothing escaped (the caller does)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date

from aiogram.utils.i18n import gettext as _

from bot.municipality import Municipality, RoutingRule, Team
from bot.services import texts
from bot.services.case_queries import CaseQueries
from bot.services.teams import TeamDirectory


@dataclass
class Load:
    clerk: str  # the responsible clerk's name, or "nobody responsible"
    open: int
    overdue: int


@dataclass
class TeamResponsibility:
    team: Team
    name: str
    quality: bool  # the quality team
    handles: list[str]
    heads: list[str]
    members: list[str]  # empty: everyone in the group
    open: int
    loads: list[Load]  # the most open cases first


class Responsibility:
    def __init__(self, teams: TeamDirectory, municipality: Municipality, queries: CaseQueries) -> None:
        self.teams = teams
        self.municipality = municipality
        self.queries = queries

    async def matrix(self, locale: str, today: date) -> list[TeamResponsibility]:
        rows = []
        for team in self.teams.teams:
            handles = [
                self._rule_text(rule, locale) for rule in self.teams.routing.rules if rule.team == team.id
            ]
            if team.id == self.teams.default.id:
                handles.append(_("everything no rule names"))
            count, per_clerk = await self.queries.team_load(team, today)
            # Telegram is asked for every name at once, not one after another.
            names = list(
                await asyncio.gather(
                    *(self.teams.member_name(team, uid) for uid in (*team.heads, *team.members))
                )
            )
            rows.append(
                TeamResponsibility(
                    team=team,
                    name=team.name.get(locale),
                    quality=team.id == self.municipality.quality_team.id,
                    handles=handles,
                    heads=names[: len(team.heads)],
                    members=names[len(team.heads) :],
                    open=count,
                    loads=[
                        Load(row.name or _("nobody responsible"), row.open, row.overdue) for row in per_clerk
                    ],
                )
            )
        return rows

    def _rule_text(self, rule: RoutingRule, locale: str) -> str:
        parts = []
        if rule.kinds:
            parts.append(", ".join(texts.kind_label(kind) for kind in rule.kinds))
        if rule.categories:
            parts.append(", ".join(self.municipality.category_by_id[c].get(locale) for c in rule.categories))
        if rule.elderships:
            parts.append(", ".join(self.municipality.eldership_by_id[e].get(locale) for e in rule.elderships))
        return " / ".join(parts) or _("everything")
