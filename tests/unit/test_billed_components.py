"""Service tiers, built-in tool calls, cache storage and cache writes: hand-worked cases,
what a reply bills, and properties against an exact reference."""

from datetime import datetime, timezone
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, strategies as st

from billing.catalog import CatalogError, load_catalog, parse_catalog, shipped_catalog_path
from billing.pricebook import PriceBook
from billing.pricing import PriceVersion, Tier, price_usage, unpriced
from billing.reply import cache_storage, credited_hours, reply_usage
from billing.tool_units import ToolUse, units_in_output
from billing.usage import Usage, parse_usage

D = Decimal
NOW = datetime(2026, 11, 25, tzinfo=timezone.utc)

GPT5 = PriceVersion(
    "gpt-5", NOW, (Tier(input=D("1.25"), cached=D("0.125"), output=D("10.00")),),
    service_tiers={"flex": (Tier(input=D("0.625"), cached=D("0.0625"), output=D("5.00")),),
                   "priority": (Tier(input=D("2.50"), cached=D("0.25"), output=D("20.00")),)},
    tools={"web_search": D("10.00"), "file_search": D("2.50"), "code_interpreter": D("30.00")})
SEED = PriceVersion("seed-1-6", NOW, (Tier(input=D("0.25"), cached=D("0.05"), output=D("2.00"),
                                           up_to_input_tokens=128_000),
                                      Tier(input=D("0.50"), cached=D("0.05"), output=D("4.00"))),
                    tools={"web_search": D("5.00")}, cache_storage=D("0.0083"))
TERRA = PriceVersion("gpt-5.6-terra", NOW, (Tier(input=D("2.50"), cached=D("0.25"), cache_write=D("3.125"),
                                                 output=D("15.00")),))


def used(tier=None, tools=(), storage=(0, 0), **tokens) -> Usage:
    return Usage(service_tier=tier, tool_calls=tuple(tools), cache_storage_tokens=storage[0],
                 cache_storage_hours=storage[1], **tokens)


CALL = dict(input_tokens=1000, cached_tokens=200, output_tokens=500, reasoning_tokens=100)
# (version, usage, tool cost, storage cost, total) -- worked out by hand in the comments.
CASES = [
    # standard: 800 x 1.25 + 200 x 0.125 + 400 x 10 + 100 x 10, / 1M = 0.001 + 0.000025 + 0.004 + 0.001
    (GPT5, used(**CALL), D(0), D(0), D("0.006025")),
    # "default" and "auto" are the standard prices too
    (GPT5, used("default", **CALL), D(0), D(0), D("0.006025")),
    # flex: 800 x 0.625 + 200 x 0.0625 + 400 x 5 + 100 x 5, / 1M = 0.0005 + 0.0000125 + 0.002 + 0.0005;
    # two web searches at 10 USD per 1,000 calls: 0.02
    (GPT5, used("flex", [("web_search", 2)], **CALL), D("0.02"), D(0), D("0.0230125")),
    # priority: 800 x 2.5 + 200 x 0.25 + 400 x 20 + 100 x 20, / 1M = 0.002 + 0.00005 + 0.008 + 0.002;
    # one file search (0.0025) and one container (0.03)
    (GPT5, used("priority", [("code_interpreter", 1), ("file_search", 1)], **CALL), D("0.0325"), D(0),
     D("0.04455")),
    # a tier with no price of its own ("turbo") is priced at the standard prices (and flagged)
    (GPT5, used("turbo", **CALL), D(0), D(0), D("0.006025")),
    # Scale Tier calls are metered at the standard prices
    (GPT5, used("scale", **CALL), D(0), D(0), D("0.006025")),
    # `fast` is priority processing: the priority prices, as above (0.01205 of tokens)
    (GPT5, used("fast", **CALL), D(0), D(0), D("0.01205")),
    # a 4g container at 120 per 1,000 (0.12) and a 1g one at the older code_interpreter price (0.03)
    (GPT5, used(None, [("container.1g", 1)], **CALL), D("0.03"), D(0), D("0.036025")),
    (GPT5.__class__(GPT5.model, NOW, GPT5.tiers, tools={"container.4g": D("120.00")}),
     used(None, [("container.4g", 1)], **CALL), D("0.12"), D(0), D("0.126025")),
    # seed tier 1: 1000 x 0.25 + 200 x 2, / 1M = 0.00025 + 0.0004 = 0.00065; storage 1200 tokens x 72 h x 0.0083 / 1M
    # = 86400 x 0.0083 / 1M = 0.00071712; three web searches at 5 per 1,000 = 0.015
    (SEED, used(None, [("web_search", 3)], (1200, 72), input_tokens=1000, output_tokens=200),
     D("0.015"), D("0.00071712"), D("0.01636712")),
    # a credit for 70 hours not stored: 1200 x -70 x 0.0083 / 1M = -0.0006972
    (SEED, used(None, (), (1200, -70)), D(0), D("-0.0006972"), D("-0.0006972")),
    # cache writes at 1.25x input: 600 x 2.5 + 400 x 3.125 + 100 x 15, / 1M = 0.0015 + 0.00125 + 0.0015
    (TERRA, used(input_tokens=1000, cache_write_tokens=400, output_tokens=100), D(0), D(0), D("0.00425")),
]


