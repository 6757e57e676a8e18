"""Quota arithmetic: billing periods in any time zone, and worst-case estimates that are
never below what the upstream can bill."""

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo
from decimal import Decimal

import pytest
from hypothesis import given, settings, strategies as st

from billing.pricebook import ResolvedPrice
from billing.pricing import PriceVersion, Tier, price_usage
from billing.quota import (ModelLimits, check_thresholds, check_time_zone, estimate, next_period_start,
                           period_start, standing)
from billing.request_bounds import request_bounds
from billing.tokenizer import count_o200k
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


LIMITS = ModelLimits(default_output_cap=4096, context_window=256_000, image_tokens=50_000, tool_calls=10)
NOW = 1_790_000_000


def bounds(endpoint: str = "responses", **payload):
    """The bounds of a payload whose input is only known by the body's size (the hand-worked
    cases below give it in bytes); `content_tokens` is tested on its own."""
    return replace(request_bounds(payload, endpoint, NOW), content_tokens=None)


@pytest.mark.parametrize(("endpoint", "payload", "cap"), [
    ("responses", {"max_output_tokens": 50}, 50),
    ("responses", {"max_tokens": 7}, None),  # not a Responses field: the upstream ignores it
    ("responses", {"max_completion_tokens": 7}, None),
    ("responses", {"max_output_tokens": "50"}, None),
    ("chat.completions", {"max_output_tokens": 1}, None),  # not a chat field
    # alone, max_tokens bounds nothing: BytePlus does not count reasoning in it
    ("chat.completions", {"max_tokens": 7}, None),
    ("chat.completions", {"max_tokens": 7, "max_completion_tokens": 90}, 90),  # the larger, whichever wins
    ("embeddings", {"max_output_tokens": 9}, 0),
    ("responses", {}, None),
])
def test_output_cap_is_the_one_the_endpoint_honours(endpoint, payload, cap):
    assert bounds(endpoint, **payload).output_cap == cap


SEED = PriceVersion("seed-1-6", datetime(2026, 1, 1, tzinfo=UTC), (
    Tier(D("0.25"), D("2.00"), cached=D("0.05"), up_to_input_tokens=128_000),
    Tier(D("0.50"), D("4.00"), cached=D("0.05"), up_to_input_tokens=256_000)), id=1, max_output_tokens=32_768)
PRICE = ResolvedPrice("seed-1-6-250915", "seed-1-6", SEED)


GPT = PriceVersion("gpt-5", datetime(2026, 1, 1, tzinfo=UTC), (Tier(D("1.25"), D("10")),), id=2,
                   max_output_tokens=128_000, service_tiers={"priority": (Tier(D("2.50"), D("20")),)},
                   tools={"web_search": D("10")}, cache_storage=D("0.017"))
GPT_PRICE = ResolvedPrice("gpt-5", "gpt-5", GPT)


def test_estimate_hand_worked():
    # 1000 body bytes -> at most 1000 input tokens at 0.25; 200 output at 2.00:
    # (1000 x 0.25 + 200 x 2.00) / 1M = 0.00065, and x 1.2 for a marked-up tenant
    worst = estimate(1000, bounds(max_output_tokens=200), PRICE, D("1.2"), LIMITS)
    assert (worst.input_tokens, worst.output_tokens, worst.tokens) == (1000, 200, 1200)
    assert worst.charge == D("0.00065") * D("1.2")
    # no cap in the request: the model's own (32,768 output tokens)
    assert estimate(1000, bounds(), PRICE, D(1), LIMITS).output_tokens == 32_768


@pytest.mark.parametrize(("why", "body_bytes", "request_bounds_", "carried", "input_tokens", "output_tokens", "charge"), [
    # chat n=128 with max_completion_tokens 10: 1,280 output tokens; (100 x 0.25 + 1280 x 2) / 1M
    ("n choices", 100, bounds("chat.completions", n=128, max_completion_tokens=10), 0, 100, 1280, D("0.002585")),
    # max_output_tokens is ignored on chat: the model's cap; (100 x 0.25 + 32768 x 2) / 1M
    ("ignored cap", 100, bounds("chat.completions", max_output_tokens=1), 0, 100, 32_768, D("0.065561")),
    # a continuation of a 120,000-token response: (120,100 x 0.25 + 10 x 2) / 1M
    ("carried context", 100, bounds(max_output_tokens=10), 120_000, 120_100, 10, D("0.030045")),
    # 2 images at 50,000 tokens each: 100,100 input tokens; (100,100 x 0.25 + 10 x 2) / 1M
    ("images", 100, bounds(max_output_tokens=10, input=[{"role": "user", "content": [
        {"type": "input_image", "image_url": "https://example.com/a.png"},
        {"type": "input_image", "file_id": "file_1"}]}]), 0, 100_100, 10, D("0.025045")),
    # a file by id: the context window (256,000: the second tier, 0.50); (256,000 x 0.5 + 10 x 4) / 1M
    ("file", 100, bounds(max_output_tokens=10, input=[{"role": "user", "content": [
        {"type": "input_file", "file_id": "file_1"}]}]), 0, 256_000, 10, D("0.12804")),
    # a conversation's context is of unknown size, as is a continuation whose usage is not known yet
    ("conversation", 100, bounds(max_output_tokens=10, conversation="conv_1"), 0, 256_000, 10, D("0.12804")),
    ("unknown carried", 100, bounds(max_output_tokens=10), None, 256_000, 10, D("0.12804")),
])
def test_estimate_bounds_what_the_body_does_not_carry(why, body_bytes, request_bounds_, carried, input_tokens,
                                                     output_tokens, charge):
    worst = estimate(body_bytes, request_bounds_, PRICE, D(1), LIMITS, carried)
    assert (worst.input_tokens, worst.output_tokens, worst.charge) == (input_tokens, output_tokens, charge), why


