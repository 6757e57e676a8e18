"""When the alerts that no settlement records are due: a month-end forecast past the
budget, and a prepaid balance under the operator's level. Pure."""

from datetime import datetime, timedelta
from decimal import Decimal

from billing.limit_use import forecast, period_fraction

# A straight line from a few hours of spend says little: no forecast before a day has passed.
FORECAST_MIN_ELAPSED = timedelta(days=1)


def month_end_forecast(spent: Decimal, start: datetime, end: datetime, now: datetime,
                       min_elapsed: timedelta = FORECAST_MIN_ELAPSED) -> Decimal | None:
    """Month-to-date spend projected linearly to the month's end (None: too early)."""
    if now - start < min_elapsed:
        return None
    return forecast(spent, period_fraction(start, end, now))


def forecast_alert_due(spent: Decimal, budget: Decimal, projected: Decimal | None) -> bool:
    """Due while the budget is not yet reached (past it, the 100% threshold speaks) and the
    projection passes it."""
    return projected is not None and budget > 0 and spent < budget < projected
