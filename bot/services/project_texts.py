"""How a project reads, in the current locale: statuses, slips, a resident's page, a staff card,
the notices followers get. Dates and durations through Babel; every text through gettext."""

from __future__ import annotations

from datetime import date, timedelta
from html import escape

from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import lazy_gettext as __
from babel.dates import format_timedelta
from babel.numbers import format_currency

from bot.municipality import Municipality
from bot.services import texts
from bot.services.html_text import truncate_html
from bot.store.models import Milestone, MilestoneStatus, Project, ProjectStatus, ProjectUpdate

STATUS_LABELS = {
    ProjectStatus.PLANNED: __("planned"),
    ProjectStatus.PROCUREMENT: __("procurement"),
    ProjectStatus.UNDER_WAY: __("under way"),
    ProjectStatus.COMPLETED: __("completed"),
    ProjectStatus.SUSPENDED: __("suspended"),
    ProjectStatus.CANCELLED: __("cancelled"),
}
MILESTONE_LABELS = {
    MilestoneStatus.SCHEDULED: __("scheduled"),
    MilestoneStatus.MET: __("met"),
    MilestoneStatus.NOT_MET: __("not met"),
    MilestoneStatus.PARTIALLY_MET: __("partly met"),
}
MILESTONE_ICONS = {
    MilestoneStatus.SCHEDULED: "⏳",
    MilestoneStatus.MET: "✅",
    MilestoneStatus.NOT_MET: "❌",
    MilestoneStatus.PARTIALLY_MET: "◐",
}


def status_label(status: str) -> str:
    return str(STATUS_LABELS[ProjectStatus(status)])


def milestone_label(status: str) -> str:
    return str(MILESTONE_LABELS[MilestoneStatus(status)])


def localized(pl: str, lt: str, en: str | None, locale: str) -> str:
    """Polish, Lithuanian, or English falling back to Lithuanian (the official language)."""
    return pl if locale == "pl" else en if locale == "en" and en else lt


def name(project: Project, locale: str | None = None) -> str:
    return localized(project.name_pl, project.name_lt, project.name_en, locale or texts.current_locale())


def summary(project: Project, locale: str | None = None) -> str:
    return localized(
        project.summary_pl, project.summary_lt, project.summary_en, locale or texts.current_locale()
    )


def title(milestone: Milestone, locale: str | None = None) -> str:
    return localized(
        milestone.title_pl, milestone.title_lt, milestone.title_en, locale or texts.current_locale()
    )


def slip_days(milestone: Milestone) -> int:
    return (milestone.current_due - milestone.baseline_due).days


def duration(days: int) -> str:
    """ "3 miesiące", "10 dienų": weeks and months only from four weeks on, so a short slip reads exactly."""
    delta = timedelta(days=abs(days))
    return format_timedelta(delta, threshold=1.0 if abs(days) >= 28 else 5.0, locale=texts.current_locale())


def slip(milestone: Milestone) -> str:
    """ "planned for 30 June 2026, now 30 September 2026 (+3 months): the reason"; "" when on time."""
    days = slip_days(milestone)
    if days == 0:
        return ""
    sign = "+" if days > 0 else "−"
    line = _("planned for {baseline}, now {current} ({sign}{duration})").format(
        baseline=texts.day(milestone.baseline_due),
        current=texts.day(milestone.current_due),
        sign=sign,
        duration=duration(days),
    )
    return f"{line}: {escape(milestone.reason)}" if milestone.reason else line


def project_slip_days(milestones: list[Milestone]) -> int:
    """How far the project has slipped: its most slipped milestone, in days (0: on schedule)."""
    return max((slip_days(m) for m in milestones), default=0)


def next_milestone(milestones: list[Milestone]) -> Milestone | None:
    open_ = [m for m in milestones if m.status == MilestoneStatus.SCHEDULED]
    return min(open_, key=lambda m: (m.current_due, m.number), default=None)


def where(project: Project, municipality: Municipality) -> str:
    if not project.elderships:
        return _("the whole district")
    locale = texts.current_locale()
    return ", ".join(
        e.get(locale) for eid in project.elderships if (e := municipality.eldership_by_id.get(eid))
    )


def budget(project: Project) -> str:
    return (
        format_currency(project.budget, "EUR", locale=texts.current_locale())
        if project.budget is not None
        else "—"
    )


