"""What a team may read about its own spend with the key it calls with. Pure.

Two shapes:
- the legacy OpenAI billing endpoints that chat clients of the new-api and one-api world
  (NextChat, LobeChat, ...) call to show a balance: `subscription` (the limit, in USD) and
  `usage` (spend over a date range, in cents). A client shows limit - usage;
- the proxy's own summary of the month (`month_summary`): spend, what is held by calls in
  flight, what remains under each limit, tokens and calls, for the key and its tenant.

The scope is the key's own monthly budget when it has one, else its tenant's. Amounts stay
exact decimals here; the HTTP layer writes them as exact JSON numbers.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from billing.keys import KeyGrant

# What new-api and one-api answer for "no limit": clients know it and show no balance.
UNLIMITED_USD = Decimal(100_000_000)
MAX_USAGE_DAYS = 100  # as OpenAI's legacy endpoint: a longer range is refused
CENTS = Decimal(100)


class BadRange(ValueError):
    pass


def limit_of(grant: KeyGrant) -> Decimal | None:
    """The monthly limit a balance is shown against: the key's own budget, else the
    tenant's, else a prepaid tenant's credit (every top-up so far); None: no limit."""
    if grant.monthly_budget_usd is not None:
        return grant.monthly_budget_usd
    if grant.tenant_budget_usd is not None:
        return grant.tenant_budget_usd
    return grant.credit_usd if grant.prepaid else None


def subscription(grant: KeyGrant) -> dict:
    limit = limit_of(grant)
    shown = UNLIMITED_USD if limit is None else limit
    return {"object": "billing_subscription", "has_payment_method": True, "soft_limit_usd": shown,
            "hard_limit_usd": shown, "system_hard_limit_usd": shown,
            "access_until": int(grant.expires_at.timestamp()) if grant.expires_at else 0}


def usage_range(start: str | None, end: str | None, today: date) -> tuple[date, date]:
    """[start, end) in UTC days, as OpenAI's legacy endpoint takes them (YYYY-MM-DD, the end
    day excluded); without dates, this month so far."""
    try:
        first = date.fromisoformat(start) if start else today.replace(day=1)
        last = date.fromisoformat(end) if end else today + timedelta(days=1)
    except ValueError:
        raise BadRange("start_date and end_date are dates as YYYY-MM-DD.") from None
    if last <= first:
        raise BadRange("end_date must be after start_date (the end day is not included).")
    if (last - first).days > MAX_USAGE_DAYS:
        raise BadRange(f"The range may cover at most {MAX_USAGE_DAYS} days.")
    return first, last


def usage(daily: list[tuple[date, str, Decimal]]) -> dict:
    """Spend per UTC day and model (`daily`: day, model, charge in USD), in cents."""
    days: dict[date, list[dict]] = {}
    total = Decimal(0)
    for day, model, charge in sorted(daily):
        cents = charge * CENTS
        days.setdefault(day, []).append({"name": model, "cost": cents})
        total += cents
    return {"object": "list", "total_usage": total, "daily_costs": [
        {"timestamp": int(datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp()), "line_items": items}
        for d, items in days.items()]}


@dataclass(frozen=True)
class Spent:
    """One scope's month so far (from its quota counters and the ledger)."""

    usd: Decimal
    reserved_usd: Decimal  # held by calls in flight
    tokens: int
    calls: int


def _remaining(limit, spent, reserved):
    return None if limit is None else limit - spent - reserved


def month_summary(grant: KeyGrant, key_prefix: str, period: datetime, next_period: datetime, tenant: Spent,
                  key: Spent, credit_spent: Spent | None = None) -> dict:
    """`credit_spent`: a prepaid tenant's spend since its first top-up (its credit counter)."""
    credit = grant.credit_usd if grant.prepaid else None
    return {
        "object": "billing.month",
        "period": {"start": period.isoformat(), "end": next_period.isoformat(), "time_zone": grant.time_zone},
        "tenant": {
            "name": grant.tenant_name, "spent_usd": tenant.usd, "reserved_usd": tenant.reserved_usd,
            "budget_usd": grant.tenant_budget_usd,
            "budget_remaining_usd": _remaining(grant.tenant_budget_usd, tenant.usd, tenant.reserved_usd),
            "tokens": tenant.tokens, "token_quota": grant.tenant_token_quota,
            "tokens_remaining": None if grant.tenant_token_quota is None else grant.tenant_token_quota - tenant.tokens,
            "calls": tenant.calls, "prepaid": grant.prepaid, "credit_usd": credit,
            "credit_remaining_usd": None if credit is None or credit_spent is None else
            credit - credit_spent.usd - credit_spent.reserved_usd,
        },
        "key": {
            "id": grant.key_id, "prefix": key_prefix, "spent_usd": key.usd, "reserved_usd": key.reserved_usd,
            "budget_usd": grant.monthly_budget_usd,
            "budget_remaining_usd": _remaining(grant.monthly_budget_usd, key.usd, key.reserved_usd),
            "tokens": key.tokens, "calls": key.calls,
        },
    }
