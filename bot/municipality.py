"""The municipality file (TOML): names, elderships, categories, teams, routing, templates,
objectives: the domain the desk serves, validated at start-up. Process settings: bot/settings.py."""

from __future__ import annotations

import re
import tomllib
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from bot.settings import KIND_CODES, ConfigError


class LocalizedName(BaseModel):
    """A name in Polish and Lithuanian; English falls back to Lithuanian (place names)."""

    model_config = {"extra": "forbid"}

    pl: Annotated[str, Field(min_length=1, max_length=60)]
    lt: Annotated[str, Field(min_length=1, max_length=60)]
    en: Annotated[str | None, Field(min_length=1, max_length=60)] = None

    def get(self, locale: str) -> str:
        if locale == "pl":
            return self.pl
        if locale == "en" and self.en:
            return self.en
        return self.lt


class Entry(LocalizedName):
    id: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,24}$")]


NEARBY_RADIUS_M = (
    250  # "me too": how far open cases of a category are offered, unless the category says otherwise
)


class Category(Entry):
    """A category of cases; `radius_m`: how far away an open report of it is offered as "me too"."""

    radius_m: Annotated[int, Field(ge=10, le=5000)] = NEARBY_RADIUS_M


class LocalizedText(BaseModel):
    """A text residents read, in each language; English falls back to Polish."""

    model_config = {"extra": "forbid"}

    pl: Annotated[str, Field(min_length=1, max_length=3000)]
    lt: Annotated[str, Field(min_length=1, max_length=3000)]
    en: Annotated[str | None, Field(min_length=1, max_length=3000)] = None

    def get(self, locale: str) -> str:
        return {"pl": self.pl, "lt": self.lt}.get(locale) or self.en or self.pl


class Template(BaseModel):
    """A canned answer clerks can send; offered for the given kinds and statuses (all if empty)."""

    model_config = {"extra": "forbid"}

    id: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,24}$")]
    title: LocalizedName
    text: LocalizedText
    kinds: list[Literal["request", "complaint", "report"]] = []
    statuses: list[
        Literal["new", "assigned", "in_progress", "answered", "redirected", "rejected", "reopened"]
    ] = []

    def fits(self, kind: str, status: str) -> bool:
        return (not self.kinds or kind in self.kinds) and (not self.statuses or status in self.statuses)


class KindRules(BaseModel):
    model_config = {"extra": "forbid"}

    deadline_days: Annotated[int, Field(ge=1, le=120)]
    max_extension_days: Annotated[int, Field(ge=0, le=120)]
    retention_years: Annotated[int, Field(ge=1, le=100)]  # after closing, then the personal data goes


class Privacy(BaseModel):
    """Who answers for residents' data: named in the privacy notice (/privacy)."""

    model_config = {"extra": "forbid"}

    controller: LocalizedText  # the controller's name and address
    dpo: Annotated[str, Field(min_length=3, max_length=200)]  # the data protection officer's contact


class Team(BaseModel):
    """A department, an eldership or the front office: the clerks who own a set of cases.

    `members` and `heads` are Telegram user ids; heads also assign cases. A team that lists
    nobody lets every member of its group who may post there act (the zero-config desk). Admins
    of the group may always act (bot.services.roles)."""

    model_config = {"extra": "forbid"}

    id: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,24}$")]
    name: LocalizedName
    chat_id: Annotated[int, Field(lt=0)]  # the team's (forum) supergroup; several teams may share one
    heads: list[int] = []
    members: list[int] = []
    quality: bool = False  # the quality team: objectives' reviews, nonconformities, visitors' proposals (at most one team)

    def lists_people(self) -> bool:
        return bool(self.heads or self.members)


class CommsStaff(BaseModel):
    """Who acts in the communications group (COMMS_CHAT_ID): these Telegram user ids and the
    group's admins; when nobody is listed, every member of the group who may post there."""

    model_config = {"extra": "forbid"}

    members: list[int] = []


PLACE_ID_MAX = 40  # "v_" + the id in Telegram's 64-character start payload of A-Za-z0-9_-
PLACE_ID_PATTERN = rf"^[a-z0-9-]{{1,{PLACE_ID_MAX}}}$"


class Place(BaseModel):
    """Where people are served in person (a desk of the front office, an eldership's office): the
    visit survey's QR poster hangs there (bot.services.visits). `team` prints its poster (the
    default team when left out); `eldership` says where it is."""

    model_config = {"extra": "forbid"}

    id: str
    name: LocalizedName
    team: str | None = None
    eldership: str | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not re.fullmatch(PLACE_ID_PATTERN, value):
            raise ValueError(
                f"{value[:60]!r}: the id must be 1-{PLACE_ID_MAX} of a-z 0-9 - (it goes into the poster's link)"
            )
        return value


