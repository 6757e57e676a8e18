"""The simulator's independent list prices (proxy/simulator/list_prices.py), checked against sums
worked out by hand from the vendors' published prices (the arithmetic is in each case's comment)."""

from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from proxy.simulator import list_prices
from proxy.simulator.list_prices import UnpublishedPrice, list_cost

UTC = timezone.utc
PACIFIC = ZoneInfo("America/Los_Angeles")


def call(model, at, *, input=0, cached=0, writes=0, output=0, reasoning=0, tier=None, tools=None,
         storage=0, regional=False):
    return list_cost(model, at, input_tokens=input, cached_tokens=cached, cache_write_tokens=writes,
                     output_tokens=output, reasoning_tokens=reasoning, service_tier=tier, tools=tools or {},
                     cache_storage_token_hours=storage, regional=regional)


CASES = [
    # (id, model, at, usage, expected USD)

    # gpt-5.5 long context: 300,000 > 272K, so the whole request bills 2x input, 1.5x output:
    # 300,000 x $10/M = $3.00; 1,000 x $45/M = $0.045 -> $3.045
    ("gpt-5.5 long context", "gpt-5.5", datetime(2026, 11, 1, tzinfo=UTC),
     dict(input=300_000, output=1_000), "3.045"),
    # exactly 272,000 is short context: 272,000 x $5/M = $1.36
    ("gpt-5.5 at 272K", "gpt-5.5", datetime(2026, 11, 1, tzinfo=UTC), dict(input=272_000), "1.36"),
    # long context with cached input (cached is input, 2x): 250,000 x $10/M = $2.50; 50,000 x $1/M = $0.05;
    # 2,000 x $45/M = $0.09 -> $2.64
    ("gpt-5.5 long context, cached", "gpt-5.5", datetime(2026, 11, 1, tzinfo=UTC),
     dict(input=300_000, cached=50_000, output=2_000), "2.64"),
    # gpt-5.5 regional (+10%): 100,000 x $5/M = $0.50 x 1.10 = $0.55
    ("gpt-5.5 regional", "gpt-5.5", datetime(2026, 11, 1, tzinfo=UTC), dict(input=100_000, regional=True), "0.55"),
    # gpt-5.5 priority (explicit table): 8,000 x $12.50/M = $0.10; 2,000 x $1.25/M = $0.0025; 1,000 x $75/M = $0.075
    # -> $0.1775
    ("gpt-5.5 priority", "gpt-5.5", datetime(2026, 11, 1, tzinfo=UTC),
     dict(input=10_000, cached=2_000, output=1_000, tier="priority"), "0.1775"),

    # priority gpt-5.6-sol (Fast mode table $10 / $1 / $60): 8,000 x $10/M = $0.08; 2,000 x $1/M = $0.002;
    # 1,000 x $60/M = $0.06 (400 of them reasoning, same rate) -> $0.142
    ("gpt-5.6-sol priority", "gpt-5.6-sol", datetime(2026, 9, 15, tzinfo=UTC),
     dict(input=10_000, cached=2_000, output=1_000, reasoning=400, tier="priority"), "0.142"),
    # "fast" is the same tier
    ("gpt-5.6-sol fast", "gpt-5.6-sol", datetime(2026, 9, 15, tzinfo=UTC),
     dict(input=10_000, cached=2_000, output=1_000, tier="fast"), "0.142"),
    # gpt-5.6-sol before the 2026-08-21 cut: 100,000 x $5/M + 10,000 x $30/M = $0.50 + $0.30 = $0.80
    ("gpt-5.6-sol before the cut", "gpt-5.6-sol", datetime(2026, 8, 20, 23, tzinfo=UTC),
     dict(input=100_000, output=10_000), "0.80"),
    # ... and after it: 100,000 x $4/M + 10,000 x $20/M = $0.40 + $0.20 = $0.60
    ("gpt-5.6-sol after the cut", "gpt-5.6-sol", datetime(2026, 8, 21, tzinfo=UTC),
     dict(input=100_000, output=10_000), "0.60"),
    # gpt-5.6-sol long context after the cut: 300,000 x $8/M = $2.40; 1,000 x $30/M = $0.03 -> $2.43
    ("gpt-5.6-sol long context", "gpt-5.6-sol", datetime(2026, 10, 1, tzinfo=UTC),
     dict(input=300_000, output=1_000), "2.43"),
    # cache writes at 1.25x input: 10,000 x $5/M (promo $4 x 1.25) = $0.05; 90,000 x $4/M = $0.36 -> $0.41
    ("gpt-5.6-sol cache write", "gpt-5.6-sol", datetime(2026, 10, 1, tzinfo=UTC),
     dict(input=100_000, writes=10_000), "0.41"),
    # gpt-5.6-terra before/after the 2026-07-30 cut: 100,000 in at $2.50/M = $0.25, then $2.00/M = $0.20
    ("gpt-5.6-terra launch", "gpt-5.6-terra", datetime(2026, 7, 20, tzinfo=UTC), dict(input=100_000), "0.25"),
    ("gpt-5.6-terra cut", "gpt-5.6-terra", datetime(2026, 8, 1, tzinfo=UTC), dict(input=100_000), "0.20"),

    # gpt-6.2-sol: 70,000 uncached x $2/M = $0.14; 20,000 cached x $0.10/M = $0.002; 10,000 writes x $2.50/M
    # = $0.025; 5,000 out x $10/M = $0.05 -> $0.217
    ("gpt-6.2-sol", "gpt-6.2-sol", datetime(2026, 11, 20, tzinfo=UTC),
     dict(input=100_000, cached=20_000, writes=10_000, output=5_000, reasoning=3_000), "0.217"),
    # gpt-6.2-sol long context (input and cache 2x, output 1.5x): 250,000 x $4/M = $1.00; 40,000 x $0.20/M
    # = $0.008; 10,000 x $5/M = $0.05; 1,000 x $15/M = $0.015 -> $1.073
    ("gpt-6.2-sol long context", "gpt-6.2-sol", datetime(2026, 11, 20, tzinfo=UTC),
     dict(input=300_000, cached=40_000, writes=10_000, output=1_000), "1.073"),
    # gpt-6.2-sol fast (2x same context length): $0.217 x 2 = $0.434
    ("gpt-6.2-sol fast", "gpt-6.2-sol", datetime(2026, 11, 20, tzinfo=UTC),
     dict(input=100_000, cached=20_000, writes=10_000, output=5_000, tier="fast"), "0.434"),
    # gpt-6.2-sol batch (50%): $0.217 / 2 = $0.1085
    ("gpt-6.2-sol batch", "gpt-6.2-sol", datetime(2026, 11, 20, tzinfo=UTC),
     dict(input=100_000, cached=20_000, writes=10_000, output=5_000, tier="batch"), "0.1085"),
    # ultrafast 3x through 2027-02-28 (Pacific): $0.217 x 3 = $0.651 (23:59 Pacific on Feb 28 is still 3x)
    ("gpt-6.2-sol ultrafast 3x", "gpt-6.2-sol", datetime(2027, 2, 28, 23, 59, tzinfo=PACIFIC),
     dict(input=100_000, cached=20_000, writes=10_000, output=5_000, tier="ultrafast"), "0.651"),
    # ... and 6x from 2027-03-01 00:00 Pacific (08:00 UTC): $0.217 x 6 = $1.302
    ("gpt-6.2-sol ultrafast 6x", "gpt-6.2-sol", datetime(2027, 3, 1, 8, 0, tzinfo=UTC),
     dict(input=100_000, cached=20_000, writes=10_000, output=5_000, tier="ultrafast"), "1.302"),

    # gpt-6-sol batch: (100,000 x $2/M + 100,000 x $10/M) x 0.5 = ($0.20 + $1.00) x 0.5 = $0.60
    ("gpt-6-sol batch", "gpt-6-sol", datetime(2026, 10, 1, tzinfo=UTC),
     dict(input=100_000, output=100_000, tier="batch"), "0.60"),
    # gpt-6.1-sol ultrafast 6x: 1,000 x $12/M + 1,000 x $60/M = $0.012 + $0.06 = $0.072
    ("gpt-6.1-sol ultrafast", "gpt-6.1-sol", datetime(2026, 11, 1, tzinfo=UTC),
     dict(input=1_000, output=1_000, tier="ultrafast"), "0.072"),
    # gpt-6.1-sol regional (+10%): 100,000 x $2/M = $0.20 x 1.1 = $0.22
    ("gpt-6.1-sol regional", "gpt-6.1-sol", datetime(2026, 11, 1, tzinfo=UTC),
     dict(input=100_000, regional=True), "0.22"),

    # gpt-image-1, high, 1024x1024: $0.167 per image (no tokens)
    ("gpt-image-1 high 1024x1024", "gpt-4.1", datetime(2026, 11, 1, tzinfo=UTC),
     dict(tools={"image.gpt-image-1.high.1024x1024": 1}), "0.167"),
    # two gpt-image-1-mini medium 1536x1024 at $0.015 each = $0.030
    ("gpt-image-1-mini medium 1536x1024 x2", "gpt-5.4", datetime(2026, 11, 1, tzinfo=UTC),
     dict(tools={"image.gpt-image-1-mini.medium.1536x1024": 2}), "0.030"),
    # one 4 GB container (session) on gpt-5.4: $0.12
    ("4g container", "gpt-5.4", datetime(2026, 11, 1, tzinfo=UTC), dict(tools={"container.4g": 1}), "0.12"),
    # 3 x 20-minute 64 GB sessions: 3 x $1.92 = $5.76
    ("64g container sessions", "gpt-5.4", datetime(2026, 11, 1, tzinfo=UTC), dict(tools={"container.64g": 3}), "5.76"),
    # web_search_preview on gpt-4o (non-reasoning, $25/1k): 1,000 x $2.50/M = $0.0025; 100 x $10/M = $0.001;
    # 1 call $0.025 -> $0.0285
    ("gpt-4o web_search_preview", "gpt-4o", datetime(2026, 11, 1, tzinfo=UTC),
     dict(input=1_000, output=100, tools={"web_search_preview": 1}), "0.0285"),
    # web_search on gpt-4o ($10/1k): $0.0025 + $0.001 + $0.01 -> $0.0135
    ("gpt-4o web_search", "gpt-4o", datetime(2026, 11, 1, tzinfo=UTC),
     dict(input=1_000, output=100, tools={"web_search": 1}), "0.0135"),
    # web_search_preview on o4-mini (reasoning, $10/1k): 1,000 x $1.10/M = $0.0011 + $0.01 -> $0.0111
    ("o4-mini web_search_preview", "o4-mini", datetime(2026, 11, 1, tzinfo=UTC),
     dict(input=1_000, tools={"web_search_preview": 1}), "0.0111"),
    # 4 file_search calls at $2.50/1k = $0.01
    ("file_search", "gpt-5.4", datetime(2026, 11, 1, tzinfo=UTC), dict(tools={"file_search": 4}), "0.01"),
    # gpt-5.4 flex long context: 300,000 x $2.50/M ($2.50 x 2 x 0.5) = $0.75; 1,000 x $11.25/M = $0.01125
    # -> $0.76125
    ("gpt-5.4 flex long context", "gpt-5.4", datetime(2026, 11, 1, tzinfo=UTC),
     dict(input=300_000, output=1_000, tier="flex"), "0.76125"),

    # seed-1-6 above 128K ((128K, 256K] tier): 150,000 uncached x $0.5/M = $0.075; 50,000 cache hits x $0.05/M
    # = $0.0025; 2,000 out x $4/M = $0.008; 100,000 token-hours storage x $0.0083/M = $0.00083 -> $0.08633
    ("seed-1-6 above 128K", "seed-1-6-250915", datetime(2026, 11, 1, tzinfo=UTC),
     dict(input=200_000, cached=50_000, output=2_000, storage=100_000), "0.08633"),
    # exactly 128,000 is the [0, 128K] tier: 128,000 x $0.25/M = $0.032; 1,000 x $2/M = $0.002 -> $0.034
    ("seed-1-6 at 128K", "seed-1-6", datetime(2026, 11, 1, tzinfo=UTC), dict(input=128_000, output=1_000), "0.034"),
    # seed-1-6-flash, short: 10,000 x $0.075/M = $0.00075; 1,000 x $0.30/M = $0.0003 -> $0.00105
    ("seed-1-6-flash", "seed-1-6-flash-250715", datetime(2026, 11, 1, tzinfo=UTC),
     dict(input=10_000, output=1_000), "0.00105"),
    # MCP tool calls on ModelArk are free: only the tokens, 1,000 x $0.25/M = $0.00025
    ("seed-1-6 mcp", "seed-1-6", datetime(2026, 11, 1, tzinfo=UTC), dict(input=1_000, tools={"mcp": 3}), "0.00025"),

    # o3 after the 2025-06-10 cut: 1M x $2/M + 1M x $8/M = $10
    ("o3", "o3", datetime(2026, 11, 1, tzinfo=UTC), dict(input=1_000_000, output=1_000_000), "10"),
    # dated snapshot resolves to its model: gpt-5.4-2026-03-05, 100,000 x $2.50/M = $0.25
    ("dated snapshot", "gpt-5.4-2026-03-05", datetime(2026, 11, 1, tzinfo=UTC), dict(input=100_000), "0.25"),
    # a naive datetime is read as UTC: the cut is in force, 100,000 x $4/M = $0.40
    ("naive datetime", "gpt-5.6-sol", datetime(2026, 8, 21), dict(input=100_000), "0.40"),
    # o3 has no long-context rule; 1M x $2/M = $2 (1M is above any 272K threshold)
    ("o3 1M input", "o3", datetime(2026, 11, 1, tzinfo=UTC), dict(input=1_000_000), "2"),
]


