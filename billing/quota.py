"""Quota arithmetic: billing periods, worst-case estimates, refusal messages. Pure.

A request is admitted only if what the tenant (and key) already spent, plus what other
requests in flight have reserved, plus this request's worst case, stays within every
limit. The worst case must never be below what the upstream can bill:
- input tokens: at most one per byte of the request body (byte-level BPE tokenizers never
  produce more tokens than bytes), priced at the dearest input rate (uncached or cache
  write) of the tier that many tokens would fall in;
- output tokens: `max_output_tokens` / `max_completion_tokens` / `max_tokens` when the
  request sets one, else the operator's per-model default cap, priced at the dearer of
  the output and reasoning rates.
Context carried over by `previous_response_id` is not in the request body and so not in
the estimate (see the README).
"""

from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from billing.pricebook import ResolvedPrice
from billing.pricing import charge_of, cost_of
from billing.usage import Usage

OUTPUT_LIMIT_FIELDS = ("max_output_tokens", "max_completion_tokens", "max_tokens")
LIMIT_NAMES = {
    "tenant_budget": "the team's monthly budget",
    "tenant_tokens": "the team's monthly token quota",
    "key_budget": "this API key's monthly budget",
}


@dataclass(frozen=True)
class Estimate:
    input_tokens: int
    output_tokens: int
    charge: Decimal  # the most this request can cost the tenant

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def check_time_zone(name: str) -> str:
    """An IANA time zone name, or ValueError."""
    try:
        ZoneInfo(name)
    except (ValueError, KeyError, ZoneInfoNotFoundError):
        raise ValueError(f"unknown time zone {name!r}; use an IANA name such as Europe/Berlin") from None
    return name


def check_thresholds(values: list[int]) -> list[int]:
    if not 1 <= len(values) <= 10 or any(not 1 <= v <= 1000 for v in values):
        raise ValueError("alert thresholds are 1 to 10 percentages from 1 to 1000, e.g. 50,80,100")
    return sorted(set(values))


def period_start(at: datetime, time_zone: str = "UTC") -> datetime:
    """The first instant of the calendar month containing `at`, in the tenant's zone."""
    local = at.astimezone(ZoneInfo(time_zone))
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0).astimezone(timezone.utc)


def next_period_start(start: datetime, time_zone: str = "UTC") -> datetime:
    local = start.astimezone(ZoneInfo(time_zone))
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return datetime(year, month, 1, tzinfo=ZoneInfo(time_zone)).astimezone(timezone.utc)


def requested_output_cap(payload: Mapping[str, Any], default_cap: int) -> int:
    for name in OUTPUT_LIMIT_FIELDS:
        value = payload.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return default_cap


def estimate(body_bytes: int, payload: Mapping[str, Any], price: ResolvedPrice, multiplier: Decimal,
             default_output_cap: int) -> Estimate:
    input_tokens = body_bytes
    output_tokens = requested_output_cap(payload, price.version.max_output_tokens or default_output_cap)
    version = price.tenant_version or price.version
    tier = version.tier_for(input_tokens)
    # The same usage the formula prices, with every token at its dearest possible rate.
    worst_usage = Usage(
        input_tokens=input_tokens,
        cache_write_tokens=input_tokens if tier.cache_write_price > tier.input else 0,
        output_tokens=output_tokens,
        reasoning_tokens=output_tokens if tier.reasoning_price > tier.output else 0,
    )
    worst = cost_of(worst_usage, tier).total
    charge = worst if price.tenant_version is not None else charge_of(worst, multiplier)
    return Estimate(input_tokens, output_tokens, charge)


@dataclass(frozen=True)
class MonthStanding:
    """A tenant's month so far: spent (settled), reserved (in flight), and what is left."""

    period_start: datetime
    resets_at: datetime
    spent_usd: Decimal
    reserved_usd: Decimal
    spent_tokens: int
    reserved_tokens: int
    budget_remaining_usd: Decimal | None
    tokens_remaining: int | None


def standing(period: datetime, time_zone: str, budget: Decimal | None, quota: int | None, spent_usd: Decimal,
             reserved_usd: Decimal, spent_tokens: int, reserved_tokens: int) -> MonthStanding:
    return MonthStanding(
        period_start=period, resets_at=next_period_start(period, time_zone),
        spent_usd=spent_usd, reserved_usd=reserved_usd, spent_tokens=spent_tokens, reserved_tokens=reserved_tokens,
        budget_remaining_usd=None if budget is None else budget - spent_usd - reserved_usd,
        tokens_remaining=None if quota is None else quota - spent_tokens - reserved_tokens,
    )


def refusal_message(limit: str, resets_at: datetime) -> str:
    return (f"Request refused: it could exceed {LIMIT_NAMES.get(limit, limit)}. "
            f"The limit resets at {resets_at.isoformat()}.")