def milestone_line(milestone: Milestone) -> str:
    line = f"{MILESTONE_ICONS[MilestoneStatus(milestone.status)]} {escape(title(milestone))}: {texts.day(milestone.current_due)} · {milestone_label(milestone.status)}"
    if milestone.met_on:
        line += " · " + _("met on {date}").format(date=texts.day(milestone.met_on))
    moved = slip(milestone)
    return f"{line}\n    ↪ {moved}" if moved else line


def page(
    project: Project, milestones: list[Milestone], update: ProjectUpdate | None, municipality: Municipality
) -> str:
    """A project as residents (and staff) see it: status, progress, the next milestone, slips, the latest update."""
    locale = texts.current_locale()
    lines = [
        f"🏗 <b>{escape(name(project))}</b>",
        escape(summary(project)),
        "",
        _("Status: {status} · progress {progress}%").format(
            status=status_label(project.status), progress=project.progress
        ),
        _("Where: {where}").format(where=escape(where(project, municipality))),
        _("Budget: {budget} · funding: {funding}").format(
            budget=budget(project), funding=escape(project.funding or "—")
        ),
    ]
    if project.address:
        lines.append(_("Address: {value}").format(value=escape(project.address)))
    coming = next_milestone(milestones)
    if coming is not None:
        lines += [
            "",
            _("<b>Next:</b> {title}, {date}").format(
                title=escape(title(coming)), date=texts.day(coming.current_due)
            ),
        ]
    slipped = project_slip_days(milestones)
    if slipped > 0:
        lines.append(_("⚠️ Behind its first plan by {duration}").format(duration=duration(slipped)))
    if milestones:
        lines += ["", _("<b>Milestones</b>")] + [milestone_line(m) for m in milestones]
    if update is not None:
        text = update.text_pl if locale == "pl" else update.text_lt
        lines += [
            "",
            _("<b>Latest update</b>, {date}:").format(date=texts.day(update.at.date())),
            escape(text),
        ]
    if project.link:
        lines += ["", escape(project.link)]
    return truncate_html("\n".join(lines), 4000)


def list_line(project: Project, milestones: list[Milestone]) -> str:
    slipped = project_slip_days(milestones)
    mark = f" ⚠️ +{duration(slipped)}" if slipped > 0 else ""
    return f"{name(project)} · {project.progress}%{mark}"


# --- what followers are told (bot.services.projects builds one per locale) ---


def notice_status(project: Project, old: str) -> str:
    return _("🏗 <b>{name}</b>: the status changed from “{old}” to “{new}” (progress {progress}%).").format(
        name=escape(name(project)),
        old=status_label(old),
        new=status_label(project.status),
        progress=project.progress,
    )


def notice_milestone(project: Project, milestone: Milestone) -> str:
    if milestone.status == MilestoneStatus.MET:
        text = _("✅ <b>{name}</b>: “{title}” was completed on {date}.")
    elif milestone.status == MilestoneStatus.PARTIALLY_MET:
        text = _("◐ <b>{name}</b>: “{title}” was partly completed on {date}.")
    else:
        text = _("❌ <b>{name}</b>: “{title}” was not completed by {date}.")
    when = milestone.met_on if milestone.met_on else milestone.current_due
    return text.format(name=escape(name(project)), title=escape(title(milestone)), date=texts.day(when))


def notice_moved(project: Project, milestone: Milestone, old: date, reason: str) -> str:
    days = (milestone.current_due - old).days
    sign = "+" if days > 0 else "−"
    return _(
        "📅 <b>{name}</b>: “{title}” moved from {old} to {new} ({sign}{duration}). Why: {reason}"
    ).format(
        name=escape(name(project)),
        title=escape(title(milestone)),
        old=texts.day(old),
        new=texts.day(milestone.current_due),
        sign=sign,
        duration=duration(days),
        reason=escape(reason),
    )


def notice_update(project: Project, update: ProjectUpdate, limit: int = 3500) -> str:
    """`limit`: the update's own text is cut to it (a photo's caption holds 1024 characters)."""
    text = update.text_pl if texts.current_locale() == "pl" else update.text_lt
    return _("📰 <b>{name}</b>: {text}").format(
        name=escape(name(project)), text=escape(texts.shorten(text, limit))
    )
