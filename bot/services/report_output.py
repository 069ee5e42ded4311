"""The quality report and poll results as people read them: a message, a chart (PNG), CSV and
XLSX files. All texts in the current gettext locale. matplotlib is imported when a chart is
drawn (it is slow to import and the bot should start fast)."""

from __future__ import annotations

import csv
import io
import textwrap
from datetime import date
from html import escape
from typing import TYPE_CHECKING, Any

from aiogram.utils.i18n import gettext as _
from babel.numbers import format_decimal

from bot.services import texts
from bot.services.quality import MIN_GROUP, PlaceFigures, QualityReport, tables, waiting_labels
from bot.services.surveys import PollResults
from bot.store.models import Channel, PollStatus, ResolvedAnswer, WaitingTime

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from openpyxl import Workbook

BACKLOG_LINES = 5  # the largest groups in the message; the files have them all


def _number(value: float | None, digits: int = 1) -> str:
    """92,1 in Polish and Lithuanian, 92.1 in English; no trailing zeros."""
    return (
        "—"
        if value is None
        else format_decimal(
            round(value, digits), format="#,##0." + "#" * digits, locale=texts.current_locale()
        )
    )


def report_message(report: QualityReport) -> str:
    period = report.period
    lines = [
        _("<b>Quality report</b> · {start} – {end}").format(
            start=texts.day(period.start), end=texts.day(period.end)
        ),
        _("Scope: {scope}").format(scope=escape(report.scope_label)),
        _("Received: <b>{received}</b> · closed: <b>{closed}</b>").format(
            received=report.received, closed=report.closed
        ),
        _(
            "Received by channel: Telegram {via_telegram} · registered by staff {by_staff} · Open311 {via_open311}"
        ).format(
            via_telegram=report.by_channel[Channel.TELEGRAM],
            by_staff=report.by_channel[Channel.STAFF],
            via_open311=report.by_channel[Channel.OPEN311],
        ),
        _("Closed within the legal deadline: <b>{share}%</b> ({on_time} of {closed})").format(
            share=_number(report.on_time_share), on_time=report.on_time, closed=report.closed
        ),
        _("Handling time in working days: median <b>{median}</b>, mean <b>{mean}</b>").format(
            median=_number(report.median_days), mean=_number(report.mean_days)
        ),
        _("Extensions granted: {extensions}").format(extensions=report.extensions),
        _("Overdue at the end of the period: <b>{overdue}</b> · open cases: {backlog}").format(
            overdue=report.overdue, backlog=report.backlog
        ),
    ]
    for title, rows in (
        (_("Open cases by eldership"), report.backlog_by_eldership),
        (_("Open cases by category"), report.backlog_by_category),
    ):
        if rows:
            shown = ", ".join(f"{escape(name)} {count}" for name, count in rows[:BACKLOG_LINES])
            more = (
                _(" and {count} more").format(count=len(rows) - BACKLOG_LINES)
                if len(rows) > BACKLOG_LINES
                else ""
            )
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
                )
            )
    if report.answers:
        distribution = " · ".join(f"{score}★ {report.scores[score]}" for score in range(5, 0, -1))
        lines.append(
            _(
                "Satisfaction: <b>{average}</b> of 5 from {count} answer ({distribution})",
                "Satisfaction: <b>{average}</b> of 5 from {count} answers ({distribution})",
                report.answers,
            ).format(
                average=_number(report.average_score, 2), count=report.answers, distribution=distribution
            )
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
    elif report.scope is not None:
        lines.append(
            _(
                "These are only your team's figures. Satisfaction answers and comments are not tied to a team: "
                "they are in the whole municipality's report, for team heads and the quality staff."
            )
        )
    else:
        lines.append(_("Satisfaction: no answers in this period."))
    lines += visit_lines(report)
    return "\n".join(lines)


def visit_lines(report: QualityReport) -> list[str]:
    """The visit surveys per place (none if there are no places); a place's figures from MIN_GROUP answers."""
    if not report.places:
        return []
    if not report.visit_answers:
        return [_("Visit surveys: no answers in this period.")]
    lines = [_("<b>Visit surveys</b> (the QR code at the desks):")]
    for place in report.places:
        if not place.shown:
            lines.append(
                _("{place}: fewer than {min} answer", "{place}: fewer than {min} answers", MIN_GROUP).format(
                    place=escape(place.name), min=MIN_GROUP
                )
            )
            continue
        waited = " · ".join(
            f"{label} {_percent(place.waited_share(w))}"
            for label, w in zip(waiting_labels(), WaitingTime, strict=True)
        )
        lines.append(
            _(
                "{place}: answers: {count}, average <b>{average}</b> of 5; waited: {waited}; settled: {settled}"
            ).format(
                place=escape(place.name),
                count=place.answers,
                average=_number(place.average, 2),
                waited=waited,
                settled=_percent(place.settled_share(ResolvedAnswer.YES)),
            )
        )
    if report.proposals:
        lines.append(_("Visitors' proposals: {count} (in the XLSX file)").format(count=len(report.proposals)))
    return lines


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{_number(value, 0)}%"


def visit_chart(report: QualityReport) -> Figure | None:
    """Per place with enough answers: the average satisfaction, how long people waited, whether their
    matter was settled. None when no place has MIN_GROUP answers."""
    from matplotlib.figure import Figure

    places = [place for place in report.places if place.shown]
    if not places:
        return None
    figure = Figure(figsize=(11, 1.6 + 0.55 * len(places)), dpi=100, layout="constrained")
    scores, waiting, settled = figure.subplots(1, 3, sharey=True, width_ratios=[2, 3, 3])
    names = [_wrap(place.name, 32) for place in places][::-1]
    positions = list(range(len(places)))
    averages = [place.average or 0 for place in places][::-1]
    bars = scores.barh(positions, averages, color="#4c78a8")
    scores.bar_label(
        bars,
        labels=[f"{_number(a, 2)} (n={p.answers})" for a, p in zip(averages, places[::-1], strict=True)],
        padding=3,
        fontsize=8,
    )
    scores.set_xlim(0, 6.5)
    scores.set_xticks([1, 2, 3, 4, 5])
    scores.set_yticks(positions, names, fontsize=8)
    scores.set_title(_("Average satisfaction (1-5)"), fontsize=10)
    for axis, parts, labels, colours, title in (
        (
            waiting,
            list(WaitingTime),
            waiting_labels(),
            ["#54a24b", "#eeca3b", "#f58518", "#e45756"],
            _("Waited (of those who said), %"),
        ),
        (
            settled,
            list(ResolvedAnswer),
            [_("Yes"), _("Partly"), _("No")],
            ["#54a24b", "#eeca3b", "#e45756"],
            _("Matter settled (of those who said), %"),
        ),
    ):
        left = [0.0] * len(places)
        for part, label, colour in zip(parts, labels, colours, strict=True):
            shares = [
                (p.waited_share(part) if axis is waiting else p.settled_share(part)) or 0.0 for p in places
            ][::-1]
            axis.barh(positions, shares, left=left, color=colour, label=label)
            left = [a + b for a, b in zip(left, shares, strict=True)]
        axis.set_xlim(0, 100)
        axis.set_title(title, fontsize=10)
        axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=2, fontsize=8, frameon=False)
    figure.suptitle(
        _(
            "Visit surveys per place, {start} – {end} (places with at least {min} answer)",
            "Visit surveys per place, {start} – {end} (places with at least {min} answers)",
            MIN_GROUP,
        ).format(start=report.period.start.isoformat(), end=report.period.end.isoformat(), min=MIN_GROUP),
        fontsize=11,
    )
    return figure


