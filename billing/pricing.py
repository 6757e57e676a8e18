"""The pricing engine: what a `Usage` costs under a price. Pure and exact.

Prices are USD per 1,000,000 tokens as `Decimal`. Every cost is exactly
tokens x price / 1,000,000: the arithmetic runs in a decimal context wide enough that
nothing is ever rounded (a cost has at most a few dozen significant digits).
"""

import decimal
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from billing.usage import Usage

PER_MILLION = Decimal(1_000_000)
CACHED_DEFAULT_SHARE = Decimal("0.1")  # cached input at 10% of input unless priced
_EXACT = decimal.Context(prec=60, traps=[decimal.Inexact, decimal.InvalidOperation])


@dataclass(frozen=True)
class Tier:
    """Prices that apply while the request's total input_tokens <= `up_to_input_tokens`.

    A component left as None takes the contract's default: cached = 10% of input,
    cache_write = input, reasoning = output.
    """

    input: Decimal
    output: Decimal
    cached: Decimal | None = None
    cache_write: Decimal | None = None
    reasoning: Decimal | None = None
    up_to_input_tokens: int | None = None  # None: no upper bound

    @property
    def cached_price(self) -> Decimal:
        if self.cached is not None:
            return self.cached
        return _EXACT.multiply(self.input, CACHED_DEFAULT_SHARE)

    @property
    def cache_write_price(self) -> Decimal:
        return self.input if self.cache_write is None else self.cache_write

    @property
    def reasoning_price(self) -> Decimal:
        return self.output if self.reasoning is None else self.reasoning


@dataclass(frozen=True)
class PriceVersion:
    """One immutable price of one model, in force from `effective_from` on."""

    model: str
    effective_from: datetime
    tiers: tuple[Tier, ...]
    id: int | None = None
    source: str = ""
    tenant_id: int | None = None  # set: this tenant's own price (what it is charged), not the upstream's
    max_output_tokens: int | None = None  # the model's largest reply, for worst-case quota estimates

    def __post_init__(self) -> None:
        if not self.tiers:
            raise ValueError(f"price of {self.model!r} has no tiers")
        bounds = [t.up_to_input_tokens for t in self.tiers]
        if None in bounds[:-1]:
            raise ValueError(f"price of {self.model!r}: only the last tier may be unbounded")
        finite = [b for b in bounds if b is not None]
        if finite != sorted(set(finite)):
            raise ValueError(f"price of {self.model!r}: tier bounds must strictly increase")

    def tier_for(self, input_tokens: int) -> Tier:
        """The first tier whose bound covers the input; past the last bound, the last tier
        (an upstream that accepted a longer input is still billed, never dropped)."""
        for tier in self.tiers:
            if tier.up_to_input_tokens is None or input_tokens <= tier.up_to_input_tokens:
                return tier
        return self.tiers[-1]


@dataclass(frozen=True)
class Cost:
    """Each component of a request's cost, in USD."""

    uncached_input: Decimal
    cached_input: Decimal
    cache_write: Decimal
    output: Decimal
    reasoning: Decimal

    @property
    def total(self) -> Decimal:
        return _sum(
            (self.uncached_input, self.cached_input, self.cache_write, self.output, self.reasoning)
        )


def _sum(values) -> Decimal:
    total = Decimal(0)
    for value in values:
        total = _EXACT.add(total, value)
    return total


def _component(tokens: int, price_per_million: Decimal) -> Decimal:
    return _EXACT.divide(_EXACT.multiply(Decimal(tokens), price_per_million), PER_MILLION)


def cost_of(usage: Usage, tier: Tier) -> Cost:
    """The contract's formula (CONTRACT.md section 5), exactly."""
    return Cost(
        uncached_input=_component(usage.uncached_input_tokens, tier.input),
        cached_input=_component(usage.cached_tokens, tier.cached_price),
        cache_write=_component(usage.cache_write_tokens, tier.cache_write_price),
        output=_component(usage.visible_output_tokens, tier.output),
        reasoning=_component(usage.reasoning_tokens, tier.reasoning_price),
    )


def price_usage(usage: Usage, version: PriceVersion) -> Cost:
    return cost_of(usage, version.tier_for(usage.input_tokens))


def cache_savings(usage: Usage, version: PriceVersion) -> Decimal:
    """What the cached tokens would have cost at the input price, minus what they cost."""
    tier = version.tier_for(usage.input_tokens)
    return _component(usage.cached_tokens, _EXACT.subtract(tier.input, tier.cached_price))


def charge_of(cost: Decimal, multiplier: Decimal) -> Decimal:
    """A tenant's charge at a markup (1.2) or discount (0.9) on the upstream cost."""
    return _EXACT.multiply(cost, multiplier)


def exact_sum(values) -> Decimal:
    """Sum of decimals without rounding, for totals."""
    return _sum(values)
