"""A service tier priced without the long-context step of the standard prices (OpenAI lists
gpt-5.4 priority "excluding long context"): past the step, each component at the dearer of
its own price and the standard long-context one, and the entry flagged."""

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from billing.catalog import load_catalog, shipped_catalog_path
from billing.pricebook import PriceBook
from billing.pricing import LONG_CONTEXT_ASSUMED, PriceVersion, Tier, cache_savings, price_usage, unpriced
from billing.usage import Usage

D = Decimal
NOW = datetime(2026, 11, 24, tzinfo=timezone.utc)
_CATALOG = load_catalog(shipped_catalog_path())
BOOK = PriceBook(_CATALOG.versions, _CATALOG.aliases)
GPT_5_4 = BOOK.resolve("gpt-5.4", NOW).version


def usage(tier, input=0, cached=0, output=0, reasoning=0) -> Usage:
    return Usage(input_tokens=input, cached_tokens=cached, output_tokens=output, reasoning_tokens=reasoning,
                 service_tier=tier)


# gpt-5.4 in the shipped catalog: standard 2.50 / 0.25 / 15.00 up to 272,000 input tokens, then
# 5.00 / 0.50 / 22.50; priority one tier, 5.00 / 0.50 / 30.00; flex 1.25 / 0.13 / 7.50, then
# 2.50 / 0.25 / 11.25. (model version, usage, expected total USD, flagged)
CASES = [
    # priority at 300,000 input, 1,000 output: past 272,000, which the priority tiers do not know.
    # Dearer per component of priority (5.00 / 0.50 / 30.00) and standard long (5.00 / 0.50 / 22.50):
    # input max(5.00, 5.00) = 5.00, cached max(0.50, 0.50) = 0.50, output max(30.00, 22.50) = 30.00.
    # 300,000 x 5.00 / 1M + 1,000 x 30.00 / 1M = 1.50 + 0.03 = 1.53 (priority already the dearer: the
    # amount is what it was, the flag is new)
    (GPT_5_4, usage("priority", 300_000, output=1_000), D("1.53"), True),
    # the same with 200,000 of the input cached and 600 of the output reasoning:
    # 100,000 x 5.00 + 200,000 x 0.50 + 400 x 30.00 + 600 x 30.00, / 1M = 0.50 + 0.10 + 0.012 + 0.018
    (GPT_5_4, usage("priority", 300_000, cached=200_000, output=1_000, reasoning=600), D("0.63"), True),
    # `fast` is billed as priority, so the same: 1.53
    (GPT_5_4, usage("fast", 300_000, output=1_000), D("1.53"), True),
    # standard at 300,000 for comparison: 300,000 x 5.00 + 1,000 x 22.50, / 1M = 1.50 + 0.0225
    (GPT_5_4, usage(None, 300_000, output=1_000), D("1.5225"), False),
    # priority at exactly 272,000 is not past the step: 272,000 x 5.00 + 1,000 x 30.00, / 1M = 1.36 + 0.03
    (GPT_5_4, usage("priority", 272_000, output=1_000), D("1.39"), False),
    # flex knows the step (its own long tier): 300,000 x 2.50 + 1,000 x 11.25, / 1M = 0.75 + 0.01125
    (GPT_5_4, usage("flex", 300_000, output=1_000), D("0.76125"), False),
]


@pytest.mark.parametrize(("version", "used", "total", "flagged"), CASES)
def test_gpt_5_4_priority_past_the_long_context_step(version, used, total, flagged):
    assert price_usage(used, version).total == total
    assert (LONG_CONTEXT_ASSUMED in unpriced(used, version)) is flagged


# A made-up price where the standard long-context tier is dearer in some components than the
# service tier's only tier: standard 1 / 2 up to 100 input tokens, then input 4, cached 0.50,
# output 3; priority one tier, input 2, output 5 (cached 10% of input: 0.20).
STEPPED = PriceVersion("m", NOW, (Tier(D(1), D(2), up_to_input_tokens=100), Tier(D(4), D(3), cached=D("0.50"))),
                       service_tiers={"priority": (Tier(D(2), D(5)),),
                                      "flex": (Tier(D(2), D(5), up_to_input_tokens=100), Tier(D(3), D(6))),
                                      "early": (Tier(D(2), D(5), up_to_input_tokens=50), Tier(D(3), D(6)))})