def test_estimate_with_tools_tiers_and_cache_storage_hand_worked():
    # web_search with max_tool_calls 2: 3 turns of input (100, then the context window twice:
    # 512,100 tokens), 100 output, 2 calls at $10 / 1,000, at the standard prices:
    # (512,100 x 1.25 + 100 x 10) / 1M + 2 x 10 / 1000 = 0.640125 + 0.001 + 0.02 = 0.661125
    tools = {"max_output_tokens": 100, "max_tool_calls": 2, "tools": [{"type": "web_search"}]}
    worst = estimate(100, bounds(**tools), GPT_PRICE, D(1), LIMITS)
    assert (worst.input_tokens, worst.output_tokens, worst.charge) == (512_100, 100, D("0.661125"))
    # asking for the priority tier (or an account that serves `auto` there) prices it at priority:
    # (512,100 x 2.50 + 100 x 20) / 1M + 0.02 = 1.28025 + 0.002 + 0.02
    assert estimate(100, bounds(**tools, service_tier="priority"), GPT_PRICE, D(1), LIMITS).charge == D("1.30225")
    priority_account = replace(LIMITS, default_service_tier="priority")
    assert estimate(100, bounds(**tools), GPT_PRICE, D(1), priority_account).charge == D("1.30225")
    # flex is cheaper than standard: the standard prices stay the bound
    assert estimate(100, bounds(**tools, service_tier="flex"), GPT_PRICE, D(1), LIMITS).charge == D("0.661125")
    # BytePlus-style cache storage booked for 72 hours: (1,000 + 10) x 72 x 0.017 / 1M on top of
    # (1,000 x 1.25 + 10 x 10) / 1M = 0.00135 + 0.00123624
    cached = estimate(1000, bounds(max_output_tokens=10, caching={"type": "enabled"}), GPT_PRICE, D(1), LIMITS)
    assert cached.charge == D("0.00135") + D("0.00123624")
    # an expire_at 10 days out books 240 hours
    later = estimate(1000, bounds(max_output_tokens=10, caching={"type": "enabled"}, expire_at=NOW + 240 * 3600),
                     GPT_PRICE, D(1), LIMITS)
    assert later.charge == D("0.00135") + D("0.00412080")


@given(st.integers(1, 300_000), st.integers(0, 300_000), st.integers(0, 32_768), st.data())
def test_estimate_is_never_below_the_actual_charge(body_bytes, cached, output, data):
    """Whatever usage the upstream reports within the bounds (input <= body bytes and the
    context window, output <= the cap), its charge is at most the estimate."""
    input_tokens = data.draw(st.integers(0, min(body_bytes, LIMITS.context_window)))
    reasoning = data.draw(st.integers(0, output))
    actual = Usage(input_tokens=input_tokens, cached_tokens=min(cached, input_tokens), output_tokens=output,
                   reasoning_tokens=reasoning)
    worst = estimate(body_bytes, bounds(max_output_tokens=32_768), PRICE, D(1), LIMITS)
    assert price_usage(actual, SEED).total <= worst.charge
    assert actual.total_tokens <= worst.tokens


def test_standing():
    month = standing(datetime(2026, 11, 1, tzinfo=UTC), "UTC", D("10"), None, D("7.5"), D("1.25"), 900, 100)
    assert month.budget_remaining_usd == D("1.25") and month.tokens_remaining is None
    assert month.resets_at == datetime(2026, 12, 1, tzinfo=UTC)


