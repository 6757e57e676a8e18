"""The pricing engine: what a `Usage` costs under a price. Pure and exact.

Prices are USD per 1,000,000 tokens as `Decimal`. Every cost is exactly
tokens x price / 1,000,000: the arithmetic runs in a decimal context wide enough that
nothing is ever rounded (a cost has at most a few dozen significant digits).

Besides tokens, a price may charge for built-in tool calls (USD per 1,000 calls of each
tool) and for cache storage (USD per 1,000,000 tokens per hour stored, BytePlus), and may
differ per service tier: the tier the response reports it was served in picks the prices.
A service tier priced without the long-context step its standard prices have (OpenAI lists
priority prices that exclude long context) is billed, past that step, at the dearer of its
own price and the standard long-context one, and the entry is flagged.
"""

import decimal
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Mapping

from billing.usage import Usage

PER_MILLION = Decimal(1_000_000)
PER_THOUSAND = Decimal(1_000)
DEFAULT_SERVICE_TIERS = frozenset({None, "", "auto", "default", "standard"})  # the standard prices
# Tiers the upstream bills at another tier's prices when a version has none of their own:
# OpenAI serves `fast` as priority processing, and Scale Tier calls are metered at the
# standard token prices (its committed capacity units are invoiced apart).
BILLED_AS = {"fast": "priority", "scale": "default"}
# The price unit a container of each memory size is billed under; a 1g container takes the
# older `code_interpreter` price when a version names no `container.1g`.
CONTAINER_1G, LEGACY_CONTAINER = "container.1g", "code_interpreter"
# An image of a model (or size) with no per-image price of its own is billed at the dearest
# priced image of its quality and size, else at the dearest priced image: never free.
IMAGE_UNITS = "image_generation."
CACHED_DEFAULT_SHARE = Decimal("0.1")  # cached input at 10% of input unless priced
LONG_CONTEXT_ASSUMED = "long_context_tier_assumed"  # the flag of a price `_dearer` made up
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
    # Prices of other service tiers ("flex", "priority", ...), each tiered like `tiers`.
    service_tiers: Mapping[str, tuple[Tier, ...]] = field(default_factory=dict, hash=False)
    tools: Mapping[str, Decimal] = field(default_factory=dict, hash=False)  # USD per 1,000 calls
    cache_storage: Decimal | None = None  # USD per 1M tokens per hour of storage

    def __post_init__(self) -> None:
        for name, tiers in (("default", self.tiers), *self.service_tiers.items()):
            _check_tiers(self.model, name, tiers)
        if any(name in DEFAULT_SERVICE_TIERS for name in self.service_tiers):
            raise ValueError(f"price of {self.model!r}: the standard prices are the `tiers` themselves")

    def billed_tier(self, service_tier: str | None) -> str | None:
        """The tier whose prices bill a reply served in `service_tier`: its own, else the one
        the upstream bills it as (`fast` as priority, `scale` as standard), else None (no
        price of its own: billed at the standard prices and flagged)."""
        if service_tier in DEFAULT_SERVICE_TIERS:
            return "default"
        if service_tier in self.service_tiers:
            return service_tier
        billed_as = BILLED_AS.get(service_tier or "")
        if billed_as == "default" or billed_as in self.service_tiers:
            return billed_as
        return None

    def prices_service_tier(self, service_tier: str | None) -> bool:
        return self.billed_tier(service_tier) is not None

    def tool_price(self, unit: str) -> Decimal | None:
        """USD per 1,000 of a tool's billed units (calls, containers, images), or None. A
        unit naming alternatives (`a|b`: a call that was one of them) is priced at the dearest."""
        if "|" in unit:
            prices = [price for alternative in unit.split("|") if (price := self.tool_price(alternative)) is not None]
            return max(prices, default=None)
        price = self.tools.get(unit)
        if price is None and unit == CONTAINER_1G:
            return self.tools.get(LEGACY_CONTAINER)
        if price is None and unit.startswith(IMAGE_UNITS):
            return self._dearest_image(unit)
        return price

    def _dearest_image(self, unit: str) -> Decimal | None:
        images = {name: price for name, price in self.tools.items() if name.startswith(IMAGE_UNITS)}
        alike = [price for name, price in images.items() if name.split(".")[-2:] == unit.split(".")[-2:]]
        return max(alike or images.values(), default=None)

    def tier_for(self, input_tokens: int, service_tier: str | None = None) -> Tier:
        """The first tier whose bound covers the input; past the last bound, the last tier
        (an upstream that accepted a longer input is still billed, never dropped). A service
        tier without prices of its own is priced at the standard ones (and flagged by
        `price_usage`). Past a standard bound its own tiers do not know (gpt-5.4 priority has
        one tier; the standard prices step up above 272,000 input tokens), each component is
        the dearer of its own tier's and the standard tier's: never below either, as the
        upstream publishes no price of that service tier for that input (flagged by `unpriced`)."""
        tiers = self.service_tiers.get(self.billed_tier(service_tier) or "", self.tiers)
        tier = _covering(tiers, input_tokens)
        standard = self._standard_past_known_bounds(input_tokens, service_tier)
        return tier if standard is None else _dearer(tier, standard)

    def assumes_long_context(self, input_tokens: int, service_tier: str | None) -> bool:
        """`tier_for` made the price up from two tier lists (`LONG_CONTEXT_ASSUMED`)."""
        return self._standard_past_known_bounds(input_tokens, service_tier) is not None

    def _standard_past_known_bounds(self, input_tokens: int, service_tier: str | None) -> Tier | None:
        """The standard tier of the input, where the input passed a standard bound that lies
        above every bound of the service tier's own list; else None (no service tier of its
        own, or its list knows the step)."""
        own = self.service_tiers.get(self.billed_tier(service_tier) or "")
        if own is None:
            return None
        known = max((t.up_to_input_tokens for t in own if t.up_to_input_tokens is not None), default=None)
        passed = [t.up_to_input_tokens for t in self.tiers
                  if t.up_to_input_tokens is not None and t.up_to_input_tokens < input_tokens]
        if not any(known is None or bound > known for bound in passed):
            return None
        return _covering(self.tiers, input_tokens)


