"""Legal deadlines: 20 working days from the first working day after receipt (Lithuania)."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.services.deadlines import ExtensionNotAllowed, WorkingCalendar

VILNIUS = ZoneInfo("Europe/Vilnius")
calendar = WorkingCalendar(VILNIUS)


def local(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=VILNIUS)


@pytest.mark.parametrize(
    ("received", "deadline"),
    [
        # An ordinary Monday: the count starts on Tuesday.
        (local(2026, 11, 23, 10, 0), date(2026, 12, 21)),
        # Received on a Saturday or Sunday: treated as received on Monday.
        (local(2026, 11, 21, 12, 0), date(2026, 12, 21)),
        (local(2026, 11, 22, 23, 59), date(2026, 12, 21)),
        # Across Christmas Eve, Christmas, and New Year's Day into the next year.
        (local(2026, 12, 18, 9, 0), date(2027, 1, 20)),
        # Received on Christmas Eve (a public holiday): counts from Monday 28th.
        (local(2026, 12, 24, 9, 0), date(2027, 1, 26)),
        # Received on Easter Monday; 1 May falls inside the term.
        (local(2026, 4, 6, 9, 0), date(2026, 5, 6)),
    ],
)
def test_twenty_working_days(received: datetime, deadline: date) -> None:
    assert calendar.deadline(received, 20) == deadline


def test_receipt_date_is_taken_in_the_municipality_time_zone() -> None:
    # 22:30 UTC on 31 December is already New Year's Day in Vilnius (a holiday).
    received = datetime(2026, 12, 31, 22, 30, tzinfo=UTC)
    assert calendar.deadline(received, 20) == date(2027, 2, 1)
    # An hour earlier it is still the 31st, a working day.
    assert calendar.deadline(datetime(2026, 12, 31, 21, 30, tzinfo=UTC), 20) == date(2027, 1, 29)


def test_extension_within_the_kind_maximum() -> None:
    extension = calendar.extend(date(2026, 12, 21), 10, already_extended=0, maximum=10)
    # 22, 23, 28-31 December, 4-7 January (24-26 December and 1 January are holidays).
    assert extension.until == date(2027, 1, 7)
    assert extension.total_days == 10


@pytest.mark.parametrize(("days", "already"), [(11, 0), (6, 5), (0, 0), (-1, 0)])
def test_extension_beyond_the_maximum_is_refused(days: int, already: int) -> None:
    with pytest.raises(ExtensionNotAllowed):
        calendar.extend(date(2026, 12, 21), days, already_extended=already, maximum=10)


@pytest.mark.parametrize(
    ("today", "deadline", "left"),
    [
        (date(2026, 11, 23), date(2026, 12, 21), 20),
        (date(2026, 12, 21), date(2026, 12, 21), 0),
        (date(2026, 12, 19), date(2026, 12, 21), 1),  # Saturday before a Monday deadline
        (date(2026, 12, 22), date(2026, 12, 21), -1),
        (date(2026, 12, 28), date(2026, 12, 21), -3),  # 22, 23, 28: the holidays do not count
    ],
)
def test_working_days_left(today: date, deadline: date, left: int) -> None:
    assert calendar.working_days_left(today, deadline) == left


def test_holidays_are_not_working_days() -> None:
    for holiday in (date(2026, 12, 24), date(2026, 4, 6), date(2027, 1, 1), date(2026, 2, 16)):
        assert not calendar.is_working_day(holiday)
    assert calendar.is_working_day(date(2026, 12, 23))
