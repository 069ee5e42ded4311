"""The projects spreadsheet: import (a dry run first, then apply) and export, in one layout.

One table (an XLSX workbook's first sheet, or a CSV file, comma or semicolon separated), one row
per project or milestone, told apart by the `record` column (docs/projects.md):

    record, external_id, milestone, name_pl, name_lt, name_en, summary_pl, summary_lt, summary_en,
    elderships, team, status, progress, budget, funding, starts_on, latitude, longitude, address,
    link, baseline_due, current_due, milestone_status, date_met, reason

A project row is keyed by `external_id`; a milestone row by its project's `external_id` and its
`milestone` number, its title in `name_pl`/`name_lt`/`name_en`. Projects and milestones are
created or updated by those keys, never deleted. The dry run (`plan`) lists, row by row, what
would change and every error (row, column, why); `apply` applies a plan only when it has no
error, in one transaction, each change with its event and its followers' notice (through
bot.services.projects). The same file twice changes nothing; `export` writes the same layout.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from aiogram.utils.i18n import gettext as _
from sqlalchemy import select
from sqlmodel import col

from bot.municipality import Municipality
from bot.services import texts
from bot.services.projects import Actor, ProjectService
from bot.store.models import (
    Broadcast,
    Milestone,
    MilestoneStatus,
    Project,
    ProjectEvent,
    ProjectEventKind,
    ProjectStatus,
)

COLUMNS = (
    "record",
    "external_id",
    "milestone",
    "name_pl",
    "name_lt",
    "name_en",
    "summary_pl",
    "summary_lt",
    "summary_en",
    "elderships",
    "team",
    "status",
    "progress",
    "budget",
    "funding",
    "starts_on",
    "latitude",
    "longitude",
    "address",
    "link",
    "baseline_due",
    "current_due",
    "milestone_status",
    "date_met",
    "reason",
)
PROJECT, MILESTONE = "project", "milestone"
# About a dozen projects of the Vilnius District (the sandbox's teams): `make demo` imports it.
SAMPLE = Path(__file__).resolve().parents[1] / "municipalities" / "vilnius-district-projects.csv"
MAX_ROWS = 5000
MAX_BYTES = 5 * 1024 * 1024
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,31}$")
_LINK = re.compile(r"^https?://\S+$")
# Fields compared, changed and exported as they are (the rest: elderships, dates, numbers).
PROJECT_FIELDS = (
    "name_pl",
    "name_lt",
    "name_en",
    "summary_pl",
    "summary_lt",
    "summary_en",
    "elderships",
    "team_id",
    "progress",
    "budget",
    "funding",
    "starts_on",
    "latitude",
    "longitude",
    "address",
    "link",
)
MILESTONE_FIELDS = ("title_pl", "title_lt", "title_en")


class SheetError(Exception):
    """The file cannot be read at all (not a spreadsheet, wrong columns)."""


@dataclass(frozen=True)
class Problem:
    row: int
    column: str
    why: str


@dataclass(frozen=True)
class Change:
    row: int
    what: str


@dataclass
class ProjectRow:
    row: int
    external_id: str
    values: dict[str, Any]  # PROJECT_FIELDS
    status: str


@dataclass
class MilestoneRow:
    row: int
    external_id: str
    number: int
    values: dict[str, Any]  # MILESTONE_FIELDS
    baseline_due: date
    current_due: date
    status: str
    met_on: date | None
    reason: str | None


@dataclass
class Plan:
    projects: list[ProjectRow] = field(default_factory=list)
    milestones: list[MilestoneRow] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)

    @property
    def applicable(self) -> bool:
        return not self.errors and bool(self.changes)


# --- reading the file ---


def read_table(data: bytes, file_name: str) -> list[dict[str, str]]:
    """The rows as text by column name (row numbers: the list index + 2, the header being row 1)."""
    if len(data) > MAX_BYTES:
        raise SheetError(_("The file is larger than 5 MB."))
    if file_name.lower().endswith(".xlsx"):
        rows = _xlsx_rows(data)
    elif file_name.lower().endswith(".csv"):
        rows = _csv_rows(data)
    else:
        raise SheetError(_("Send an .xlsx or .csv file."))
    if not rows:
        raise SheetError(_("The file is empty."))
    header = [str(cell or "").strip().lower() for cell in rows[0]]
    missing = [name for name in ("record", "external_id", "name_pl", "name_lt") if name not in header]
    if missing:
        raise SheetError(
            _("The first row must name the columns; missing: {columns}.").format(columns=", ".join(missing))
        )
    unknown = [name for name in header if name and name not in COLUMNS]
    if unknown:
        raise SheetError(_("Unknown columns: {columns}.").format(columns=", ".join(unknown)))
    if len(rows) - 1 > MAX_ROWS:
        raise SheetError(
            _("At most {count} row at once.", "At most {count} rows at once.", MAX_ROWS).format(
                count=MAX_ROWS
            )
        )
    table = []
    for cells in rows[1:]:
        table.append(
            {name: _cell(cells[i]) if i < len(cells) else "" for i, name in enumerate(header) if name}
        )
    return table


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _xlsx_rows(data: bytes) -> list[list[object]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # openpyxl raises many kinds for a file that is not a workbook
        raise SheetError(_("This is not an XLSX workbook that can be read.")) from None
    sheet = workbook.worksheets[0]
    rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    workbook.close()
    return [row for row in rows if any(cell not in (None, "") for cell in row)]


def _csv_rows(data: bytes) -> list[list[object]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SheetError(_("The CSV file must be in UTF-8.")) from None
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    return [
        list(row)
        for row in csv.reader(io.StringIO(text), delimiter=delimiter)
        if any(cell.strip() for cell in row)
    ]


# --- checking rows ---


def parse_date(value: str) -> date:
    for pattern in ("%Y-%m-%d", "%d.%m.%Y"):
        try:
            return datetime.strptime(value.strip(), pattern).date()
        except ValueError:
            continue
    raise ValueError(value)


def _number(value: str) -> float:
    return float(value.replace(" ", "").replace("\u00a0", "").replace(",", "."))


class _Row:
    """One row being checked: its problems are collected, column by column."""

    def __init__(self, number: int, cells: dict[str, str], errors: list[Problem]) -> None:
        self.number, self.cells, self.errors = number, cells, errors
        self.ok = True

    def fail(self, column: str, why: str) -> None:
        self.ok = False
        self.errors.append(Problem(self.number, column, why))

    def text(self, column: str, limit: int, required: str | None = None) -> str:
        value = self.cells.get(column, "")
        if not value and required:
            self.fail(column, required)
        elif len(value) > limit:
            self.fail(
                column,
                _("longer than {count} character", "longer than {count} characters", limit).format(
                    count=limit
                ),
            )
        return value

    def day(self, column: str, required: bool = False) -> date | None:
        value = self.cells.get(column, "")
        if not value:
            if required:
                self.fail(column, _("a date is needed (YYYY-MM-DD)"))
            return None
        try:
            return parse_date(value)
        except ValueError:
            self.fail(column, _("not a date: “{value}” (YYYY-MM-DD or DD.MM.YYYY)").format(value=value[:40]))
            return None

    def amount(self, column: str, low: float, high: float) -> float | None:
        value = self.cells.get(column, "")
        if not value:
            return None
        try:
            number = _number(value)
        except ValueError:
            number = None
        if number is None or not low <= number <= high:
            self.fail(
                column,
                _("not a number from {low} to {high}: “{value}”").format(
                    low=low, high=high, value=value[:40]
                ),
            )
            return None
        return number


def _project_row(row: _Row, municipality: Municipality) -> ProjectRow | None:
    external_id = row.text("external_id", 32, _("the project's code is missing"))
    if external_id and not _CODE.match(external_id):
        row.fail("external_id", _("a code is letters, digits and . _ / - (at most 32)"))
    values: dict[str, Any] = {
        "name_pl": row.text("name_pl", 200, _("the Polish name is missing")),
        "name_lt": row.text("name_lt", 200, _("the Lithuanian name is missing")),
        "name_en": row.text("name_en", 200) or None,
        "summary_pl": row.text("summary_pl", 3000),
        "summary_lt": row.text("summary_lt", 3000),
        "summary_en": row.text("summary_en", 3000) or None,
        "funding": row.text("funding", 200) or None,
        "address": row.text("address", 300) or None,
        "link": row.text("link", 500) or None,
    }
    elderships = [e.strip() for e in re.split(r"[;,]", row.cells.get("elderships", "")) if e.strip()]
    unknown = [e for e in elderships if e not in municipality.eldership_by_id]
    if unknown:
        row.fail("elderships", _("unknown eldership: {ids}").format(ids=", ".join(unknown)))
    values["elderships"] = list(dict.fromkeys(elderships))
    team = row.text("team", 24, _("the responsible team is missing"))
    if team and team not in municipality.team_by_id:
        row.fail("team", _("unknown team: {id}").format(id=team))
    values["team_id"] = team
    status = row.cells.get("status", "") or ProjectStatus.PLANNED
    if status not in {s.value for s in ProjectStatus}:
        row.fail(
            "status",
            _("unknown status “{value}”: one of {values}").format(
                value=status[:40], values=", ".join(ProjectStatus)
            ),
        )
    progress = row.amount("progress", 0, 100)
    values["progress"] = int(progress or 0)
    values["budget"] = row.amount("budget", 0, 10**12)
    values["starts_on"] = row.day("starts_on")
    values["latitude"] = row.amount("latitude", -90, 90)
    values["longitude"] = row.amount("longitude", -180, 180)
    if (values["latitude"] is None) != (values["longitude"] is None):
        row.fail(
            "longitude" if values["longitude"] is None else "latitude",
            _("a place needs both latitude and longitude"),
        )
    if values["link"] and not _LINK.match(values["link"]):
        row.fail("link", _("a link starts with http:// or https://"))
    return ProjectRow(row.number, external_id, values, status) if row.ok else None


def _milestone_row(row: _Row) -> MilestoneRow | None:
    external_id = row.text("external_id", 32, _("the project's code is missing"))
    number = row.amount("milestone", 1, 999)
    if (number is None or not float(number).is_integer()) and row.ok:
        row.fail("milestone", _("the milestone's number (1, 2, …) is missing"))
    values = {
        "title_pl": row.text("name_pl", 200, _("the Polish name is missing")),
        "title_lt": row.text("name_lt", 200, _("the Lithuanian name is missing")),
        "title_en": row.text("name_en", 200) or None,
    }
    baseline = row.day("baseline_due", required=True)
    current = row.day("current_due") or baseline
    status = row.cells.get("milestone_status", "") or MilestoneStatus.SCHEDULED
    if status not in {s.value for s in MilestoneStatus}:
        row.fail(
            "milestone_status",
            _("unknown status “{value}”: one of {values}").format(
                value=status[:40], values=", ".join(MilestoneStatus)
            ),
        )
    met_on = row.day("date_met")
    reason = row.text("reason", 500) or None
    if not row.ok or baseline is None or current is None or number is None:
        return None
    return MilestoneRow(
        row.number, external_id, int(number), values, baseline, current, status, met_on, reason
    )


# --- the dry run ---


async def plan(service: ProjectService, table: list[dict[str, str]]) -> Plan:
    """What the rows would change, and every error; nothing is written."""
    result = Plan()
    municipality = service.municipality
    for index, cells in enumerate(table):
        row = _Row(index + 2, cells, result.errors)
        record = cells.get("record", "").lower()
        if record == PROJECT:
            parsed = _project_row(row, municipality)
            if parsed:
                result.projects.append(parsed)
        elif record == MILESTONE:
            parsed_milestone = _milestone_row(row)
            if parsed_milestone:
                result.milestones.append(parsed_milestone)
        else:
            row.fail("record", _("“project” or “milestone”"))
    _duplicates(result, table)
    async with service.database.read() as session:
        stored = {p.external_id: p for p in (await session.execute(select(Project))).scalars()}
        milestones = await service._milestones(session, [p.id for p in stored.values()])
    stored_milestones = {
        (p.external_id, m.number): m for p in stored.values() for m in milestones.get(p.id, [])
    }
    starts = {external_id: p.starts_on for external_id, p in stored.items()} | {
        p.external_id: p.values["starts_on"] for p in result.projects
    }
    for project_row in result.projects:
        _project_changes(result, project_row, stored.get(project_row.external_id))
    for milestone_row in result.milestones:
        if milestone_row.external_id not in starts:
            result.errors.append(
                Problem(
                    milestone_row.row,
                    "external_id",
                    _("no project has the code {code}").format(code=milestone_row.external_id),
                )
            )
            continue
        start = starts[milestone_row.external_id]
        if start is not None and min(milestone_row.baseline_due, milestone_row.current_due) < start:
            column = "baseline_due" if milestone_row.baseline_due < start else "current_due"
            result.errors.append(
                Problem(
                    milestone_row.row,
                    column,
                    _("due before the project starts ({date})").format(date=start.isoformat()),
                )
            )
            continue
        _milestone_changes(
            result, milestone_row, stored_milestones.get((milestone_row.external_id, milestone_row.number))
        )
    result.errors.sort(key=lambda p: (p.row, COLUMNS.index(p.column) if p.column in COLUMNS else 0))
    result.changes.sort(key=lambda c: c.row)
    return result


def _duplicates(result: Plan, table: list[dict[str, str]]) -> None:
    """A second row with the same key is an error, and is left out of the plan."""
    seen: dict[tuple[str, str, str], int] = {}
    duplicated: set[int] = set()
    for index, cells in enumerate(table):
        record = cells.get("record", "").lower()
        key = (
            record,
            cells.get("external_id", ""),
            cells.get("milestone", "") if record == MILESTONE else "",
        )
        if record not in (PROJECT, MILESTONE) or not key[1]:
            continue
        if key in seen:
            duplicated.add(index + 2)
            column = "milestone" if record == MILESTONE else "external_id"
            result.errors.append(
                Problem(index + 2, column, _("the same code as row {row}").format(row=seen[key]))
            )
        else:
            seen[key] = index + 2
    result.projects = [p for p in result.projects if p.row not in duplicated]
    result.milestones = [m for m in result.milestones if m.row not in duplicated]


def _shown(value: object) -> str:
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)[:60]


def _project_changes(result: Plan, row: ProjectRow, stored: Project | None) -> None:
    if stored is None:
        result.changes.append(
            Change(
                row.row,
                _("new project {code}: {name}").format(code=row.external_id, name=row.values["name_lt"]),
            )
        )
        return
    for name in PROJECT_FIELDS:
        old, new = getattr(stored, name), row.values[name]
        if _differs(old, new):
            result.changes.append(Change(row.row, f"{row.external_id}: {name} {_shown(old)} → {_shown(new)}"))
    if stored.status != row.status:
        result.changes.append(Change(row.row, f"{row.external_id}: status {stored.status} → {row.status}"))


def _differs(old: object, new: object) -> bool:
    if isinstance(old, float) or isinstance(new, float):
        return old is None or new is None or abs(float(old) - float(new)) > 1e-9  # type: ignore[arg-type]
    return (old or None) != (new or None)


def _milestone_changes(result: Plan, row: MilestoneRow, stored: Milestone | None) -> None:
    key = f"{row.external_id} #{row.number}"
    if stored is None:
        if row.current_due != row.baseline_due and not row.reason:
            result.errors.append(
                Problem(
                    row.row,
                    "reason",
                    _("the current due date differs from the baseline: the reason is needed"),
                )
            )
            return
        result.changes.append(
            Change(
                row.row,
                _("new milestone {key}: {title}, due {date}").format(
                    key=key, title=row.values["title_lt"], date=row.current_due
                ),
            )
        )
        return
    if row.baseline_due != stored.baseline_due:
        result.errors.append(
            Problem(
                row.row,
                "baseline_due",
                _(
                    "the baseline due date never changes (it was {date}): move current_due, with a reason"
                ).format(date=stored.baseline_due),
            )
        )
        return
    if row.current_due != stored.current_due:
        if not row.reason or row.reason == stored.reason:
            result.errors.append(
                Problem(
                    row.row,
                    "reason",
                    _("the due date moves from {old} to {new}: a new reason is needed").format(
                        old=stored.current_due, new=row.current_due
                    ),
                )
            )
            return
        result.changes.append(
            Change(row.row, f"{key}: current_due {stored.current_due} → {row.current_due} ({row.reason})")
        )
    for name in MILESTONE_FIELDS:
        if _differs(getattr(stored, name), row.values[name]):
            result.changes.append(
                Change(row.row, f"{key}: {name} {_shown(getattr(stored, name))} → {_shown(row.values[name])}")
            )
    if (
        row.status != stored.status
        or (row.met_on or None) != stored.met_on
        and row.status in (MilestoneStatus.MET, MilestoneStatus.PARTIALLY_MET)
    ):
        result.changes.append(Change(row.row, f"{key}: milestone_status {stored.status} → {row.status}"))


# --- applying ---


async def apply(service: ProjectService, table: list[dict[str, str]], actor: Actor) -> Plan:
    """The plan of these rows, applied if it has no error; one transaction, events, notices."""
    result = await plan(service, table)
    if not result.applicable:
        return result
    started: list[Broadcast] = []
    async with service.database.write() as session:
        projects = {p.external_id: p for p in (await session.execute(select(Project))).scalars()}
        for row in result.projects:
            project = projects.get(row.external_id)
            if project is None:
                project = Project(external_id=row.external_id, status=row.status, **row.values)
                session.add(project)
                await session.flush()
                projects[row.external_id] = project
                session.add(
                    ProjectEvent(
                        project_id=project.id,
                        kind=ProjectEventKind.CREATED,
                        actor_id=actor.id,
                        actor_name=actor.name,
                    )
                )
                continue
            changed = {
                name: [_json(getattr(project, name)), _json(row.values[name])]
                for name in PROJECT_FIELDS
                if _differs(getattr(project, name), row.values[name])
            }
            for name in changed:
                setattr(project, name, row.values[name])
            if changed:
                session.add(project)
                session.add(
                    ProjectEvent(
                        project_id=project.id,
                        kind=ProjectEventKind.CHANGED,
                        actor_id=actor.id,
                        actor_name=actor.name,
                        data=changed,
                    )
                )
            if project.status != row.status:
                await service.status(session, project, row.status, actor, started)
        ids = [p.id for p in projects.values()]
        stored = {
            (m.project_id, m.number): m
            for m in (
                await session.execute(select(Milestone).where(col(Milestone.project_id).in_(ids)))
            ).scalars()
        }
        for milestone_row in result.milestones:
            project = projects[milestone_row.external_id]
            await _apply_milestone(
                service,
                session,
                project,
                milestone_row,
                stored.get((project.id, milestone_row.number)),
                actor,
                started,
            )
    service._start(started)
    return result


async def _apply_milestone(
    service: ProjectService,
    session: Any,
    project: Project,
    row: MilestoneRow,
    milestone: Milestone | None,
    actor: Actor,
    started: list[Broadcast],
) -> None:
    if milestone is None:
        milestone = Milestone(
            project_id=project.id,
            number=row.number,
            baseline_due=row.baseline_due,
            current_due=row.current_due,
            status=row.status,
            met_on=row.met_on,
            reason=row.reason,
            **row.values,
        )
        session.add(milestone)
        await session.flush()
        session.add(
            ProjectEvent(
                project_id=project.id,
                milestone_id=milestone.id,
                kind=ProjectEventKind.CREATED,
                actor_id=actor.id,
                actor_name=actor.name,
                data={"milestone": row.number},
            )
        )
        return
    changed = {
        name: [getattr(milestone, name), row.values[name]]
        for name in MILESTONE_FIELDS
        if _differs(getattr(milestone, name), row.values[name])
    }
    for name in changed:
        setattr(milestone, name, row.values[name])
    if changed:
        session.add(milestone)
        session.add(
            ProjectEvent(
                project_id=project.id,
                milestone_id=milestone.id,
                kind=ProjectEventKind.CHANGED,
                actor_id=actor.id,
                actor_name=actor.name,
                data=changed,
            )
        )
    if row.current_due != milestone.current_due:
        assert row.reason is not None, "the plan refuses a move without a reason"
        await service.moved(session, project, milestone, row.current_due, row.reason, actor, started)
    if row.status != milestone.status or (
        row.met_on != milestone.met_on and row.status in (MilestoneStatus.MET, MilestoneStatus.PARTIALLY_MET)
    ):
        await service.milestone_status(session, project, milestone, row.status, row.met_on, actor, started)


def _json(value: object) -> object:
    return value.isoformat() if isinstance(value, date) else value


# --- the report of a dry run ---


def plan_text(result: Plan, limit: int = 3800) -> str:
    """The dry run for people (the current locale): errors first, then the changes, row by row."""
    lines: list[str] = []
    if result.errors:
        lines.append(
            _(
                "❌ {count} error: nothing will be applied.",
                "❌ {count} errors: nothing will be applied.",
                len(result.errors),
            ).format(count=len(result.errors))
        )
        lines += [
            _("row {row}, {column}: {why}").format(row=p.row, column=p.column, why=p.why)
            for p in result.errors
        ]
        lines.append("")
    if result.changes:
        lines.append(
            _("{count} change:", "{count} changes:", len(result.changes)).format(count=len(result.changes))
        )
        lines += [_("row {row}: {what}").format(row=c.row, what=c.what) for c in result.changes]
    elif not result.errors:
        lines.append(_("Nothing would change: the register already holds what the file says."))
    return texts.shorten("\n".join(lines).strip(), limit)


# --- export ---


async def export_rows(service: ProjectService) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for item in sorted(await service.listing(), key=lambda i: i.project.external_id):
        project = item.project
        cells = {name: _cell_out(getattr(project, name)) for name in PROJECT_FIELDS}
        cells["elderships"] = ";".join(project.elderships)
        cells["team"] = cells.pop("team_id")
        rows.append(
            {"record": PROJECT, "external_id": project.external_id, "status": project.status, **cells}
        )
        for milestone in item.milestones:
            rows.append(
                {
                    "record": MILESTONE,
                    "external_id": project.external_id,
                    "milestone": str(milestone.number),
                    "name_pl": milestone.title_pl,
                    "name_lt": milestone.title_lt,
                    "name_en": milestone.title_en or "",
                    "baseline_due": milestone.baseline_due.isoformat(),
                    "current_due": milestone.current_due.isoformat(),
                    "milestone_status": milestone.status,
                    "date_met": _cell_out(milestone.met_on),
                    "reason": milestone.reason or "",
                }
            )
    return [{name: row.get(name, "") for name in COLUMNS} for row in rows]


def _cell_out(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def write_table(rows: list[dict[str, str]], file_name: str) -> bytes:
    if file_name.lower().endswith(".xlsx"):
        from openpyxl import Workbook

        workbook = Workbook()
        sheet = workbook.active
        assert sheet is not None
        sheet.title = "projects"
        sheet.append(list(COLUMNS))
        for row in rows:
            sheet.append([row[name] for name in COLUMNS])
            for cell in sheet[sheet.max_row]:
                cell.data_type = "s"  # text, always: a name starting with "=" is no formula
        buffer = io.BytesIO()
        workbook.save(buffer)
        return buffer.getvalue()
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")