@pytest.mark.parametrize(("version", "usage", "tools", "storage", "total"), CASES)
def test_components_hand_worked(version, usage, tools, storage, total):
    cost = price_usage(usage, version)
    assert cost.tool_calls == tools
    assert cost.cache_storage == storage
    assert cost.total == total


def test_what_a_price_cannot_price_is_flagged():
    usage = used("turbo", [("web_search", 1), ("image_generation.gpt-image-1.high.1024x1024", 2)], (100, 1))
    assert unpriced(usage, GPT5) == ("tool_unpriced:image_generation.gpt-image-1.high.1024x1024",
                                     "service_tier_unpriced:turbo", "cache_storage_unpriced")
    assert unpriced(used("scale"), GPT5) == unpriced(used("fast"), GPT5) == ()
    assert unpriced(used("flex", [("web_search", 1)]), GPT5) == ()


def test_service_tier_tiers_are_checked():
    with pytest.raises(ValueError, match="service tier 'flex'"):
        PriceVersion("m", NOW, (Tier(D(1), D(1)),), service_tiers={"flex": ()})
    with pytest.raises(ValueError, match="standard prices"):
        PriceVersion("m", NOW, (Tier(D(1), D(1)),), service_tiers={"default": (Tier(D(1), D(1)),)})


# --- what a reply bills ---------------------------------------------------------------------

USAGE = {"input_tokens": 300, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
         "output_tokens": 50, "output_tokens_details": {"reasoning_tokens": 20}, "total_tokens": 350}


def test_openai_tool_items_and_service_tier():
    output = [{"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search"}},
              {"type": "reasoning", "id": "rs_1", "summary": []},
              {"type": "web_search_call", "id": "ws_2", "status": "completed", "action": {"type": "search"}},
              {"type": "file_search_call", "id": "fs_1", "queries": ["q"], "status": "completed"},
              {"type": "code_interpreter_call", "id": "ci_1", "container_id": "cntr_a", "status": "completed"},
              {"type": "code_interpreter_call", "id": "ci_2", "container_id": "cntr_a", "status": "completed"},
              {"type": "code_interpreter_call", "id": "ci_3", "container_id": "cntr_b", "status": "completed"},
              {"type": "message", "id": "msg_1", "content": []}]
    usage = reply_usage({"status": "completed", "service_tier": "priority", "output": output, "usage": USAGE})
    assert usage.tool_calls == (("container.1g", 2), ("file_search", 1), ("web_search", 2))
    assert usage.service_tier == "priority"
    assert usage.cache_storage_token_hours == 0


def test_byteplus_tool_usage_is_the_count_when_present():
    block = {**USAGE, "tool_usage": {"web_search": 3, "mcp": 0, "knowledge_search": None}}
    output = [{"type": "web_search_call", "id": "ws_1", "status": "completed"}]
    assert reply_usage({"output": output, "usage": block}).tool_calls == (("web_search", 3),)
    assert parse_usage({**USAGE, "tool_usage": {"web_search": -1}}).flags == ("tool_usage_negative",)
    assert units_in_output("not a list", None) == ToolUse()


def byteplus(caching, **fields):
    return {"id": "resp_1", "status": "completed", "created_at": 1_000_000, "caching": caching, "usage": USAGE,
            **fields}


@pytest.mark.parametrize(("reply", "expected"), [
    # session cache: input 300 + visible output 30, for the default 3 days = 72 hours
    (byteplus({"type": "enabled"}), (330, 72)),
    # an explicit expire_at one second past the hour: two started hours
    (byteplus({"type": "enabled"}, expire_at=1_000_000 + 3601), (330, 2)),
    # a prefix cache keeps the input only, and none below 256 tokens
    (byteplus({"type": "enabled", "prefix": True}), (300, 72)),
    (byteplus({"type": "enabled", "prefix": True}, usage={**USAGE, "input_tokens": 255}), (0, 0)),
    # nothing stored: caching off, store false, a failed reply
    (byteplus({"type": "disabled"}), (0, 0)),
    (byteplus(None), (0, 0)),
    (byteplus({"type": "enabled"}, store=False), (0, 0)),
    (byteplus({"type": "enabled"}, status="failed"), (0, 0)),
])
def test_byteplus_cache_storage(reply, expected):
    usage = parse_usage(reply["usage"])
    assert cache_storage(reply, usage) == expected
    assert reply_usage(reply).cache_storage_token_hours == expected[0] * expected[1]


