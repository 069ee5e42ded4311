"""The period of a quality report (/report and `petent report`): the forms clerks type, and
periods refused with a reason: absurd lengths and years, impossible dates, Unicode digits."""

from datetime import date

import pytest
from aiogram.utils.i18n import I18n

from bot.services.quality import Period, PeriodError, check_period, parse_period
from bot.settings import LOCALES_DIR

TODAY = date(2026, 11, 22)


@pytest.fixture(scope="module")
def i18n() -> I18n:
    return I18n(path=LOCALES_DIR, default_locale="en", domain="bot")


@pytest.mark.parametrize(
    ("text", "period"),
    [
        ("", Period(date(2026, 10, 24), date(2026, 11, 22))),
        ("7d", Period(date(2026, 11, 16), date(2026, 11, 22))),
        ("366d", Period(date(2025, 11, 22), date(2026, 11, 22))),
        ("2026-02", Period(date(2026, 2, 1), date(2026, 2, 28))),
        ("2026-q4", Period(date(2026, 10, 1), date(2026, 12, 31))),
        ("2025", Period(date(2025, 1, 1), date(2025, 12, 31))),
        ("2000", Period(date(2000, 1, 1), date(2000, 12, 31))),
        ("2027", Period(date(2027, 1, 1), date(2027, 12, 31))),  # next year: planning ahead is harmless
        ("2026-01-05..2026-03-31", Period(date(2026, 1, 5), date(2026, 3, 31))),
        ("2022-01-01..2026-12-31", Period(date(2022, 1, 1), date(2026, 12, 31))),  # exactly five years
        ("2020-02-29..2025-02-27", Period(date(2020, 2, 29), date(2025, 2, 27))),
    ],
)
def test_periods(text: str, period: Period) -> None:
    assert parse_period(text, TODAY) == period


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("last week", "This is not a period."),
        ("2026-Q5", "This is not a period."),
        ("2026-13", "There is no such date in the calendar."),
        ("2026-02-30..2026-03-01", "There is no such date in the calendar."),
        ("0000", "There is no such date in the calendar."),
        ("0d", "Count the last days from 1 to 366, e.g. 30d."),
        ("999999d", "Count the last days from 1 to 366, e.g. 30d."),
        ("2026-03-31..2026-01-01", "The first day of the period must not be after its last day."),
        ("1999", "A report covers the years 2000 to 2027."),
        ("0202", "A report covers the years 2000 to 2027."),
        ("9999", "A report covers the years 2000 to 2027."),
        ("2028-q1", "A report covers the years 2000 to 2027."),
        ("2000-01-01..2027-12-31", "A report covers at most 5 years; please choose a shorter period."),
        ("2021-12-31..2026-12-31", "A report covers at most 5 years; please choose a shorter period."),
        ("2020-02-29..2025-02-28", "A report covers at most 5 years; please choose a shorter period."),
    ],
)
def test_refused_periods_say_why(text: str, reason: str, i18n: I18n) -> None:
    with pytest.raises(PeriodError) as refused:
        parse_period(text, TODAY)
    with i18n.context(), i18n.use_locale("en"):
        assert str(refused.value) == reason
    assert isinstance(refused.value, ValueError)  # what callers catch


@pytest.mark.parametrize(
    "text",
    [
        "２０２６",
        "２０２６-10",
        "2026-１0",
        "²⁰²⁶",
        "2026-Q²",
        "٢٠٢٦",
        "7²d",
        "３０d",
        "2026-10-01..２０２６-12-31",
        "\u200b2026",
        "9" * 5000 + "d",
    ],
)
def test_unicode_digits_are_not_a_period(text: str) -> None:
    with pytest.raises(PeriodError):
        parse_period(text, TODAY)


def test_the_reason_is_told_in_the_readers_language(i18n: I18n) -> None:
    with pytest.raises(PeriodError) as refused:
        parse_period("2015-01-01..2025-12-31", TODAY)
    with i18n.context():
        with i18n.use_locale("pl"):
            assert "5" in str(refused.value) and "lat" in str(refused.value)
        with i18n.use_locale("lt"):
            assert "5" in str(refused.value) and "met" in str(refused.value)


def test_the_command_line_uses_the_same_limits() -> None:
    check_period(Period(date(2022, 1, 1), date(2026, 12, 31)), TODAY)
    with pytest.raises(PeriodError):
        check_period(Period(date(2001, 1, 1), date(2026, 12, 31)), TODAY)
