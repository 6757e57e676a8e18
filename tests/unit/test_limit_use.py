"""Use of a limit and its straight-line month-end forecast, worked out by hand."""

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from billing.limit_use import LimitUse, forecast, period_fraction

START, END = datetime(2026, 11, 1, tzinfo=timezone.utc), datetime(2026, 12, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize("now,fraction", [
    (datetime(2026, 10, 31, tzinfo=timezone.utc), Decimal(0)),
    (START, Decimal(0)),
    (datetime(2026, 11, 16, tzinfo=timezone.utc), Decimal("0.5")),  # 15 of 30 days
    (datetime(2026, 11, 4, tzinfo=timezone.utc), Decimal("0.1")),  # 3 of 30 days
    (END, Decimal(1)),
    (datetime(2027, 1, 1, tzinfo=timezone.utc), Decimal(1)),  # a past month
])
def test_period_fraction(now, fraction):
    assert period_fraction(START, END, now) == fraction


@pytest.mark.parametrize("spent,fraction,expected", [
    (Decimal("3"), Decimal("0.1"), Decimal("30")),
    (Decimal("3"), Decimal("0.5"), Decimal("6")),
    (Decimal("3"), Decimal(1), Decimal("3")),  # the month is over: what was spent
    (Decimal("3"), Decimal(0), None),  # too early to say
    (Decimal(0), Decimal("0.5"), Decimal(0)),
])
def test_forecast(spent, fraction, expected):
    assert forecast(spent, fraction) == expected


def test_used_is_what_is_spent_and_held_is_shown_beside_it():
    use = LimitUse("tenant", "team", "team", "budget", Decimal("8"), Decimal("3"), Decimal("1"))
    assert use.used_percent == Decimal("37.5") and use.held_percent == Decimal("12.5")
    assert use.overrun == 0
    assert LimitUse("tenant", "t", "t", "budget", Decimal("8"), Decimal("8.25"), Decimal(0)).overrun == Decimal("0.25")