class RoutingRule(BaseModel):
    """Cases of these kinds, categories and elderships (any, where a list is empty) go to `team`."""

    model_config = {"extra": "forbid"}

    team: str
    kinds: list[Literal["request", "complaint", "report"]] = []
    categories: list[str] = []
    elderships: list[str] = []

    def matches(self, kind: str, category_id: str, eldership_id: str | None) -> bool:
        return (
            (not self.kinds or kind in self.kinds)
            and (not self.categories or category_id in self.categories)
            and (not self.elderships or eldership_id in self.elderships)
        )


class Routing(BaseModel):
    """The first matching rule wins; no match: `default_team`. Overdue cases also go to `escalation_team`."""

    model_config = {"extra": "forbid"}

    default_team: str
    escalation_team: str | None = None
    rules: list[RoutingRule] = []


class Objective(BaseModel):
    """A quality objective (ISO 9001, 6.2): a figure of the quality report, compared with a target
    for each month or quarter, for one team or (`team` left out) the whole municipality.

    on_time_share: % closed within the legal deadline; median_handling_days: working days;
    average_satisfaction: 1 to 5 (the whole municipality only: answers carry no team);
    overdue_at_period_end: open cases past their deadline on the period's last day;
    milestones_on_time: % of the project milestones planned (baseline) in the period that were met
    by that date (the project register; `team`: its projects only)."""

    model_config = {"extra": "forbid"}

    id: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,24}$")]
    name: LocalizedName
    metric: Literal[
        "on_time_share",
        "median_handling_days",
        "average_satisfaction",
        "overdue_at_period_end",
        "milestones_on_time",
    ]
    comparison: Literal[">=", "<="]
    target: Annotated[float, Field(ge=0, le=100_000)]
    period: Literal["month", "quarter"] = "month"
    team: str | None = None  # None: the whole municipality

    def met_by(self, figure: float) -> bool:
        return figure >= self.target if self.comparison == ">=" else figure <= self.target


class PlannedAudit(BaseModel):
    """An internal audit of the audit programme (ISO 9001, 9.2.2): a team, a month or quarter as
    /audit takes it, and the auditor (a Telegram user id, never of the audited team)."""

    model_config = {"extra": "forbid"}

    team: str
    period: Annotated[str, Field(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2]|Q[1-4])$")]  # 2026-11, 2026-Q4
    auditor: Annotated[int, Field(gt=0)]


class NcRules(BaseModel):
    """Nonconformities opened from the cases themselves, one per team and ISO week listing them
    (bot.services.nonconformities.Nonconformities.from_cases)."""

    model_config = {"extra": "forbid"}

    closed_late: bool = False  # a case closed after its deadline
    low_rating: bool = False  # a satisfaction rating of 1 or 2 with "not resolved" (anonymous: counted for its category's team)
    # A corrective action this many working days past its due date and not done: the quality group
    # is told, once.
    overdue_action_days: Annotated[int, Field(ge=1, le=60)] = 1


DEFAULT_TEAM_ID = "desk"


