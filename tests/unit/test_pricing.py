"""The pricing formula, by hand-worked cases and by properties against an exact reference."""

from datetime import datetime, timezone
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, strategies as st

from billing.catalog import load_catalog, shipped_catalog_path
from billing.pricebook import PriceBook
from billing.pricing import PriceVersion, Tier, cost_of, exact_sum, price_usage
from billing.usage import Usage, parse_usage

D = Decimal
NOW = datetime(2026, 11, 24, tzinfo=timezone.utc)
BOOK = PriceBook(load_catalog(shipped_catalog_path()).versions, load_catalog(shipped_catalog_path()).aliases)


def usage(input=0, cached=0, write=0, output=0, reasoning=0) -> Usage:
    return Usage(input_tokens=input, cached_tokens=cached, cache_write_tokens=write,
                 output_tokens=output, reasoning_tokens=reasoning)


# (model, usage, expected total USD) -- each worked out by hand in the comment.
SHIPPED_CASES = [
    # seed-1-6 tier 1: 1000 x 0.25/1M + 500 x 2.00/1M = 0.00025 + 0.001
    ("seed-1-6-250915", usage(1000, output=500), D("0.00125")),
    # tier edge, still tier 1 at exactly 128,000 input tokens:
    # 100000 x 0.25 + 28000 x 0.05 + 600 x 2.00 + 400 x 2.00 (reasoning at output price), / 1M
    # = 0.025 + 0.0014 + 0.0012 + 0.0008
    ("seed-1-6-250915", usage(128_000, cached=28_000, output=1000, reasoning=400), D("0.0284")),
    # one token past the edge: tier 2 (0.50 / 0.05 / 4.00): 128001 x 0.50 + 1000 x 4.00, / 1M
    ("seed-1-6-250915", usage(128_001, output=1000), D("0.0680005")),
    # seed-1-6-flash tier 1: 100000 x 0.075 + 20000 x 0.015 + 2000 x 0.30, / 1M = 0.0075 + 0.0003 + 0.0006
    ("seed-1-6-flash-250715", usage(120_000, cached=20_000, output=2000), D("0.0084")),
    # seed-1-6-flash tier 2: 200000 x 0.10 + 1000 x 0.80, / 1M = 0.02 + 0.0008
    ("seed-1-6-flash-250715", usage(200_000, output=1000), D("0.0208")),
    # gpt-4o-mini with published cached price 0.075:
    # 976 x 0.15 + 1024 x 0.075 + 300 x 0.60, / 1M = 0.0001464 + 0.0000768 + 0.00018
    ("gpt-4o-mini", usage(2000, cached=1024, output=300), D("0.0004032")),
    # gpt-4 (no cached price: 10% default never used here): 2 x 30 + 24 x 60, / 1M
    ("gpt-4", usage(2, output=24), D("0.0015")),
    # o4-mini reasoning at output price: 500 x 1.10 + (100 + 900) x 4.40, / 1M = 0.00055 + 0.0044
    ("o4-mini-2025-04-16", usage(500, output=1000, reasoning=900), D("0.00495")),
    ("gpt-5", usage(), D("0")),
]


@pytest.mark.parametrize(("model", "used", "expected"), SHIPPED_CASES)
def test_shipped_prices_hand_worked(model, used, expected):
    resolved = BOOK.resolve(model, NOW)
    assert resolved is not None
    assert price_usage(used, resolved.version).total == expected


PLAIN = Tier(input=D("3.00"), output=D("15.00"))
COMPONENT_CASES = [
    # cached defaults to 10% of input (0.30): 6000 x 3 + 4000 x 0.30 + 500 x 15 + 1500 x 15, / 1M
    (PLAIN, usage(10_000, cached=4000, output=2000, reasoning=1500),
     dict(uncached_input=D("0.018"), cached_input=D("0.0012"), cache_write=D("0"), output=D("0.0075"),
          reasoning=D("0.0225")), D("0.0492")),
    # cache writes default to the input price: 1000 x 3 / 1M
    (PLAIN, usage(1000, write=1000),
     dict(uncached_input=D("0"), cached_input=D("0"), cache_write=D("0.003"), output=D("0"), reasoning=D("0")),
     D("0.003")),
    # every price given: 3000 x 3 + 2000 x 0.30 + 5000 x 3.75 + 100 x 15, / 1M
    (Tier(input=D("3"), output=D("15"), cached=D("0.30"), cache_write=D("3.75"), reasoning=D("20")),
     usage(10_000, cached=2000, write=5000, output=100),
     dict(uncached_input=D("0.009"), cached_input=D("0.0006"), cache_write=D("0.01875"), output=D("0.0015"),
          reasoning=D("0")), D("0.02985")),
    # reasoning at its own price: 1000 x 20 / 1M, no visible output left
    (Tier(input=D("3"), output=D("15"), reasoning=D("20")), usage(0, output=1000, reasoning=1000),
     dict(uncached_input=D("0"), cached_input=D("0"), cache_write=D("0"), output=D("0"), reasoning=D("0.02")),
     D("0.02")),
]


