"""Quota arithmetic: billing periods in any time zone, and worst-case estimates that are
never below what the upstream can bill."""

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from billing.pricebook import ResolvedPrice
from billing.pricing import PriceVersion, Tier, price_usage
from billing.quota import (check_thresholds, check_time_zone, estimate, next_period_start, period_start,
                           refusal_message, requested_output_cap, standing)
from billing.usage import Usage

UTC = timezone.utc
D = Decimal


@pytest.mark.parametrize(("at", "zone", "start", "reset"), [
    (datetime(2026, 11, 24, 18, 0, tzinfo=UTC), "UTC", datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)),
    (datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC), "UTC", datetime(2026, 12, 1, tzinfo=UTC),
     datetime(2027, 1, 1, tzinfo=UTC)),
    # 2026-11-30 23:30 UTC is already December 1st in Tokyo (UTC+9)
    (datetime(2026, 11, 30, 23, 30, tzinfo=UTC), "Asia/Tokyo", datetime(2026, 11, 30, 15, 0, tzinfo=UTC),
     datetime(2026, 12, 31, 15, 0, tzinfo=UTC)),
    # and still October in New York on 2026-11-01 03:00 UTC (UTC-4 before the DST change)
    (datetime(2026, 11, 1, 3, 0, tzinfo=UTC), "America/New_York", datetime(2026, 10, 1, 4, 0, tzinfo=UTC),
     datetime(2026, 11, 1, 4, 0, tzinfo=UTC)),
    # December in New York begins at 05:00 UTC (UTC-5 after the change)
    (datetime(2026, 12, 15, tzinfo=UTC), "America/New_York", datetime(2026, 12, 1, 5, 0, tzinfo=UTC),
     datetime(2027, 1, 1, 5, 0, tzinfo=UTC)),
])
def test_periods(at, zone, start, reset):
    assert period_start(at, zone) == start
    assert next_period_start(start, zone) == reset


def test_time_zones_and_thresholds_are_validated():
    assert check_time_zone("Europe/Berlin") == "Europe/Berlin"
    for bad in ("Mars/Olympus", "", "../etc/passwd"):
        with pytest.raises(ValueError):
            check_time_zone(bad)
    assert check_thresholds([100, 50, 80, 50]) == [50, 80, 100]
    with pytest.raises(ValueError):
        check_thresholds([0])


def test_output_cap_from_the_request_or_the_default():
    assert requested_output_cap({"max_output_tokens": 50}, 4096) == 50
    assert requested_output_cap({"max_tokens": 7}, 4096) == 7
    assert requested_output_cap({"max_output_tokens": "50"}, 4096) == 4096
    assert requested_output_cap({}, 4096) == 4096


SEED = PriceVersion("seed-1-6", datetime(2026, 1, 1, tzinfo=UTC), (
    Tier(D("0.25"), D("2.00"), cached=D("0.05"), up_to_input_tokens=128_000),
    Tier(D("0.50"), D("4.00"), cached=D("0.05"), up_to_input_tokens=256_000)), id=1, max_output_tokens=32_768)
PRICE = ResolvedPrice("seed-1-6-250915", "seed-1-6", SEED)


def test_estimate_hand_worked():
    # 1000 body bytes -> at most 1000 input tokens at 0.25; 200 output at 2.00:
    # (1000 x 0.25 + 200 x 2.00) / 1M = 0.00065, and x 1.2 for a marked-up tenant
    worst = estimate(1000, {"max_output_tokens": 200}, PRICE, D("1.2"), 4096)
    assert (worst.input_tokens, worst.output_tokens, worst.tokens) == (1000, 200, 1200)
    assert worst.charge == D("0.00065") * D("1.2")
    # no cap in the request: the model's own (32,768 output tokens)
    assert estimate(1000, {}, PRICE, D(1), 4096).output_tokens == 32_768


@given(st.integers(1, 300_000), st.integers(0, 300_000), st.integers(0, 32_768), st.data())
def test_estimate_is_never_below_the_actual_charge(body_bytes, cached, output, data):
    """Whatever usage the upstream reports within the bounds (input <= body bytes, output <=
    the cap), its charge is at most the estimate."""
    input_tokens = data.draw(st.integers(0, body_bytes))
    reasoning = data.draw(st.integers(0, output))
    actual = Usage(input_tokens=input_tokens, cached_tokens=min(cached, input_tokens), output_tokens=output,
                   reasoning_tokens=reasoning)
    worst = estimate(body_bytes, {"max_output_tokens": 32_768}, PRICE, D(1), 4096)
    assert price_usage(actual, SEED).total <= worst.charge
    assert actual.total_tokens <= worst.tokens


def test_standing_and_refusal_message():
    month = standing(datetime(2026, 11, 1, tzinfo=UTC), "UTC", D("10"), None, D("7.5"), D("1.25"), 900, 100)
    assert month.budget_remaining_usd == D("1.25") and month.tokens_remaining is None
    assert month.resets_at == datetime(2026, 12, 1, tzinfo=UTC)
    message = refusal_message("tenant_budget", month.resets_at)
    assert "monthly budget" in message and "2026-12-01T00:00:00+00:00" in message
