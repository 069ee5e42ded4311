"""The quality report and poll results as people read them: a message, a chart (PNG), CSV and
XLSX files. All texts in the current gettext locale. matplotlib is imported when a chart is
drawn (it is slow to import and the bot should start fast)."""

from __future__ import annotations

import csv
import io
import textwrap
from html import escape
from typing import TYPE_CHECKING, Any

from aiogram.utils.i18n import gettext as _
from babel.numbers import format_decimal

from bot.services import texts
from bot.services.quality import MIN_GROUP, QualityReport, tables
from bot.services.surveys import PollResults
from bot.store.models import Channel, PollStatus, ResolvedAnswer

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from openpyxl import Workbook

BACKLOG_LINES = 5  # the largest groups in the message; the files have them all


def _number(value: float | None, digits: int = 1) -> str:
    """92,1 in Polish and Lithuanian, 92.1 in English; no trailing zeros."""
    return "—" if value is None else format_decimal(round(value, digits), format="#,##0." + "#" * digits, locale=texts.current_locale())


def report_message(report: QualityReport) -> str:
    period = report.period
    lines = [
        _("<b>Quality report</b> · {start} – {end}").format(start=texts.day(period.start), end=texts.day(period.end)),
        _("Received: <b>{received}</b> · closed: <b>{closed}</b>").format(received=report.received, closed=report.closed),
        _("Received by channel: Telegram {via_telegram} · registered by staff {by_staff} · Open311 {via_open311}").format(
            via_telegram=report.by_channel[Channel.TELEGRAM], by_staff=report.by_channel[Channel.STAFF], via_open311=report.by_channel[Channel.OPEN311]
        ),
        _("Closed within the legal deadline: <b>{share}%</b> ({on_time} of {closed})").format(
            share=_number(report.on_time_share), on_time=report.on_time, closed=report.closed
        ),
        _("Handling time in working days: median <b>{median}</b>, mean <b>{mean}</b>").format(
            median=_number(report.median_days), mean=_number(report.mean_days)
        ),
        _("Extensions granted: {extensions}").format(extensions=report.extensions),
        _("Overdue at the end of the period: <b>{overdue}</b> · open cases: {backlog}").format(overdue=report.overdue, backlog=report.backlog),
    ]
    for title, rows in ((_("Open cases by eldership"), report.backlog_by_eldership), (_("Open cases by category"), report.backlog_by_category)):
        if rows:
            shown = ", ".join(f"{escape(name)} {count}" for name, count in rows[:BACKLOG_LINES])
            more = _(" and {count} more").format(count=len(rows) - BACKLOG_LINES) if len(rows) > BACKLOG_LINES else ""
            lines.append(f"{title}: {shown}{more}")
    if len(report.teams) > 1:
        lines.append(_("<b>By team</b>:"))
        for team in report.teams:
            lines.append(
                _(
                    "{team}: received {received} · passed on {passed_on} (median wait {wait}) · closed {closed}, {on_time} on time · median handling {median}"
                ).format(
                    team=escape(team.team),
                    received=team.received,
                    passed_on=team.passed_on,
                    wait=_number(team.median_wait),
                    closed=team.closed,
                    on_time=team.on_time,
                    median=_number(team.median_days),
                )  # fmt: skip
            )
    if report.answers:
        distribution = " · ".join(f"{score}★ {report.scores[score]}" for score in range(5, 0, -1))
        lines.append(
            _(
                "Satisfaction: <b>{average}</b> of 5 from {count} answer ({distribution})",
                "Satisfaction: <b>{average}</b> of 5 from {count} answers ({distribution})",
                report.answers,
            ).format(average=_number(report.average_score, 2), count=report.answers, distribution=distribution)
        )
        lines.append(
            _("Matter resolved: yes {yes}% · partly {partly}% · no {no}%").format(
                yes=_number(report.resolved_share(ResolvedAnswer.YES)),
                partly=_number(report.resolved_share(ResolvedAnswer.PARTLY)),
                no=_number(report.resolved_share(ResolvedAnswer.NO)),
            )
        )
        if report.comments:
            lines.append(_("Comments: {count} (in the XLSX file)").format(count=len(report.comments)))
    else:
        lines.append(_("Satisfaction: no answers in this period."))
    return "\n".join(lines)


