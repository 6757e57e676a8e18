"""The installed price source (genai-prices) read into price versions: every version bills
any usage exactly as the source's own engine does, at every date and service tier."""

from datetime import datetime, timedelta, timezone

import pytest
from genai_prices import Usage as SourceUsage
from genai_prices import calc_price
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.price_source import installed_source
from billing.pricing import price_usage
from billing.usage import Usage

SOURCE = installed_source()
EARLY = datetime(2020, 1, 1, 12, tzinfo=timezone.utc)


def _windows():
    """(model, a name the source resolves to it, version, a moment the version is in force)."""
    for model in SOURCE.models:
        name = model.model
        if name.startswith("ft:"):  # fine-tunes are matched by their prefix, not their id
            name = next(a for a in model.aliases if a.endswith("*")).replace("*", "07-18:org::abc")
        for version, following in zip(model.versions, (*model.versions[1:], None)):
            at = EARLY if version.effective_from.year == 1970 else version.effective_from + timedelta(hours=12)
            if following is None or at < following.effective_from:
                yield model.model, name, version, at


WINDOWS = list(_windows())


def test_the_source_is_read():
    names = {model.model for model in SOURCE.models}
    assert {"gpt-5.5", "gpt-5.6-sol", "gpt-4o", "gpt-6-sol"} <= names
    assert SOURCE.source.startswith("genai-prices ")
    gpt55 = next(m for m in SOURCE.models if m.model == "gpt-5.5")
    newest = gpt55.versions[-1]
    assert [t.up_to_input_tokens for t in newest.tiers] == [272_000, None]  # the long-context tier
    assert {"flex", "priority", "batch"} <= set(newest.service_tiers)
    assert "gpt-5.5-2026-04-23" in gpt55.aliases


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(WINDOWS), st.integers(0, 1_200_000), st.integers(0, 100), st.integers(0, 100),
       st.integers(0, 200_000), st.data())
def test_every_version_bills_as_the_source(window, input_tokens, cached_share, written_share, output_tokens, data):
    model, name, version, at = window
    tier_name = data.draw(st.sampled_from([None, *version.service_tiers]))
    tier = version.tier_for(input_tokens, tier_name)
    # Where the source has no cached or cache-write price, it bills those tokens as input;
    # the contract prices them at 10% and 100% of input. Those tokens are left at 0 there.
    cached = input_tokens * cached_share // 100 if tier.cached is not None else 0
    written = (input_tokens - cached) * written_share // 100 if tier.cache_write is not None else 0
    usage = Usage(input_tokens=input_tokens, cached_tokens=cached, cache_write_tokens=written,
                  output_tokens=output_tokens, service_tier=tier_name)
    context = None if tier_name is None else {"processing": "batch"} if tier_name == "batch" else {
        "service_tier": tier_name}
    theirs = calc_price(SourceUsage(input_tokens=input_tokens, cache_read_tokens=cached, cache_write_tokens=written,
                                    output_tokens=output_tokens), name, provider_id="openai",
                        genai_request_timestamp=at, price_context=context)
    assert price_usage(usage, version).total == theirs.total_price, (model, version.effective_from, tier_name)


def test_a_dated_price_change_is_a_version_from_its_date():
    sol = next(m for m in SOURCE.models if m.model == "gpt-5.6-sol")
    dates = [v.effective_from for v in sol.versions]
    assert dates == sorted(dates) and dates[0].year == 1970 and len(dates) > 1
    assert all(d.hour == 0 and d.tzinfo is not None for d in dates)


@pytest.mark.parametrize("name", ["gpt-realtime-whisper"])
def test_what_cannot_be_held_is_named(name):
    assert name in dict(SOURCE.skipped_models)
