"""Fitting a call's output cap to what is left: the line of worst cases, the per-call cap,
the floor, and the refusal that says what would fit."""

from datetime import datetime, timezone
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.fitting import CallTooDear, fit_call, floor_units, output_line
from billing.pricebook import ResolvedPrice
from billing.pricing import PriceVersion, Tier
from billing.quota import ModelLimits, estimate
from billing.quota_refusals import Refused, refusal_text
from billing.request_bounds import request_bounds

UTC = timezone.utc
# gpt-5 at its list price: $1.25 in, $10 out per 1M tokens, 128,000 output tokens at most
GPT5 = PriceVersion("gpt-5", datetime(2026, 1, 1, tzinfo=UTC), (Tier(D("1.25"), D("10")),), id=2,
                    max_output_tokens=128_000)
PRICE = ResolvedPrice("gpt-5", "gpt-5", GPT5)
LIMITS = ModelLimits(default_output_cap=16_384, context_window=400_000, image_tokens=50_000, tool_calls=10)


def line_of(payload: dict, endpoint: str = "responses"):
    bounds = request_bounds(payload, endpoint, 0)
    body = len(str(payload).encode())
    return output_line(body, bounds, PRICE, D(1), LIMITS, 0), estimate(body, bounds, PRICE, D(1), LIMITS, 0), bounds


def test_the_line_is_the_estimate_at_every_cap():
    line, worst, _ = line_of({"model": "gpt-5", "input": "hello"})
    assert line.max_units == 128_000 and line.unit_tokens == 1
    assert line.unit_usd == D("0.00001")  # $10 per 1M output tokens
    assert line.at(128_000) == worst
    # base: the input bound at $1.25/M; each unit one output token at $10/M
    assert line.at(256).charge == line.base.charge + D("0.00256")


def test_chat_choices_multiply_each_unit():
    line, worst, _ = line_of({"model": "gpt-5", "n": 3, "messages": [{"role": "user", "content": "x"}],
                              "max_completion_tokens": 1000}, "chat.completions")
    assert line.max_units == 1000 and line.unit_tokens == 3 and line.unit_usd == D("0.00003")
    assert line.at(1000) == worst


def test_nothing_to_fit_on_embeddings():
    bounds = request_bounds({"model": "gpt-5", "input": "x"}, "embeddings", 0)
    assert output_line(10, bounds, PRICE, D(1), LIMITS, 0) is None


@pytest.mark.parametrize("max_call", ["0.01", "0.005", "0.5"])
def test_a_per_call_cap_lowers_the_cap_to_what_it_pays_for(max_call):
    """The largest cap with base + cap x $0.00001 within the per-call cap."""
    line, worst, _ = line_of({"model": "gpt-5", "input": "hello"})
    fit = fit_call(worst, line, 256, D(max_call), "key_max_call")
    units = int((D(max_call) - line.base.charge) // D("0.00001"))
    assert fit.line.max_units == units and fit.fitted_by == "key_max_call"
    assert fit.worst.charge <= D(max_call) < fit.worst.charge + D("0.00001")


def test_a_call_whose_floor_is_over_the_per_call_cap_is_refused_and_told_why():
    line, worst, _ = line_of({"model": "gpt-5", "input": "hello"})
    with pytest.raises(CallTooDear) as refused:
        fit_call(worst, line, 256, D("0.002"), "tenant_max_call")  # 256 tokens cost $0.00256
    assert "below the fitting floor of 256" in refused.value.message
    with pytest.raises(CallTooDear) as refused:
        fit_call(worst, line, 256, D("0.0000001"), "tenant_max_call")
    assert "input alone" in refused.value.message


def test_a_call_under_its_per_call_cap_is_left_alone():
    line, worst, _ = line_of({"model": "gpt-5", "input": "hello", "max_output_tokens": 100})
    fit = fit_call(worst, line, 256, D("1"), "key_max_call")
    assert fit.worst == worst and fit.fitted_by is None and fit.floor_units == 100  # it asked for no more


def test_a_call_that_cannot_be_capped_is_refused_over_the_per_call_cap():
    line, worst, _ = line_of({"model": "gpt-5", "input": "hello"})
    with pytest.raises(CallTooDear) as refused:
        fit_call(worst, line, 256, D("0.01"), "key_max_call", unfittable="BytePlus `caching.prefix` ...")
    assert "cannot be lowered" in refused.value.message


def test_the_floor_is_never_above_what_the_call_asked_for():
    line, _, _ = line_of({"model": "gpt-5", "input": "hello", "max_output_tokens": 40})
    assert floor_units(256, line) == 40
    line, _, _ = line_of({"model": "gpt-5", "input": "hello"})
    assert floor_units(256, line) == 256


def test_a_refusal_names_the_limit_the_worst_case_what_is_left_and_the_cap_that_would_fit():
    line, worst, _ = line_of({"model": "gpt-5", "input": "hello"})
    left = line.base.charge + D("0.001")  # 100 output tokens' worth
    text = refusal_text(Refused("tenant_budget", "over_left", worst, datetime(2027, 1, 1, tzinfo=UTC), line, 256,
                                left_usd=left, room_usd=left))
    assert "the team's monthly budget" in text and f"${worst.charge}" in text.replace(",", "")
    assert "of at most 100 would fit" in text and "2027-01-01T00:00:00+00:00" in text
    held = refusal_text(Refused("key_budget", "held_in_flight", worst, None, line, 256, left_usd=D(1),
                                room_usd=D(0)))
    assert held.startswith("Calls in flight hold what is left of this API key's monthly budget")
    spent = refusal_text(Refused("tenant_credit", "spent", worst, None, line, 256, left_usd=D(0), room_usd=D(0)))
    assert "prepaid credit balance is spent" in spent and "add credit" in spent
    requests = refusal_text(Refused("tenant_daily_requests", "spent", worst, datetime(2027, 1, 1, tzinfo=UTC)))
    assert "daily request quota is used up" in requests


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=300), cap=st.one_of(st.none(), st.integers(1, 200_000)),
       n=st.integers(1, 8), room=st.decimals(min_value=0, max_value=5, places=9),
       floor=st.integers(1, 2000), shares=st.integers(1, 16), in_flight=st.integers(0, 100))
def test_a_fitted_calls_worst_case_never_exceeds_what_was_left(text, cap, n, room, floor, shares, in_flight):
    """What the admission statement computes, here in Python: the units a limit with `room`
    left allows; the estimate at those units is never more than `room`."""
    payload = {"model": "gpt-5", "n": n, "messages": [{"role": "user", "content": text}]}
    if cap is not None:
        payload["max_completion_tokens"] = cap
    line, worst, bounds = line_of(payload, "chat.completions")
    if worst.charge <= room:
        return  # fits whole: not fitted
    minimum = floor_units(floor, line)
    if line.at(minimum).charge > room:
        return  # refused
    share = max(int((room - line.base.charge) / (shares * (1 + in_flight) * line.unit_usd)), minimum)
    units = min(share, line.max_units)
    fitted = estimate(len(str(payload).encode()), type(bounds)(**{**bounds.__dict__, "output_cap": units}), PRICE,
                      D(1), LIMITS, 0)
    assert fitted == line.at(units) and fitted.charge <= room