def report_chart(report: QualityReport) -> Figure:
    """The weekly trend (received, closed, share on time) and the satisfaction distribution."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(9, 7), dpi=100, layout="constrained")
    trend, scores = figure.subplots(2, 1, height_ratios=[3, 2])
    weeks = [w.start.strftime("%m-%d") for w in report.weeks]
    positions = range(len(weeks))
    trend.bar(
        [p - 0.2 for p in positions],
        [w.received for w in report.weeks],
        width=0.4,
        label=_("Cases received"),
        color="#4c78a8",
    )
    trend.bar(
        [p + 0.2 for p in positions],
        [w.closed for w in report.weeks],
        width=0.4,
        label=_("Cases closed"),
        color="#72b7b2",
    )
    # Headroom above the bars and the line keeps the legend clear of both.
    trend.set_ylim(0, max([1, *(max(w.received, w.closed) for w in report.weeks)]) * 1.4)
    trend.yaxis.set_major_locator(MaxNLocator(integer=True))
    trend.set_xticks(list(positions), weeks, rotation=45 if len(weeks) > 8 else 0)
    trend.set_ylabel(_("Cases"))
    trend.set_title(
        _("Weekly trend, {start} – {end}").format(
            start=report.period.start.isoformat(), end=report.period.end.isoformat()
        )
    )
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
        _(
            "Satisfaction: average {average} from {count} answer",
            "Satisfaction: average {average} from {count} answers",
            report.answers,
        ).format(average=_number(report.average_score, 2), count=report.answers)
    )
    return figure


def poll_chart(results: PollResults, locale: str) -> Figure:
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    questions = results.questions
    figure = Figure(
        figsize=(8, 2.2 + 1.6 * sum(len(q.options) for q in questions) / 2), dpi=100, layout="constrained"
    )
    axes = figure.subplots(len(questions), 1, squeeze=False)[:, 0]
    for axis, question, counts in zip(axes, questions, results.counts, strict=True):
        labels = [option.get(locale) for option in question.options]
        bars = axis.barh(labels[::-1], counts[::-1], color="#4c78a8")
        axis.bar_label(bars, padding=3)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_xlim(0, max([1, *counts]) * 1.1)
        axis.set_title(_wrap(question.text.get(locale)), fontsize=10)
    figure.suptitle(
        _("Poll #{id}: {count} answer", "Poll #{id}: {count} answers", results.respondents).format(
            id=results.poll.id, count=results.respondents
        )
    )
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
        _(
            "📊 <b>Poll #{id}</b> ({state}): {count} answer",
            "📊 <b>Poll #{id}</b> ({state}): {count} answers",
            results.respondents,
        ).format(id=poll.id, state=state, count=results.respondents)
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


def service_quality_page(
    places: list[PlaceFigures], municipality: str, start: date, end: date, locale: str
) -> str:
    """The public page of the visit surveys (/service-quality): plain HTML, no script, readable on a
    phone, in the current gettext locale. A place's figures from MIN_GROUP answers, as in the reports."""
    title = _("Service quality: what visitors say")
    current = ' aria-current="page"'
    links = " · ".join(
        f'<a href="?lang={code}" hreflang="{code}" lang="{code}"{current if code == locale else ""}>{name}</a>'
        for code, name in texts.LANGUAGE_NAMES.items()
    )
    sections = []
    for place in places:
        heading = f"<h2>{escape(place.name)}</h2>"
        if not place.shown:
            too_few = _(
                "Fewer than {min} answer: not shown, so that no answer can be told apart.",
                "Fewer than {min} answers: not shown, so that no answer can be told apart.",
                MIN_GROUP,
            ).format(min=MIN_GROUP)
            sections.append(f"<section>{heading}<p>{escape(too_few)}</p></section>")
            continue
        rows = [
            (_("Answers"), str(place.answers)),
            (_("Average satisfaction (1-5)"), _number(place.average, 2)),
            (_("Average courtesy (1-5)"), _number(place.average_courtesy, 2)),
            *(
                (_("Waited {time}, %").format(time=label), _percent(place.waited_share(waited)))
                for label, waited in zip(waiting_labels(), WaitingTime, strict=True)
            ),
            *(
                (label, _percent(place.settled_share(settled)))
                for label, settled in zip(
                    (_("Settled: yes, %"), _("Settled: partly, %"), _("Settled: no, %")),
                    ResolvedAnswer,
                    strict=True,
                )
            ),
        ]
        body = "".join(
            f'<tr><th scope="row">{escape(name)}</th><td>{escape(value)}</td></tr>' for name, value in rows
        )
        sections.append(f"<section>{heading}<table>{body}</table></section>")
    intro = _(
        "{municipality}: visitors' anonymous answers to the survey at our desks and eldership offices (the QR code), the last 30 days: {start} – {end}. "
        "A place's figures are shown from {min} answer; shares are of those who answered that question; — means too few answers to it.",
        "{municipality}: visitors' anonymous answers to the survey at our desks and eldership offices (the QR code), the last 30 days: {start} – {end}. "
        "A place's figures are shown from {min} answers; shares are of those who answered that question; — means too few answers to it.",
        MIN_GROUP,
    ).format(municipality=municipality, start=texts.day(start), end=texts.day(end), min=MIN_GROUP)
    return (
        f'<!doctype html>\n<html lang="{locale}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:42rem;margin:0 auto;padding:1rem;line-height:1.5;color:#111;background:#fff}"
        "table{border-collapse:collapse;width:100%}th,td{border:1px solid #767676;padding:.3rem .5rem;text-align:left}"
        "td{text-align:right;white-space:nowrap}a{color:#0645ad}</style></head><body>"
        f'<nav aria-label="{escape(_("Language"))}">{links}</nav><main><h1>{escape(title)}</h1><p>{escape(intro)}</p>'
        + "".join(sections)
        + "</main></body></html>\n"
    )