@pytest.mark.parametrize(("at", "zone", "window", "start", "end"), [
    # Wednesday 2026-11-25 23:30 UTC is Thursday morning in Tokyo; its week began Monday the 23rd
    (datetime(2026, 11, 25, 23, 30, tzinfo=UTC), "Asia/Tokyo", "day", datetime(2026, 11, 25, 15, tzinfo=UTC),
     datetime(2026, 11, 26, 15, tzinfo=UTC)),
    (datetime(2026, 11, 25, 23, 30, tzinfo=UTC), "Asia/Tokyo", "week", datetime(2026, 11, 22, 15, tzinfo=UTC),
     datetime(2026, 11, 29, 15, tzinfo=UTC)),
    # New York's 2026-11-01 lasts 25 hours (the clocks go back at 02:00)
    (datetime(2026, 11, 1, 12, tzinfo=UTC), "America/New_York", "day", datetime(2026, 11, 1, 4, tzinfo=UTC),
     datetime(2026, 11, 2, 5, tzinfo=UTC)),
])
def test_days_and_weeks_in_the_tenants_zone(at, zone, window, start, end):
    assert period_start(at, zone, window) == start
    assert next_period_start(start, zone, window) == end


@pytest.mark.parametrize(("payload", "tokens"), [
    # each string counts its bytes and its 2 quotes; each key and list item 4 more (template)
    # "input" 5 + 2, 4, "hello" 5 + 2 = 18; model, metadata and the cap are not read
    ({"model": "gpt-4o", "input": "hello", "metadata": {"a": "b" * 500}, "max_output_tokens": 5}, 18),
    # a message: "input" 7 + 4, the list item 4, "role" 6 + 4 + "user" 6, "content" 9 + 4 + "hé" 5 (3 bytes)
    ({"input": [{"role": "user", "content": "hé"}]}, 7 + 4 + 4 + 6 + 4 + 6 + 9 + 4 + 5),
    # an inline image's data is not counted (the image allowance covers it), its other fields are
    ({"input": [{"type": "input_image", "image_url": "data:image/png;base64," + "A" * 10_000}]},
     7 + 4 + 4 + (6 + 4 + 13) + (11 + 4 + 0)),
    # a tool's schema is read: every key and value counts
    ({"tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}]},
     7 + 4 + 4 + (6 + 4 + 10) + (6 + 4 + 3) + (12 + 4 + 6 + 4 + 8)),
    # JSON escapes: a newline is one byte more (`\n`), a control character five (`\u0007`)
    ({"input": "a\nb\x07"}, 7 + 4 + (4 + 2 + 1 + 5)),
])
def test_content_tokens_hand_worked(payload, tokens):
    assert request_bounds(payload, "responses", NOW).content_tokens == tokens


@pytest.mark.parametrize(("payload", "tokens"), [
    # in o200k_base tokens, each of these words is one token: "input" 1 + 2, 4, "hello" 1 + 2,
    # and the frame 64 = 74; but the body's bytes (18, above) are fewer: the bound is 18
    ({"model": "gpt-5", "input": "hello"}, 18),
    # "instructions" 1 + 2 + 4 + "Be brief." 3 + 2; "input" 1 + 2 + 4, "x" * 4000 500 tokens + 2; frame 64
    ({"instructions": "Be brief.", "input": "x" * 4000}, (3 + 4 + 5) + (3 + 4 + 502) + 64),
    # "a\nb" is 3 tokens, its quotes 2, the newline's escape 2 more: 7 (its bytes: 6)
    ({"input": ["a\nb"] * 200, "text": "x" * 4000}, min(7 + 4 + 200 * (4 + 6) + 6 + 4 + 4002,
                                                          64 + 3 + 4 + 200 * (4 + 7) + 3 + 4 + 502)),
    # an opaque `encrypted_content` keeps its bytes: the model reads what it decrypts to
    # ("reasoning" and "encrypted_content" are 2 tokens each; "x" * 4000 is 500)
    ({"input": [{"type": "reasoning", "encrypted_content": "gAAAAABo" * 500}], "text": "x" * 4000},
     64 + (3 + 4) + 4 + (3 + 4 + 4) + (4 + 4 + 4000 + 2) + (3 + 4 + 502)),
])
def test_content_tokens_hand_worked_in_o200k_tokens(payload, tokens):
    assert request_bounds(payload, "responses", NOW, count_o200k).content_tokens == tokens


@settings(max_examples=300)
@given(at=st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1), timezones=st.just(timezone.utc)),
       zone=st.sampled_from(["UTC", "Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns", "Australia/Lord_Howe",
                             "Europe/Berlin", "Pacific/Chatham", "America/Sao_Paulo"]),
       window=st.sampled_from(["day", "week", "month"]))
def test_period_start_matches_the_uncached_rule(at, zone, window):
    """period_start answers from a cache per second: the same as working it out each time."""
    local = ZoneInfo(zone)
    day = at.astimezone(local).date()
    if window == "week":
        day -= timedelta(days=day.weekday())
    elif window == "month":
        day = day.replace(day=1)
    assert period_start(at, zone, window) == datetime(day.year, day.month, day.day, tzinfo=local).astimezone(timezone.utc)