def test_catalog_reads_service_tiers_tools_and_storage():
    catalog = parse_catalog("""
[models."gpt-5"]
input = "1.25"
output = "10.00"
tools = { web_search = "10.00" }
[models."gpt-5".service_tiers.flex]
input = "0.625"
output = "5.00"
[[models."gpt-5".service_tiers.long.tiers]]
up_to_input_tokens = 10
input = "1"
output = "1"
[[models."gpt-5".service_tiers.long.tiers]]
input = "2"
output = "2"
[models.seed]
input = "0.25"
output = "2"
cache_storage = "0.0083"
""", "test")
    gpt5, seed = catalog.versions
    assert gpt5.tools == {"web_search": D("10.00")}
    assert gpt5.tier_for(1, "flex").input == D("0.625")
    assert gpt5.tier_for(11, "long").input == D("2")
    assert seed.cache_storage == D("0.0083")
    for bad in ('tools = { "Web Search" = "1" }', 'tools = { web_search = -1 }',
                'service_tiers = { flex = { input = "1", output = "1", bogus = 1 } }'):
        with pytest.raises(CatalogError):
            parse_catalog(f'[models.m]\ninput = "1"\noutput = "1"\n{bad}\n', "test")


# --- properties -----------------------------------------------------------------------------

prices = st.decimals(min_value=0, max_value=1000, places=6, allow_nan=False, allow_infinity=False)
counts = st.integers(min_value=0, max_value=1_000_000)
tool_names = st.sampled_from(["web_search", "file_search", "code_interpreter", "mcp"])


@given(st.dictionaries(tool_names, prices), st.dictionaries(tool_names, counts), st.none() | prices,
       counts, st.integers(-200, 200))
def test_tool_and_storage_costs_equal_exact_reference(tool_prices, calls, storage_price, tokens, hours):
    version = PriceVersion("m", NOW, (Tier(D(0), D(0)),), tools=tool_prices, cache_storage=storage_price)
    usage = used(tools=sorted(calls.items()), storage=(tokens, hours))
    f = lambda d: Fraction(str(d))  # noqa: E731
    tools = sum((count * f(tool_prices[name]) / 1000 for name, count in calls.items() if name in tool_prices),
                Fraction(0))
    storage = tokens * hours * f(storage_price) / 1_000_000 if storage_price is not None else Fraction(0)
    cost = price_usage(usage, version)
    assert Fraction(str(cost.tool_calls)) == tools
    assert Fraction(str(cost.cache_storage)) == storage
    assert Fraction(str(cost.total)) == tools + storage


@given(st.sampled_from([None, "auto", "default", "flex", "priority", "scale"]), counts, counts)
def test_the_reported_service_tier_picks_the_prices(tier, input_tokens, output_tokens):
    usage = used(tier, input_tokens=input_tokens, output_tokens=output_tokens)
    expected = {"flex": D("0.5"), "priority": D(2)}.get(tier, D(1))
    standard = price_usage(used(None, input_tokens=input_tokens, output_tokens=output_tokens), GPT5).total
    assert price_usage(usage, GPT5).total == standard * expected


# --- the shipped catalog ---------------------------------------------------------------------

CATALOG = load_catalog(shipped_catalog_path())
SHIPPED = PriceBook(CATALOG.versions, CATALOG.aliases)


def shipped(name: str) -> PriceVersion:
    return SHIPPED.resolve(name, NOW).version