def report_chart(report: QualityReport) -> Figure:
    """The weekly trend (received, closed, share on time) and the satisfaction distribution."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(9, 7), dpi=100, layout="constrained")
    trend, scores = figure.subplots(2, 1, height_ratios=[3, 2])
    weeks = [w.start.strftime("%m-%d") for w in report.weeks]
    positions = range(len(weeks))
    trend.bar([p - 0.2 for p in positions], [w.received for w in report.weeks], width=0.4, label=_("Cases received"), color="#4c78a8")
    trend.bar([p + 0.2 for p in positions], [w.closed for w in report.weeks], width=0.4, label=_("Cases closed"), color="#72b7b2")
    # Headroom above the bars and the line keeps the legend clear of both.
    trend.set_ylim(0, max([1, *(max(w.received, w.closed) for w in report.weeks)]) * 1.4)
    trend.yaxis.set_major_locator(MaxNLocator(integer=True))
    trend.set_xticks(list(positions), weeks, rotation=45 if len(weeks) > 8 else 0)
    trend.set_ylabel(_("Cases"))
    trend.set_title(_("Weekly trend, {start} – {end}").format(start=report.period.start.isoformat(), end=report.period.end.isoformat()))
    share = trend.twinx()
    share.plot(
        list(positions),
        [w.on_time_share if w.on_time_share is not None else float("nan") for w in report.weeks],
        color="#e45756",
        marker="o",
        label=_("On time, %"),
    )
    share.set_ylim(0, 140)
    share.set_yticks([0, 25, 50, 75, 100])
    share.set_ylabel(_("On time, %"))
    handles = trend.get_legend_handles_labels()[0] + share.get_legend_handles_labels()[0]
    trend.legend(handles=handles, loc="upper left", ncols=3)

    counts = [report.scores[score] for score in range(1, 6)]
    bars = scores.bar([str(score) for score in range(1, 6)], counts, color="#f58518")
    scores.bar_label(bars, padding=2)
    scores.yaxis.set_major_locator(MaxNLocator(integer=True))
    scores.set_ylim(0, max([1, *counts]) * 1.15)
    scores.set_xlabel(_("Satisfaction score"))
    scores.set_ylabel(_("Answers"))
    scores.set_title(
        _("Satisfaction: average {average} from {count} answer", "Satisfaction: average {average} from {count} answers", report.answers).format(
            average=_number(report.average_score, 2), count=report.answers
        )
    )
    return figure


def poll_chart(results: PollResults, locale: str) -> Figure:
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    questions = results.questions
    figure = Figure(figsize=(8, 2.2 + 1.6 * sum(len(q.options) for q in questions) / 2), dpi=100, layout="constrained")
    axes = figure.subplots(len(questions), 1, squeeze=False)[:, 0]
    for axis, question, counts in zip(axes, questions, results.counts, strict=True):
        labels = [option.get(locale) for option in question.options]
        bars = axis.barh(labels[::-1], counts[::-1], color="#4c78a8")
        axis.bar_label(bars, padding=3)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_xlim(0, max([1, *counts]) * 1.1)
        axis.set_title(_wrap(question.text.get(locale)), fontsize=10)
    figure.suptitle(_("Poll #{id}: {count} answer", "Poll #{id}: {count} answers", results.respondents).format(id=results.poll.id, count=results.respondents))
    return figure


def _wrap(text: str, width: int = 70) -> str:
    return "\n".join(textwrap.wrap(text, width)) or text


def png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def report_csv(report: QualityReport) -> bytes:
    """All tables in one CSV: each under its title, separated by an empty line (UTF-8 with BOM,
    so that spreadsheets read the diacritics)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for title, headers, rows in tables(report):
        writer.writerow([title])
        writer.writerow(headers)
        writer.writerows([[_csv_cell(cell) for cell in row] for row in rows])
        writer.writerow([])
    return buffer.getvalue().encode("utf-8-sig")


# A spreadsheet reads a cell starting with one of these as a formula (OWASP, "CSV injection"):
# residents' comments must stay text. In CSV such a cell gets a leading ', in XLSX the string type.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _formula_like(cell: object) -> bool:
    return isinstance(cell, str) and cell.startswith(FORMULA_STARTS)


def _csv_cell(cell: object) -> object:
    if cell is None:
        return ""
    return f"'{cell}" if _formula_like(cell) else cell


def report_xlsx(report: QualityReport) -> bytes:
    """One sheet per table, numbers as numbers, text (residents' comments too) always as text."""
    buffer = io.BytesIO()
    tables_workbook(tables(report)).save(buffer)
    return buffer.getvalue()


def tables_workbook(named_tables: list[tuple[str, list[str], list[list[Any]]]]) -> Workbook:
    """A workbook with one sheet per (title, headers, rows) table (the report's, the management review's)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    workbook.remove(workbook.active)
    for title, headers, rows in named_tables:
        sheet = workbook.create_sheet(sheet_name(title))
        sheet.append(headers)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in rows:
            sheet.append(row)
            for cell in sheet[sheet.max_row]:
                if _formula_like(cell.value):
                    # openpyxl turns a str starting with "=" into a formula; quotePrefix keeps it text when edited in Excel.
                    cell.data_type, cell.quotePrefix = "s", True
        for column, header in zip(sheet.columns, headers, strict=False):
            width = max([len(str(header)), *(len(str(c.value)) for c in column if c.value is not None)])
            sheet.column_dimensions[column[0].column_letter].width = min(60, width + 2)
    return workbook


def sheet_name(title: str) -> str:
    for forbidden in "[]:*?/\\":
        title = title.replace(forbidden, " ")
    return title[:31]


def results_message(results: PollResults, locale: str) -> str:
    poll = results.poll
    state = _("open") if poll.status == PollStatus.OPEN else _("closed")
    lines = [
        _("📊 <b>Poll #{id}</b> ({state}): {count} answer", "📊 <b>Poll #{id}</b> ({state}): {count} answers", results.respondents).format(
            id=poll.id, state=state, count=results.respondents
        )
    ]
    for number, (question, counts) in enumerate(zip(results.questions, results.counts, strict=True), start=1):
        lines.append("")
        lines.append(f"<b>{number}. {escape(question.text.get(locale))}</b>")
        for option, count in zip(question.options, counts, strict=True):
            share = f" ({_number(100.0 * count / results.respondents)}%)" if results.respondents else ""
            lines.append(f"• {escape(option.get(locale))}: {count}{share}")
    if results.by_locale:
        languages = " · ".join(
            f"{texts.LANGUAGE_NAMES.get(code, code)} {count if count >= MIN_GROUP else _('fewer than {min}').format(min=MIN_GROUP)}"
            for code, count in sorted(results.by_locale.items())
        )
        lines.append("")
        lines.append(_("By language: {languages}").format(languages=languages))
    return "\n".join(lines)