class Municipality(BaseModel):
    """Everything municipality-specific that is not a process setting."""

    model_config = {"extra": "forbid"}

    name: LocalizedName
    elderships: list[Entry]
    categories: list[Category]
    kinds: dict[str, KindRules]
    privacy: Privacy
    news_topics: list[Entry] = []
    templates: list[Template] = []
    teams: list[Team] = []
    routing: Routing | None = None
    comms: CommsStaff = CommsStaff()
    places: list[Place] = []
    objectives: list[Objective] = []
    nc_rules: NcRules = NcRules()
    audit_programme: list[PlannedAudit] = []

    @model_validator(mode="after")
    def _consistent(self) -> Municipality:
        for field in ("elderships", "categories", "news_topics", "templates"):
            entries = getattr(self, field)
            if not entries and field in ("elderships", "categories"):
                raise ValueError(f"{field}: at least one entry is needed")
            ids = [entry.id for entry in entries]
            duplicates = sorted({i for i in ids if ids.count(i) > 1})
            if duplicates:
                raise ValueError(f"{field}: duplicate id {', '.join(duplicates)}")
        missing = [code for code in KIND_CODES if code not in self.kinds]
        unknown = [code for code in self.kinds if code not in KIND_CODES]
        if missing or unknown:
            raise ValueError(f"kinds: expected exactly {', '.join(KIND_CODES)}")
        self._check_teams()
        self._check_places()
        self._check_objectives()
        self._check_audit_programme()
        return self

    def _check_places(self) -> None:
        """Each place named in the error: a duplicate id, a team or an eldership the file does not have."""
        seen: set[str] = set()
        known_teams = {team.id for team in self.teams}
        for number, place in enumerate(self.places, start=1):
            where = f"places[{number}] ({place.id})"
            if place.id in seen:
                raise ValueError(f"{where}: duplicate id")
            seen.add(place.id)
            if place.team is not None and place.team not in known_teams:
                raise ValueError(
                    f"{where}: unknown team {place.team}"
                    + (
                        ""
                        if known_teams
                        else " (the file has no [[teams]]: leave team out for the default team)"
                    )
                )
            if place.eldership is not None and place.eldership not in self.eldership_by_id:
                raise ValueError(f"{where}: unknown eldership {place.eldership}")

    def _check_teams(self) -> None:
        ids = [team.id for team in self.teams]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"teams: duplicate id {', '.join(duplicates)}")
        if self.teams and self.routing is None:
            raise ValueError("routing: missing; name at least the default_team")
        quality = [team.id for team in self.teams if team.quality]
        if len(quality) > 1:
            raise ValueError(f"teams: quality = true on {', '.join(quality)}; mark one team only")
        if self.routing is None:
            return
        if not self.teams:
            raise ValueError("routing: there are no teams to route to (add [[teams]])")
        known = set(ids)
        for where, team in (
            ("routing.default_team", self.routing.default_team),
            ("routing.escalation_team", self.routing.escalation_team),
        ):
            if team is not None and team not in known:
                raise ValueError(f"{where}: unknown team {team}")
        for number, rule in enumerate(self.routing.rules, start=1):
            where = f"routing.rules[{number}]"
            if rule.team not in known:
                raise ValueError(f"{where}: unknown team {rule.team}")
            unknown_ids = [c for c in rule.categories if c not in self.category_by_id] + [
                e for e in rule.elderships if e not in self.eldership_by_id
            ]
            if unknown_ids:
                raise ValueError(f"{where}: unknown category or eldership {', '.join(unknown_ids)}")
            shadowing = next(
                (
                    i
                    for i, earlier in enumerate(self.routing.rules[: number - 1], start=1)
                    if _covers(earlier, rule)
                ),
                None,
            )
            if shadowing is not None:
                raise ValueError(
                    f"{where}: can never match, rule {shadowing} before it takes every case it would"
                )

    def _check_objectives(self) -> None:
        ids = [objective.id for objective in self.objectives]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"objectives: duplicate id {', '.join(duplicates)}")
        known = {team.id for team in self.teams}
        for number, objective in enumerate(self.objectives, start=1):
            where = f"objectives[{number}]"
            if objective.team is not None and objective.team not in known:
                raise ValueError(f"{where}: unknown team {objective.team}")
            if objective.team is not None and objective.metric == "average_satisfaction":
                raise ValueError(
                    f"{where}: average_satisfaction is measured for the whole municipality only (answers carry no team)"
                )
            if objective.metric in ("on_time_share", "milestones_on_time") and objective.target > 100:
                raise ValueError(f"{where}: a share is at most 100")
            if objective.metric == "average_satisfaction" and not 1 <= objective.target <= 5:
                raise ValueError(f"{where}: satisfaction is from 1 to 5")

    def _check_audit_programme(self) -> None:
        for number, planned in enumerate(self.audit_programme, start=1):
            team = self.team_by_id.get(planned.team)
            if team is None:
                raise ValueError(f"audit_programme[{number}]: unknown team {planned.team}")
            if planned.auditor in (*team.heads, *team.members):
                raise ValueError(
                    f"audit_programme[{number}]: the auditor {planned.auditor} is of team {team.id}: an auditor never audits their own team"
                )

    @property
    def quality_team(self) -> Team:
        """Where quality matters go: the team marked `quality = true`, else the default team."""
        marked = next((team for team in self.teams if team.quality), None)
        if marked is not None:
            return marked
        assert self.routing is not None, "with_default_team gives every municipality a routing"
        return self.team_by_id[self.routing.default_team]

    @cached_property
    def objective_by_id(self) -> dict[str, Objective]:
        return {objective.id: objective for objective in self.objectives}

    def with_default_team(self, chat_id: int) -> Municipality:
        """Without teams in the file: one team in the clerks' group (ADMIN_CHAT_ID) takes every case."""
        if self.teams:
            return self
        desk = Team(
            id=DEFAULT_TEAM_ID,
            name=LocalizedName(pl="Urzędnicy", lt="Specialistai", en="Clerks"),
            chat_id=chat_id,
        )
        return self.model_copy(update={"teams": [desk], "routing": Routing(default_team=DEFAULT_TEAM_ID)})

    @cached_property
    def team_by_id(self) -> dict[str, Team]:
        return {team.id: team for team in self.teams}

    @cached_property
    def eldership_by_id(self) -> dict[str, Entry]:
        return {entry.id: entry for entry in self.elderships}

    @cached_property
    def category_by_id(self) -> dict[str, Category]:
        return {entry.id: entry for entry in self.categories}

    @cached_property
    def place_by_id(self) -> dict[str, Place]:
        return {place.id: place for place in self.places}


def _covers(earlier: RoutingRule, later: RoutingRule) -> bool:
    """Every case `later` matches is matched by `earlier` first."""
    return all(
        not wide or (narrow and set(narrow) <= set(wide))
        for wide, narrow in (
            (earlier.kinds, later.kinds),
            (earlier.categories, later.categories),
            (earlier.elderships, later.elderships),
        )
    )


def load_municipality(path: Path) -> Municipality:
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"MUNICIPALITY_FILE: {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"MUNICIPALITY_FILE: {path} is not valid TOML ({exc})") from None
    try:
        return Municipality.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"MUNICIPALITY_FILE: {path}: {_first_error(exc)}") from None


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message
