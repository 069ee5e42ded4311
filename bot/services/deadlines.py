"""Legal deadlines in working days (Lithuania).

The term counts from the first working day after receipt (Civil Code 1.118); a submission
received on a non-working day is treated as received on the next working day. Working days
exclude weekends and the public holidays of the `holidays` package for the country.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays


class ExtensionNotAllowed(ValueError):
    """The requested extension is not positive or exceeds what the kind allows."""


@dataclass(frozen=True)
class Extension:
    until: date
    total_days: int


class WorkingCalendar:
    """Working-day arithmetic in one time zone; one instance serves the whole process."""

    def __init__(self, tz: ZoneInfo, country: str = "LT") -> None:
        self.tz = tz
        # The holidays object expands itself to any year it is asked about.
        self._holidays = holidays.country_holidays(country)
        # Per year, the working days from 1 January through each day (index: day of the year - 1):
        # a year's report counts the working days of every case it closed, and the holidays
        # object looks at each day in between anew (4.6 million looks for a year at a decade's size).
        self._through: dict[int, list[int]] = {}

    def local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.tz).date()

    def day_start(self, moment: datetime) -> datetime:
        """Midnight of `moment`'s day in the municipality's time zone."""
        return datetime.combine(self.local_date(moment), time(), tzinfo=self.tz)

    def midnight(self, day: date) -> datetime:
        """The moment `day` begins in the municipality's time zone (aware): a period's bound for the store."""
        return datetime.combine(day, time(), tzinfo=self.tz)

    def is_working_day(self, day: date) -> bool:
        through, index = self._year(day.year), day.timetuple().tm_yday - 1
        return through[index] > (through[index - 1] if index else 0)

    def _year(self, year: int) -> list[int]:
        through = self._through.get(year)
        if through is None:
            through, count, day = [], 0, date(year, 1, 1)
            while day.year == year:
                count += self._holidays.is_working_day(day)
                through.append(count)
                day += timedelta(days=1)
            self._through[year] = through
        return through

    def _working_days_count(self, start: date, end: date) -> int:
        """Working days in [start, end], both included (holidays' get_working_days_count), from the per-year counts."""
        if start > end:
            start, end = end, start
        first = self._year(start.year)
        before = first[start.timetuple().tm_yday - 2] if start.timetuple().tm_yday > 1 else 0
        total = sum(self._year(year)[-1] for year in range(start.year, end.year))
        return total + self._year(end.year)[end.timetuple().tm_yday - 1] - before

    def add_working_days(self, start: date, days: int) -> date:
        """The `days`-th working day after `start` (not counting `start` itself)."""
        return self._holidays.get_nth_working_day(start, days)

    def effective_receipt(self, received_at: datetime) -> date:
        """The receipt date for counting: the local date, moved to a working day if needed."""
        day = self.local_date(received_at)
        return day if self.is_working_day(day) else self.add_working_days(day, 1)

    def deadline(self, received_at: datetime, working_days: int) -> date:
        """Last day of a term of `working_days` working days for a submission received then."""
        return self.add_working_days(self.effective_receipt(received_at), working_days)

    def extend(self, deadline: date, days: int, already_extended: int, maximum: int) -> Extension:
        """Move `deadline` by `days` working days, within the kind's total `maximum`."""
        if days < 1 or already_extended + days > maximum:
            raise ExtensionNotAllowed(f"{days} working days; {maximum - already_extended} left")
        return Extension(until=self.add_working_days(deadline, days), total_days=already_extended + days)

    def working_days_left(self, today: date, deadline: date) -> int:
        """Working days from tomorrow up to the deadline; negative when overdue.

        0 means the deadline is today, or passed with no working day since (the caller tells
        the two apart with `today > deadline`); -N means N working days have passed since.
        """
        if today <= deadline:
            if today == deadline:
                return 0
            return self._working_days_count(today, deadline) - int(self.is_working_day(today))
        return -(self._working_days_count(deadline, today) - int(self.is_working_day(deadline)))

    def working_days_taken(self, received_at: datetime, closed_on: date) -> int:
        """Handling time: working days after the (effective) receipt up to the closing day."""
        return max(0, self.working_days_left(self.effective_receipt(received_at), closed_on))
