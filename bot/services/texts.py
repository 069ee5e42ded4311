"""Words shared by residents' and clerks' messages: kinds, statuses, dates, days left.

All go through gettext in the current locale (set by the i18n middleware, or by
`i18n.use_locale` when a service writes to someone outside the update being handled).
"""

from __future__ import annotations

from datetime import date

from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import lazy_gettext as __
from babel.dates import format_date
from babel.numbers import format_decimal

from bot.services.cases import AnswerBy, ReceivedBy
from bot.settings import LOCALES
from bot.store.models import CaseKind, CaseStatus

LANGUAGE_NAMES = {"pl": "Polski", "lt": "Lietuvių", "en": "English"}  # each in its own language

KIND_LABELS = {
    CaseKind.REQUEST: __("Request"),
    CaseKind.COMPLAINT: __("Complaint"),
    CaseKind.REPORT: __("Report of a problem"),
}
KIND_ICONS: dict[str, str] = {CaseKind.REQUEST: "📄", CaseKind.COMPLAINT: "⚠️", CaseKind.REPORT: "🚧"}

STATUS_LABELS = {
    CaseStatus.NEW: __("Received"),
    CaseStatus.ASSIGNED: __("Assigned to a clerk"),
    CaseStatus.IN_PROGRESS: __("In progress"),
    CaseStatus.ANSWERED: __("Answered"),
    CaseStatus.REDIRECTED: __("Sent to another institution"),
    CaseStatus.REJECTED: __("Rejected"),
    CaseStatus.REOPENED: __("Reopened"),
    CaseStatus.DUPLICATE: __("Merged with another case"),
}

# How a case registered by a clerk came in, and how its person is answered outside Telegram:
# "received by phone", "answer by post", "answer given in person".
RECEIVED_BY_LABELS = {
    ReceivedBy.PHONE: __("by phone"),
    ReceivedBy.EMAIL: __("by e-mail"),
    ReceivedBy.POST: __("by post"),
    ReceivedBy.DESK: __("at the front desk"),
}
ANSWER_BY_LABELS = {
    AnswerBy.PHONE: __("by phone"),
    AnswerBy.EMAIL: __("by e-mail"),
    AnswerBy.POST: __("by post"),
    AnswerBy.IN_PERSON: __("in person"),
    AnswerBy.OPEN311: __("through Open311 (the final answer is published there)"),
}


def received_by_label(value: str) -> str:
    return str(RECEIVED_BY_LABELS[ReceivedBy(value)])


def answer_by_label(value: str) -> str:
    return str(ANSWER_BY_LABELS[AnswerBy(value)])


def kind_label(kind: str) -> str:
    return str(KIND_LABELS[CaseKind(kind)])


def status_label(status: str) -> str:
    return str(STATUS_LABELS[CaseStatus(status)])


def current_locale() -> str:
    return I18n.get_current(no_error=False).current_locale


def day(value: date) -> str:
    """A date as people write it: "24 grudnia 2026", "2026 m. gruodžio 24 d."."""
    return format_date(value, format="long", locale=current_locale())


def file_size(size: int) -> str:
    """A size in bytes for people, in the current locale: "100 MB", "1,5 GB" (in binary units, as
    file managers count them)."""
    if size >= 2**30:
        return f"{format_decimal(round(size / 2**30, 1), locale=current_locale())} GB"
    return f"{format_decimal(round(size / 2**20, 1), locale=current_locale())} MB"


def days_left(today: date, due: date, left: int) -> str:
    """Working days left (`left`, from WorkingCalendar.working_days_left), or how late it is."""
    if today > due:
        if left == 0:
            return _("overdue")
        return _("{count} working day overdue", "{count} working days overdue", -left).format(count=-left)
    if left == 0:
        return _("due today")
    return _("{count} working day left", "{count} working days left", left).format(count=left)


def shorten(text: str, limit: int) -> str:
    """At most `limit` characters: what is cut ends with "…" (plain text; escape after)."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def page_locale(asked: str | None, accept_language: str, default: str) -> str:
    """?lang= if it is one of ours, else the first of ours the browser accepts (in its order of preference), else `default`."""
    if asked in LOCALES:
        return asked
    preferences = []
    for number, part in enumerate(accept_language.split(",")[:20]):
        tag, _sep, weight = part.strip().partition(";q=")
        try:
            quality = float(weight) if weight else 1.0
        except ValueError:
            continue
        preferences.append((-quality, number, tag.split("-")[0].strip().lower()))
    return next((code for _q, _n, code in sorted(preferences) if code in LOCALES), default)