@pytest.mark.parametrize(("tier", "used", "components", "total"), COMPONENT_CASES)
def test_every_component_hand_worked(tier, used, components, total):
    cost = cost_of(used, tier)
    assert {name: getattr(cost, name) for name in components} == components
    assert cost.total == total


def test_tier_edges_on_both_sides():
    version = BOOK.resolve("seed-1-6", NOW).version
    assert version.tier_for(128_000).input == D("0.25")
    assert version.tier_for(128_001).input == D("0.50")
    assert version.tier_for(256_000).input == D("0.50")
    # longer than the last bound: still billed, at the last tier
    assert version.tier_for(300_000).input == D("0.50")


def test_tier_chosen_by_total_input_not_uncached_part():
    # 130,000 input of which 100,000 cached: tier 2 applies, though only 30,000 are uncached
    version = BOOK.resolve("seed-1-6", NOW).version
    cost = price_usage(usage(130_000, cached=100_000), version)
    assert cost.uncached_input == D("30000") * D("0.50") / D(1_000_000)


def test_price_version_validates_tier_order():
    with pytest.raises(ValueError):
        PriceVersion("m", NOW, (Tier(D(1), D(1), up_to_input_tokens=10), Tier(D(1), D(1), up_to_input_tokens=5)))
    with pytest.raises(ValueError):
        PriceVersion("m", NOW, (Tier(D(1), D(1)), Tier(D(1), D(1), up_to_input_tokens=5)))
    with pytest.raises(ValueError):
        PriceVersion("m", NOW, ())


# --- properties -------------------------------------------------------------------------

prices = st.decimals(min_value=0, max_value=1000, places=6, allow_nan=False, allow_infinity=False)
counts = st.integers(min_value=0, max_value=10_000_000)
optional_prices = st.one_of(st.none(), prices)
tiers = st.builds(Tier, input=prices, output=prices, cached=optional_prices, cache_write=optional_prices,
                  reasoning=optional_prices)


def from_components(uncached, cached, write, visible, reasoning) -> Usage:
    return usage(uncached + cached + write, cached=cached, write=write, output=visible + reasoning,
                 reasoning=reasoning)


def reference(used: Usage, tier: Tier) -> Fraction:
    """The contract formula in exact rationals, defaults spelled out independently."""
    f = lambda d: Fraction(str(d))  # noqa: E731
    input_price = f(tier.input)
    cached = f(tier.cached) if tier.cached is not None else input_price / 10
    write = f(tier.cache_write) if tier.cache_write is not None else input_price
    reasoning = f(tier.reasoning) if tier.reasoning is not None else f(tier.output)
    uncached = used.input_tokens - used.cached_tokens - used.cache_write_tokens
    visible = used.output_tokens - used.reasoning_tokens
    return (uncached * input_price + used.cached_tokens * cached + used.cache_write_tokens * write
            + visible * f(tier.output) + used.reasoning_tokens * reasoning) / 1_000_000


@given(tiers, counts, counts, counts, counts, counts)
def test_cost_equals_exact_reference(tier, uncached, cached, write, visible, reasoning):
    used = from_components(uncached, cached, write, visible, reasoning)
    assert Fraction(str(cost_of(used, tier).total)) == reference(used, tier)


@given(tiers, counts, counts, counts, counts, counts)
def test_cost_is_additive_over_components(tier, uncached, cached, write, visible, reasoning):
    whole = cost_of(from_components(uncached, cached, write, visible, reasoning), tier).total
    parts = [
        cost_of(from_components(uncached, 0, 0, 0, 0), tier).total,
        cost_of(from_components(0, cached, 0, 0, 0), tier).total,
        cost_of(from_components(0, 0, write, 0, 0), tier).total,
        cost_of(from_components(0, 0, 0, visible, 0), tier).total,
        cost_of(from_components(0, 0, 0, 0, reasoning), tier).total,
    ]
    assert whole == exact_sum(parts)


@given(tiers, st.lists(counts, min_size=5, max_size=5), st.integers(0, 4), st.integers(1, 1000))
def test_cost_is_monotone_in_each_token_count(tier, components, which, extra):
    bigger = list(components)
    bigger[which] += extra
    assert cost_of(from_components(*bigger), tier).total >= cost_of(from_components(*components), tier).total


@given(tiers, st.dictionaries(
    st.sampled_from(["input_tokens", "output_tokens"]), st.integers(-10**9, 10**9)),
    st.integers(-10**9, 10**9), st.integers(-10**9, 10**9), st.integers(-10**9, 10**9))
def test_inconsistent_usage_never_costs_less_than_zero(tier, top, cached, write, reasoning):
    block = {**top, "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": write},
             "output_tokens_details": {"reasoning_tokens": reasoning}}
    block.setdefault("input_tokens", 0)
    used = parse_usage(block)
    cost = cost_of(used, tier)
    for component in (cost.uncached_input, cost.cached_input, cost.cache_write, cost.output, cost.reasoning):
        assert component >= 0
    assert used.uncached_input_tokens >= 0 and used.visible_output_tokens >= 0