def _covering(tiers: tuple[Tier, ...], input_tokens: int) -> Tier:
    for tier in tiers:
        if tier.up_to_input_tokens is None or input_tokens <= tier.up_to_input_tokens:
            return tier
    return tiers[-1]


def _dearer(tier: Tier, other: Tier) -> Tier:
    """Each price the higher of the two (defaults resolved first: 10% cached, and so on)."""
    return Tier(input=max(tier.input, other.input), output=max(tier.output, other.output),
                cached=max(tier.cached_price, other.cached_price),
                cache_write=max(tier.cache_write_price, other.cache_write_price),
                reasoning=max(tier.reasoning_price, other.reasoning_price),
                up_to_input_tokens=tier.up_to_input_tokens)


def _check_tiers(model: str, service_tier: str, tiers: tuple[Tier, ...]) -> None:
    where = f"price of {model!r}" + ("" if service_tier == "default" else f", service tier {service_tier!r}")
    if not tiers:
        raise ValueError(f"{where} has no tiers")
    bounds = [t.up_to_input_tokens for t in tiers]
    if None in bounds[:-1]:
        raise ValueError(f"{where}: only the last tier may be unbounded")
    finite = [b for b in bounds if b is not None]
    if finite != sorted(set(finite)):
        raise ValueError(f"{where}: tier bounds must strictly increase")


class NoStandardPrice(ValueError):
    """A service tier's price was set for a model that has no standard price to keep."""


def revised(current: PriceVersion | None, tiers: tuple[Tier, ...], *, model: str, effective_from: datetime, source: str,
            tenant_id: int | None = None, service_tier: str | None = None,
            tools: Mapping[str, Decimal] | None = None, cache_storage: Decimal | None = None) -> PriceVersion:
    """The version an operator's `prices set` makes: `tiers` as the standard prices, or as the
    prices of `service_tier`; tool and storage prices laid over the current version's, which
    also lends everything else (so setting the flex price keeps the standard one)."""
    carried = current.service_tiers if current else {}
    if service_tier in DEFAULT_SERVICE_TIERS:
        standard, service_tiers = tiers, dict(carried)
    elif current is None:
        raise NoStandardPrice(f"{model!r} has no standard price yet; set it before the {service_tier!r} price")
    else:
        standard, service_tiers = current.tiers, {**carried, service_tier: tiers}
    return PriceVersion(
        model=model, effective_from=effective_from, tiers=standard, source=source, tenant_id=tenant_id,
        max_output_tokens=current.max_output_tokens if current else None, service_tiers=service_tiers,
        tools={**(current.tools if current else {}), **(tools or {})},
        cache_storage=cache_storage if cache_storage is not None else (current.cache_storage if current else None))


@dataclass(frozen=True)
class Cost:
    """Each component of a request's cost, in USD."""

    uncached_input: Decimal
    cached_input: Decimal
    cache_write: Decimal
    output: Decimal
    reasoning: Decimal
    tool_calls: Decimal = Decimal(0)  # built-in tools, per call
    cache_storage: Decimal = Decimal(0)  # cached context kept by the upstream, per token-hour

    @property
    def total(self) -> Decimal:
        return _sum((self.uncached_input, self.cached_input, self.cache_write, self.output, self.reasoning,
                     self.tool_calls, self.cache_storage))