STEP_CASES = [
    # priority at 1,000 input (200 cached), 100 output (50 reasoning), past 100: input max(2, 4) = 4,
    # cached max(0.20, 0.50) = 0.50, output and reasoning max(5, 3) = 5:
    # 800 x 4 + 200 x 0.50 + 50 x 5 + 50 x 5 = 3,200 + 100 + 250 + 250 = 3,800, / 1M
    # (its own tier alone: 800 x 2 + 200 x 0.20 + 100 x 5 = 2,140, / 1M = 0.00214, below the standard
    # long-context price of 800 x 4 + 200 x 0.50 + 100 x 3 = 3,600, / 1M)
    (usage("priority", 1_000, cached=200, output=100, reasoning=50), D("0.0038"), True),
    # priority within the first standard tier: its own price, 80 x 2 + 10 x 5 = 210, / 1M
    (usage("priority", 80, output=10), D("0.00021"), False),
    # flex knows the step at 100: its own long tier even where standard input is dearer (3 < 4):
    # 800 x 3 + 200 x 0.30 + 100 x 6 = 2,400 + 60 + 600 = 3,060, / 1M
    (usage("flex", 1_000, cached=200, output=100, reasoning=50), D("0.00306"), False),
    # early steps at 50, below the standard step at 100 it does not know: past 100 the dearer of
    # (3 / 0.30 / 6) and (4 / 0.50 / 3): 800 x 4 + 200 x 0.50 + 100 x 6 = 3,900, / 1M
    (usage("early", 1_000, cached=200, output=100), D("0.0039"), True),
    # early at 80: past its own 50, not past the standard 100: its own long tier, 80 x 3 + 10 x 6 = 300, / 1M
    (usage("early", 80, output=10), D("0.0003"), False),
    # a tier with no price of its own is the standard prices, as before (flagged as unpriced, not assumed):
    # 1,000 x 4 + 100 x 3 = 4,300, / 1M
    (usage("turbo", 1_000, output=100), D("0.0043"), False),
]


@pytest.mark.parametrize(("used", "total", "flagged"), STEP_CASES)
def test_the_dearer_component_past_a_step_the_service_tier_does_not_know(used, total, flagged):
    assert price_usage(used, STEPPED).total == total
    assert (LONG_CONTEXT_ASSUMED in unpriced(used, STEPPED)) is flagged


def test_the_flag_sits_beside_the_others():
    assert unpriced(usage("turbo", 1_000), STEPPED) == ("service_tier_unpriced:turbo",)
    assert unpriced(usage("priority", 1_000), STEPPED) == (LONG_CONTEXT_ASSUMED,)


def test_cache_savings_use_the_same_price():
    # 200 cached tokens at the assumed input price minus the assumed cached price: 200 x (4 - 0.50) / 1M
    assert cache_savings(usage("priority", 1_000, cached=200), STEPPED) == D("0.0007")


prices = st.decimals(min_value=0, max_value=100, places=2, allow_nan=False, allow_infinity=False)


@st.composite
def tier_lists(draw):
    bounds = sorted(draw(st.sets(st.integers(1, 1_000_000), max_size=3)))
    last_bounded = draw(st.booleans())
    return tuple(Tier(draw(prices), draw(prices), cached=draw(st.none() | prices), up_to_input_tokens=bound)
                 for bound in [*bounds, *([] if last_bounded and bounds else [None])])


@given(tier_lists(), tier_lists(), st.integers(0, 2_000_000))
def test_never_below_the_service_tiers_own_price_nor_the_standard_one_past_an_unknown_step(standard, own, n):
    version = PriceVersion("m", NOW, standard, service_tiers={"priority": own})
    chosen, alone = version.tier_for(n, "priority"), PriceVersion("m", NOW, own).tier_for(n)
    for name in ("input", "output", "cached_price", "cache_write_price", "reasoning_price"):
        assert getattr(chosen, name) >= getattr(alone, name)
        if version.assumes_long_context(n, "priority"):
            assert getattr(chosen, name) >= getattr(version.tier_for(n), name)
    if not version.assumes_long_context(n, "priority"):
        assert chosen == alone
    # a service tier that knows every standard bound never assumes anything
    same_bounds = PriceVersion("m", NOW, standard, service_tiers={
        "priority": tuple(Tier(D(1), D(1), up_to_input_tokens=t.up_to_input_tokens) for t in standard)})
    assert not same_bounds.assumes_long_context(n, "priority")