@pytest.mark.parametrize(("model", "at", "usage", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hand_worked_cases(model, at, usage, expected):
    assert call(model, at, **usage) == Decimal(expected)


def test_results_are_decimals():
    cost = call("gpt-6.2-sol", datetime(2026, 11, 20, tzinfo=UTC), input=1, output=1)
    assert isinstance(cost, Decimal)
    assert cost == Decimal("0.000012")  # 1 x $2/M + 1 x $10/M


def test_a_model_not_in_the_table_is_none():
    assert call("gpt-3.5-turbo", datetime(2026, 11, 1, tzinfo=UTC), input=10) is None
    assert call("gpt-4o-2024-05-13", datetime(2026, 11, 1, tzinfo=UTC), input=10) is None  # priced apart


@pytest.mark.parametrize(("model", "usage"), [
    ("gpt-5.5", dict(input=300_000, tier="priority")),  # the Priority table excludes long context
    ("gpt-5.5", dict(input=1_000, tier="flex")),  # Flex exists but its GPT-5.5 rate was not published
    ("gpt-6.2-sol", dict(input=1_000, tier="flex")),  # the GPT-6.2 Sol page names Batch, not Flex
    ("gpt-5.6-sol", dict(input=1_000, writes=100, tier="priority")),  # no Fast-mode cache-write price
    ("gpt-6.2-astra", dict(input=1_000, writes=100)),  # no cache-write price found
    ("gpt-6.2-astra", dict(input=300_000)),  # no long-context price found
    ("gpt-4o", dict(input=1_000, tools={"image.gpt-image-2.high.1024x1024": 1})),  # token-priced only
    ("gpt-4o", dict(input=1_000, tools={"container.8g": 1})),
    ("seed-1-6", dict(input=1_000, tools={"web_search": 1})),  # no ModelArk web search fee found
    ("seed-1-6", dict(input=300_000)),  # beyond the (128K, 256K] tier
    ("seed-1-6", dict(input=1_000, tier="flex")),
])
def test_unpublished_cases_raise(model, usage):
    with pytest.raises(UnpublishedPrice):
        call(model, datetime(2026, 11, 20, tzinfo=UTC), **usage)


def test_priority_before_fast_mode_pricing_is_unpublished_for_gpt_5_6():
    with pytest.raises(UnpublishedPrice):
        call("gpt-5.6-sol", datetime(2026, 7, 20, tzinfo=UTC), input=1_000, tier="priority")


@pytest.mark.parametrize("usage", [dict(input=10, cached=11), dict(input=10, cached=5, writes=6),
                                   dict(output=1, reasoning=2)])
def test_inconsistent_usage_is_rejected(usage):
    with pytest.raises(ValueError):
        call("gpt-5.5", datetime(2026, 11, 1, tzinfo=UTC), **usage)


def test_every_entry_names_its_sources_and_prices_in_decimals():
    for model in list_prices.MODELS.values():
        assert model.sources, model.name
        for _start, r in model.prices + tuple((None, t.rates) for t in model.prompt_tiers):
            for value in (r.input, r.cached, r.output):
                assert isinstance(value, Decimal)


def test_the_module_imports_nothing_from_billing():
    source = Path(list_prices.__file__).read_text(encoding="utf-8")
    assert "billing" not in [line.split()[1].split(".")[0] for line in source.splitlines()
                             if line.startswith(("import ", "from "))]
