from datetime import date

import pytest

from services.planning.calendar import add_months, add_working_days, due_date, is_working_day
from services.planning.pathway import Offset


@pytest.mark.parametrize(
    ("arrival", "first_working_day"),
    [
        (date(2026, 4, 2), date(2026, 4, 7)),  # Maundy Thursday -> Tuesday after Easter
        (date(2026, 5, 16), date(2026, 5, 18)),  # Saturday before 17 May (a Sunday in 2026)
        (date(2027, 5, 16), date(2027, 5, 18)),  # Sunday; 17 May 2027 is a Monday holiday
        (date(2026, 12, 24), date(2026, 12, 28)),  # Christmas Eve -> 25, 26 Dec, Sunday
        (date(2026, 11, 20), date(2026, 11, 23)),  # Friday -> Monday
        (date(2026, 11, 23), date(2026, 11, 24)),  # ordinary Monday -> Tuesday
    ],
)
def test_first_working_day_after_arrival(arrival: date, first_working_day: date) -> None:
    assert add_working_days(arrival, 1) == first_working_day


def test_holidays_are_not_working_days() -> None:
    for day in (date(2026, 5, 17), date(2026, 12, 25), date(2026, 4, 6), date(2026, 5, 1)):
        assert not is_working_day(day)
    assert is_working_day(date(2026, 12, 23))


def test_month_offsets_clamp_to_the_end_of_month() -> None:
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2026, 11, 30), 3) == date(2027, 2, 28)
    assert due_date(date(2026, 4, 2), Offset(unit="weeks", value=3)) == date(2026, 4, 23)
    assert due_date(date(2026, 4, 2), Offset(unit="days", value=10)) == date(2026, 4, 12)