def _sum(values) -> Decimal:
    total = Decimal(0)
    for value in values:
        total = _EXACT.add(total, value)
    return total


def _component(tokens: int, price_per_million: Decimal) -> Decimal:
    return _EXACT.divide(_EXACT.multiply(Decimal(tokens), price_per_million), PER_MILLION)


def cost_of(usage: Usage, tier: Tier, tool_calls: Decimal = Decimal(0), cache_storage: Decimal = Decimal(0)) -> Cost:
    """The contract's formula (CONTRACT.md section 5) for the tokens, exactly, beside the
    tool-call and storage costs already worked out."""
    return Cost(
        uncached_input=_component(usage.uncached_input_tokens, tier.input),
        cached_input=_component(usage.cached_tokens, tier.cached_price),
        cache_write=_component(usage.cache_write_tokens, tier.cache_write_price),
        output=_component(usage.visible_output_tokens, tier.output),
        reasoning=_component(usage.reasoning_tokens, tier.reasoning_price),
        tool_calls=tool_calls,
        cache_storage=cache_storage,
    )


def tool_calls_cost(usage: Usage, version: PriceVersion) -> Decimal:
    """Each tool unit at its price per 1,000; a unit without a price costs nothing here and
    is flagged by `unpriced`."""
    prices = ((count, version.tool_price(name)) for name, count in usage.tool_calls)
    return _sum(_EXACT.divide(_EXACT.multiply(Decimal(count), price), PER_THOUSAND)
                for count, price in prices if price is not None)


def cache_storage_cost(usage: Usage, version: PriceVersion) -> Decimal:
    if not usage.cache_storage_token_hours or version.cache_storage is None:
        return Decimal(0)
    return _component(usage.cache_storage_token_hours, version.cache_storage)


def price_usage(usage: Usage, version: PriceVersion, uplift: Decimal = Decimal(0)) -> Cost:
    """`uplift`: what the upstream adds on the model's token prices, as a fraction (0.10 for
    the 10% that OpenAI's data-residency and regional-processing endpoints add; its tool
    fees stay as listed)."""
    cost = cost_of(usage, version.tier_for(usage.input_tokens, usage.service_tier),
                   tool_calls_cost(usage, version) if usage.tool_calls else Decimal(0),
                   cache_storage_cost(usage, version))
    return uplifted(cost, uplift) if uplift else cost


_TOKEN_COMPONENTS = ("uncached_input", "cached_input", "cache_write", "output", "reasoning")


def uplifted(cost: Cost, uplift: Decimal) -> Cost:
    """The token components of `cost` raised by `uplift`, exactly."""
    factor = _EXACT.add(Decimal(1), uplift)
    return replace(cost, **{name: _EXACT.multiply(getattr(cost, name), factor) for name in _TOKEN_COMPONENTS})


def unpriced(usage: Usage, version: PriceVersion) -> tuple[str, ...]:
    """What the usage holds that `version` has no price for (billed at the standard prices, or
    at nothing), as flags for the ledger entry: an operator must add the price."""
    if not usage.tool_calls and usage.service_tier is None and not usage.cache_storage_tokens:
        return ()
    flags = [f"tool_unpriced:{name}" for name, count in usage.tool_calls
             if count and version.tool_price(name) is None]
    flags += [f"tool_price_assumed:{name}" for name, count in usage.tool_calls
              if count and name.startswith(IMAGE_UNITS) and name not in version.tools
              and version.tool_price(name) is not None]
    if not version.prices_service_tier(usage.service_tier):
        flags.append(f"service_tier_unpriced:{usage.service_tier}")
    if version.assumes_long_context(usage.input_tokens, usage.service_tier):
        flags.append(LONG_CONTEXT_ASSUMED)
    if usage.cache_storage_token_hours and version.cache_storage is None:
        flags.append("cache_storage_unpriced")
    return tuple(flags)


def cache_savings(usage: Usage, version: PriceVersion) -> Decimal:
    """What the cached tokens would have cost at the input price, minus what they cost."""
    tier = version.tier_for(usage.input_tokens, usage.service_tier)
    return _component(usage.cached_tokens, _EXACT.subtract(tier.input, tier.cached_price))


def charge_of(cost: Decimal, multiplier: Decimal) -> Decimal:
    """A tenant's charge at a markup (1.2) or discount (0.9) on the upstream cost."""
    return _EXACT.multiply(cost, multiplier)


def exact_sum(values) -> Decimal:
    """Sum of decimals without rounding, for totals."""
    return _sum(values)
