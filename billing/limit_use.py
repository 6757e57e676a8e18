"""How far each limit is used this month, and where a straight line takes it by the month's
end. Pure: the database adapter supplies the counters, the dashboard draws the result."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class LimitUse:
    scope: str  # tenant | key
    name: str  # the tenant's name, or the key's display prefix
    tenant: str
    kind: str  # budget (USD) | tokens | requests
    limit: Decimal
    spent: Decimal  # calls that ended (settled, or ended and settling)
    held: Decimal  # the worst cases reserved by calls still in flight
    thresholds_crossed: tuple[int, ...] = ()  # alert thresholds (percent) crossed this month
    window: str = "month"  # month | week | day
    period_start: datetime | None = None  # the period the counters cover, in the tenant's zone
    period_end: datetime | None = None

    def fraction_passed(self, now: datetime) -> Decimal:
        return period_fraction(self.period_start, self.period_end, now) if self.period_start else Decimal(1)

    @property
    def used_percent(self) -> Decimal:
        """What is spent, as a share of the limit (what calls in flight hold is not used yet)."""
        return self.spent * 100 / self.limit if self.limit else Decimal(0)

    @property
    def held_percent(self) -> Decimal:
        return self.held * 100 / self.limit if self.limit else Decimal(0)

    @property
    def overrun(self) -> Decimal:
        """How far spend went past the limit: only under soft enforcement, by calls in flight."""
        return max(self.spent - self.limit, Decimal(0))


def period_fraction(start: datetime, end: datetime, now: datetime) -> Decimal:
    """How much of [start, end) has passed at `now`, from 0 to 1."""
    if now >= end:
        return Decimal(1)
    if now <= start:
        return Decimal(0)
    return Decimal((now - start) // MICROSECOND) / Decimal((end - start) // MICROSECOND)  # exact, no float


def forecast(spent: Decimal, fraction: Decimal) -> Decimal | None:
    """The month-end figure if spending goes on at the pace so far (None: too early to say)."""
    return spent if fraction >= 1 else (spent / fraction if fraction > 0 else None)