@pytest.mark.parametrize(("model", "usage", "total"), [
    # gpt-5 flex: 1000 x 0.625 + 100 x 5.00, / 1M = 0.000625 + 0.0005
    ("gpt-5-2025-08-07", used("flex", input_tokens=1000, output_tokens=100), D("0.001125")),
    # gpt-5 priority: 1000 x 2.50 + 100 x 20.00, / 1M = 0.0025 + 0.002; one web search 0.01
    ("gpt-5", used("priority", [("web_search", 1)], input_tokens=1000, output_tokens=100), D("0.0145")),
    # the Codex models: gpt-5.1-codex-max at 1.25 / 10.00: 0.00125 + 0.001
    ("gpt-5.1-codex-max", used(input_tokens=1000, output_tokens=100), D("0.00225")),
    # gpt-5.6-terra since its cut of 2026-07-30, cache writes at 2.50 (1.25 x 2.00): 500 x 2.00 + 500 x 2.50, / 1M
    ("gpt-5.6-terra", used(input_tokens=1000, cache_write_tokens=500), D("0.00225")),
    # gpt-5.5 above 272K input tokens, the whole request at 10.00 / 45.00: 300,000 x 10 + 1,000 x 45, / 1M
    ("gpt-5.5", used(input_tokens=300_000, output_tokens=1_000), D("3.045")),
    # ...and at 272,000 exactly, still the short-context prices: 272,000 x 5 + 1,000 x 30, / 1M
    ("gpt-5.5", used(input_tokens=272_000, output_tokens=1_000), D("1.39")),
    # long context, cached: 200,000 uncached x 10 + 100,000 cached x 1.00 + 1,000 x 45, / 1M = 2 + 0.1 + 0.045
    ("gpt-5.5", used(input_tokens=300_000, cached_tokens=100_000, output_tokens=1_000), D("2.145")),
    # gpt-5.6-sol priority (the Fast mode page: 10.00 / 1.00 / 60.00): 1,000 x 10 + 500 x 60, / 1M
    ("gpt-5.6-sol", used("priority", input_tokens=1_000, output_tokens=500), D("0.04")),
    # `fast` is billed as priority
    ("gpt-5.6-sol", used("fast", input_tokens=1_000, output_tokens=500), D("0.04")),
    # gpt-6.2-sol, the Codex CLI's default: 10,000 x 2.00 + 2,000 cached x 0.10 + 800 x 10.00, / 1M
    # = 0.016 + 0.0002 + 0.008 (8,000 of the 10,000 uncached)
    ("gpt-6.2-sol", used(input_tokens=10_000, cached_tokens=2_000, output_tokens=800), D("0.0242")),
    # gpt-6.2-sol ultrafast, 3x until March 2027: 1,000 x 6 + 100 x 30, / 1M
    ("gpt-6.2-sol", used("ultrafast", input_tokens=1_000, output_tokens=100), D("0.009")),
    # web_search_preview on gpt-4o is 25.00 per 1,000 calls: 0.025, plus 1,000 x 2.50 / 1M
    ("gpt-4o", used(None, [("web_search_preview", 1)], input_tokens=1_000), D("0.0275")),
    # web_search on gpt-4o is 10.00: 0.01 + 0.0025
    ("gpt-4o", used(None, [("web_search", 1)], input_tokens=1_000), D("0.0125")),
    # a 4g container (0.12) and a high 1024x1024 gpt-image-1 image (0.167) on gpt-5.5, plus 1,000 x 5 / 1M
    ("gpt-5.5", used(None, [("container.4g", 1), ("image_generation.gpt-image-1.high.1024x1024", 1)],
                     input_tokens=1_000), D("0.292")),
    # a fine-tune of gpt-4o-mini: 1,000 x 0.30 + 1,000 x 1.20, / 1M
    ("ft:gpt-4o-mini-2024-07-18:acme::abc123", used(input_tokens=1_000, output_tokens=1_000), D("0.0015")),
    # seed-1-6 storage: 2000 tokens for 72 h at 0.0083 = 144000 x 0.0083 / 1M = 0.0011952, plus
    # 2000 x 0.25 / 1M = 0.0005 of input
    ("seed-1-6-250915", used(None, (), (2000, 72), input_tokens=2000), D("0.0016952")),
    # embeddings: 1000 x 0.02 / 1M
    ("text-embedding-3-small", used(input_tokens=1000), D("0.00002")),
])
def test_shipped_prices_of_the_new_components(model, usage, total):
    assert price_usage(usage, shipped(model)).total == total


@pytest.mark.parametrize(("deleted_after", "credited"), [
    (0, 71),  # deleted at once: the first started hour stays billed
    (3599, 71), (3600, 71), (3601, 70),  # the hour under way stays billed
    (71 * 3600 + 1, 0), (72 * 3600, 0), (80 * 3600, 0),  # nothing left to credit
])
def test_storage_credit_of_a_deletion(deleted_after, credited):
    created = 1_000_000
    assert credited_hours(created, created + 72 * 3600, created + deleted_after) == credited


def test_background_polls_back_off_to_the_cap():
    from proxy.gateway.background import poll_delay
    assert [poll_delay(n, 30) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    assert poll_delay(1000, 0.2) == 0.2


def test_an_uplift_raises_the_token_prices_not_the_tool_fees():
    from billing.pricing import uplifted
    usage = used(None, [("web_search", 1)], input_tokens=1000, output_tokens=100)
    # tokens 1000 x 1.25 + 100 x 10, / 1M = 0.00225, x 1.1 = 0.002475; the search 0.01 as listed
    assert price_usage(usage, GPT5, D("0.10")).total == D("0.012475")
    assert uplifted(price_usage(usage, GPT5), D(0)) == price_usage(usage, GPT5)
