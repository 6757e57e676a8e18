"""Quota arithmetic: billing periods, worst-case estimates, refusal messages. Pure.

A request is admitted only if what the tenant (and key) already spent, plus what other
requests in flight have reserved, plus this request's worst case, stays within every
limit. The worst case must never be below what the upstream can bill:
- input tokens: at most one per UTF-8 byte of the content the model reads (or its count
  in the model's tokenizer, where that is known and fewer), with an allowance for the
  template around it (`billing.request_bounds`; never more than the body's bytes), plus the context a `previous_response_id` carries (the
  ledger knows its tokens), plus an allowance per image; up to the context window when the
  input holds what has no known size (files, a conversation), and once more per built-in
  tool call;
- output tokens: the cap the endpoint honours (`billing.request_bounds`), else the
  model's own, times `n`;
- each token at its dearest rate (cache write, reasoning) in the dearest service tier,
  plus built-in tool fees and BytePlus cache storage.
"""

import fnmatch
import math
from collections import Counter
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from billing.ledger import tenant_charge
from billing.pricebook import ResolvedPrice
from billing.pricing import IMAGE_UNITS, PriceVersion, price_usage
from billing.request_bounds import RequestBounds
from billing.usage import Usage

LIMIT_NAMES = {
    "tenant_budget": "the team's monthly budget",
    "tenant_tokens": "the team's monthly token quota",
    "key_budget": "this API key's monthly budget",
    "tenant_weekly_budget": "the team's weekly budget",
    "tenant_weekly_tokens": "the team's weekly token quota",
    "key_weekly_budget": "this API key's weekly budget",
    "tenant_daily_budget": "the team's daily budget",
    "tenant_daily_tokens": "the team's daily token quota",
    "key_daily_budget": "this API key's daily budget",
    "tenant_credit": "the team's prepaid credit balance",
    "tenant_daily_requests": "the team's daily request quota",
    "tenant_requests": "the team's monthly request quota",
    "key_daily_requests": "this API key's daily request quota",
    "key_requests": "this API key's monthly request quota",
    "tenant_max_call": "the team's per-call cap",
    "key_max_call": "this API key's per-call cap",
    # budgets inside the team: `{subject}` is the end user, the tag's `name=value` or the run
    "user_budget": "the monthly budget of end user {subject}",
    "user_daily_budget": "the daily budget of end user {subject}",
    "tag_budget": "the monthly budget of tag {subject}",
    "tag_daily_budget": "the daily budget of tag {subject}",
    "run_budget": "run budget {subject}",
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


def period_start(at: datetime, time_zone: str = "UTC", window: str = "month") -> datetime:
    """The first instant of the day, week (from Monday) or calendar month (`window`)
    containing `at`, each beginning at midnight in the tenant's zone."""
    # Every call asks, and calls of one second share the answer (zone offsets are whole
    # seconds, so a second never straddles a local midnight).
    return _period_start_of_second(math.floor(at.timestamp()), time_zone, window)


@lru_cache(maxsize=4096)
def _period_start_of_second(second: int, time_zone: str, window: str) -> datetime:
    zone = ZoneInfo(time_zone)
    day = datetime.fromtimestamp(second, timezone.utc).astimezone(zone).date()
    if window == "week":
        day -= timedelta(days=day.weekday())
    elif window == "month":
        day = day.replace(day=1)
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(timezone.utc)


def next_period_start(start: datetime, time_zone: str = "UTC", window: str = "month") -> datetime:
    zone = ZoneInfo(time_zone)
    day = start.astimezone(zone).date()
    if window == "month":
        day = date(day.year + 1, 1, 1) if day.month == 12 else date(day.year, day.month + 1, 1)
    else:
        day += timedelta(days=7 if window == "week" else 1)
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(timezone.utc)


@dataclass(frozen=True)
class ModelLimits:
    """What bounds a call where its body does not (settings; the model's own output cap
    comes from its price)."""

    default_output_cap: int  # a model whose price names no output cap
    context_window: int  # the most input one model turn can read
    image_tokens: int  # the most one image can cost
    tool_calls: int  # built-in tool calls assumed when the request sets no `max_tool_calls`
    default_service_tier: str | None = None  # the tier the upstream account serves `auto` in (None: standard)


def worst_output_tokens(bounds: RequestBounds, price: ResolvedPrice, limits: ModelLimits) -> int:
    """The cap the endpoint honours, else the model's own, times the choices asked for."""
    model_cap = price.version.max_output_tokens
    cap = bounds.output_cap if bounds.output_cap is not None else (model_cap or limits.default_output_cap)
    return (min(cap, model_cap) if model_cap else cap) * bounds.choices


def worst_usage(body_bytes: int, bounds: RequestBounds, price: ResolvedPrice, limits: ModelLimits,
                carried_tokens: int | None) -> Usage:
    """The most tokens, tool calls and storage the upstream can bill for the request."""
    output_tokens = worst_output_tokens(bounds, price, limits)
    if bounds.unsized_input or carried_tokens is None:
        first_turn = limits.context_window
    else:
        read = body_bytes if bounds.content_tokens is None else min(body_bytes, bounds.content_tokens)
        first_turn = min(limits.context_window, read + carried_tokens + bounds.images * limits.image_tokens)
    calls = _tool_calls(bounds, limits)
    input_tokens = first_turn + calls * limits.context_window  # each tool call lets the model read again
    return Usage(input_tokens=input_tokens, output_tokens=output_tokens, tool_calls=worst_tools(bounds, price, limits),
                 cache_storage_tokens=input_tokens + output_tokens if bounds.cache_hours else 0,
                 cache_storage_hours=bounds.cache_hours)


def _tool_calls(bounds: RequestBounds, limits: ModelLimits) -> int:
    """The built-in tool calls the upstream may make: the request's `max_tool_calls`, else
    the default the proxy forwards in its place."""
    if not bounds.tools:
        return 0
    return limits.tool_calls if bounds.max_tool_calls is None else bounds.max_tool_calls


def worst_tools(bounds: RequestBounds, price: ResolvedPrice, limits: ModelLimits) -> tuple[tuple[str, int], ...]:
    """The most the request's built-in tools may bill, in units."""
    calls = _tool_calls(bounds, limits)
    priced = price.tenant_version if price.tenant_version and price.tenant_version.tools else price.version
    return worst_tool_units(bounds.tool_units, priced, calls) if calls else ()


def worst_tool_units(units: tuple[tuple[str, bool], ...], version: PriceVersion,
                     calls: int) -> tuple[tuple[str, int], ...]:
    """The dearest unit billed per call, `calls` times, and a container for each tool that
    makes one (the dearest first), as many as there are calls to run in them."""
    def price(unit: str) -> Decimal:
        return version.tool_price(unit) or Decimal(0)

    counts: Counter[str] = Counter()
    per_call = [dearest_unit(pattern, version) for pattern, each in units if each]
    if per_call:
        counts[max(per_call, key=price)] += calls
    containers = sorted((dearest_unit(pattern, version) for pattern, each in units if not each), key=price,
                        reverse=True)
    counts.update(containers[:calls])
    return tuple(sorted(counts.items()))


def dearest_unit(pattern: str, version: PriceVersion) -> str:
    """The priced unit matching `pattern` with the highest price; the pattern itself when
    none matches (priced as `PriceVersion.tool_price` prices it: an image never free)."""
    if not any(c in pattern for c in "*?["):
        return pattern
    matching = [unit for unit in version.tools if fnmatch.fnmatchcase(unit, pattern)]
    if not matching and pattern.startswith(IMAGE_UNITS):  # a model priced by tokens only: any image
        matching = [unit for unit in version.tools if unit.startswith(IMAGE_UNITS)]
    return max(matching, key=lambda unit: version.tools[unit], default=pattern)


def _dearest_rates(usage: Usage, version: PriceVersion, service_tier: str | None) -> Usage:
    """The usage with every token at its dearest possible rate in that service tier."""
    tier = version.tier_for(usage.input_tokens, service_tier)
    return replace(usage, service_tier=service_tier,
                   cache_write_tokens=usage.input_tokens if tier.cache_write_price > tier.input else 0,
                   reasoning_tokens=usage.output_tokens if tier.reasoning_price > tier.output else 0)


def estimate(body_bytes: int, bounds: RequestBounds, price: ResolvedPrice, multiplier: Decimal,
             limits: ModelLimits, carried_tokens: int | None = 0) -> Estimate:
    """The most the call can cost the tenant: the worst usage, priced at the dearer of the
    standard prices and those of the tier the request asks for (or, asking for none, the
    tier the upstream account serves by default)."""
    usage = worst_usage(body_bytes, bounds, price, limits, carried_tokens)
    names = {None, bounds.service_tier or limits.default_service_tier}
    charge = max(tenant_charge(worst, price_usage(worst, price.version), price, multiplier)
                 for worst in (_dearest_rates(usage, price.tenant_version or price.version, name) for name in names))
    return Estimate(usage.input_tokens, usage.output_tokens, charge)


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
