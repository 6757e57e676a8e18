"""The upstreams' list prices, written down independently of the project's own catalog.

The simulated upstream bills with these so that end-to-end tests can catch a mistake in the
shipped catalog (`billing/catalog/prices.toml`) or in the `genai-prices` package: nothing here
is read from either, and this module imports nothing from `billing`.

Every number comes from a vendor page (or, where no vendor page could be found, a third-party
page, marked `THIRD_PARTY`), read on 2026-12-03. Rates are USD per 1M tokens as `Decimal`.
Rules are written the way the pages state them: a multiplier where the page gives a
multiplier ("Fast mode prices are 2x Standard"), explicit prices where the page lists prices
(the Priority / Fast mode price tables). Where a page publishes nothing for a case (a tier a
model's page does not mention, Priority above the long-context threshold, a cache write on a
model whose write price is unknown, ...) `list_cost` raises `UnpublishedPrice` rather than
guess.

Dated prices take effect at 00:00 UTC on their start date (the GPT-6.2 Sol Ultrafast change at
00:00 Pacific, as its page says); a call dated before a model's first listed price is billed at
that first price. The regional uplift multiplies the token charges, not the tool fees.

Token accounting follows the vendors' usage objects: cached and cache-write tokens are part of
`input_tokens`; reasoning tokens are part of `output_tokens` and bill at the output rate.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from decimal import Decimal
from types import MappingProxyType
from zoneinfo import ZoneInfo

D = Decimal
MILLION = D(1_000_000)
READ_ON = date(2026, 12, 3)  # the day every page below was read
PACIFIC = ZoneInfo("America/Los_Angeles")

VENDOR = "vendor"  # the vendor's own page
VENDOR_COPY = "vendor copy"  # a stored copy of the vendor's page (its .md export), same text
THIRD_PARTY = "third party"  # no vendor page found; a reseller, gateway or blog states it


class UnpublishedPrice(LookupError):
    """The vendor publishes no price for this case (a tier, a tool, a context length)."""


# --------------------------------------------------------------------------- the table's shape

@dataclass(frozen=True)
class Source:
    url: str
    kind: str = VENDOR
    read: date = READ_ON
    says: str = ""  # what the page says, where it matters


@dataclass(frozen=True)
class Rates:
    """USD per 1M tokens. `cache_write=None`: no write price published (a write cannot be priced)."""
    input: Decimal
    cached: Decimal
    output: Decimal
    cache_write: Decimal | None

    def scaled(self, input_x: Decimal, cached_x: Decimal, write_x: Decimal, output_x: Decimal) -> Rates:
        return Rates(self.input * input_x, self.cached * cached_x, self.output * output_x,
                     None if self.cache_write is None else self.cache_write * write_x)


def rates(input: str, cached: str | None, output: str, cache_write: str | None = None, *,
          writes_at_input: bool = False) -> Rates:
    """`cached=None`: no cached discount, cached tokens bill as input (GPT-5.5 Pro, embeddings).
    `writes_at_input`: models before GPT-5.6 charge nothing extra to write the cache, so written
    tokens bill as ordinary input (OpenAI's pages list no write price for them; Azure's prompt
    caching page: "Models before gpt-5.6 don't charge extra to write to the cache")."""
    write = D(input) if writes_at_input else (None if cache_write is None else D(cache_write))
    return Rates(D(input), D(input) if cached is None else D(cached), D(output), write)


@dataclass(frozen=True)
class LongContext:
    """Above `above` input tokens the whole request bills at these multiples of the short rates."""
    above: int
    input: Decimal
    cached: Decimal
    cache_write: Decimal
    output: Decimal
    says: str


@dataclass(frozen=True)
class Multiplier:
    """A tier priced as a multiple of Standard. `long_context`: the page says it applies at the
    long-context rates too ("for the same context length"); otherwise long requests are unpublished."""
    factor: Decimal
    long_context: bool = True


@dataclass(frozen=True)
class Explicit:
    """A tier with its own price table. The Priority / Fast mode tables "exclude long context"."""
    rates: Rates


TierRule = Multiplier | Explicit


@dataclass(frozen=True)
class PromptTier:
    """BytePlus ModelArk: rates by prompt length, `up_to` input tokens inclusive."""
    up_to: int
    rates: Rates


@dataclass(frozen=True)
class Model:
    name: str
    vendor: str  # "openai" | "byteplus"
    prices: tuple[tuple[date, Rates], ...] = ()  # dated Standard rates, oldest first
    prompt_tiers: tuple[PromptTier, ...] = ()  # BytePlus instead of `prices`
    long_context: LongContext | None = None
    long_context_unpublished_above: int | None = None  # a long-context rule exists but its rates are unknown
    tiers: Mapping[str, tuple[tuple[datetime, TierRule], ...]] = field(default_factory=dict)
    regional: Decimal | None = None  # multiplier on token charges at regional / data-residency endpoints
    reasoning: bool = True  # web_search_preview is priced by reasoning vs non-reasoning model
    cache_storage: Decimal | None = None  # USD per 1M token-hours (BytePlus)
    tool_fees: Mapping[str, Decimal] = field(default_factory=dict)  # vendor-specific per-call fees
    sources: tuple[Source, ...] = ()
    notes: str = ""


def utc(day: date) -> datetime:
    return datetime.combine(day, time(), timezone.utc)


ALWAYS = datetime.min.replace(tzinfo=timezone.utc)


def tier(*steps: tuple[datetime, TierRule]) -> tuple[tuple[datetime, TierRule], ...]:
    return tuple(steps)


def since(rule: TierRule, start: datetime = ALWAYS) -> tuple[tuple[datetime, TierRule], ...]:
    return ((start, rule),)


HALF, TWICE = Multiplier(D("0.5")), Multiplier(D(2))

# "For requests with more than 272K input tokens, input and cache rates double and output costs
# 1.5 times the short-context rate for the full request." (GPT-6.x pages)
GPT6_LONG = LongContext(272_000, D(2), D(2), D(2), D("1.5"),
                        "more than 272K input tokens: input and cache rates 2x, output 1.5x, for the full request")
# "Prompts with >272K input tokens are priced at 2x input and 1.5x output for the full request."
# (GPT-5.4, 5.5, 5.6 pages.) The page says "input"; cached and cache-write tokens are input tokens,
# and the pricing page's own long-context row for gpt-5.4 doubles the cached rate too ($0.25 -> $0.50).
GPT5_LONG = LongContext(272_000, D(2), D(2), D(2), D("1.5"),
                        "more than 272K input tokens: 2x input and 1.5x output for the full request")

# Data residency guide: models released on or after 2026-03-05 cost 10% more on data-residency
# endpoints; model pages say "Regional processing adds a 10% premium where available".
REGIONAL_10 = D("1.10")
NO_REGIONAL_UPLIFT = D(1)  # released before 2026-03-05: the guide's uplift does not apply

PRICING = "https://developers.openai.com/api/docs/pricing"
PRIORITY = Source("https://openai.com/api-priority-processing/", says="Priority prices, excluding long context")
FAST_MODE = Source("https://openai.com/es-419/api-fast-mode/",
                   says="Priority processing was renamed Fast mode on July 30, 2026; service_tier priority or fast; "
                        "prices exclude long context")
RESIDENCY = Source("https://developers.openai.com/api/docs/guides/data-residency",
                   says="models released on or after 2026-03-05 cost 10% more on data-residency endpoints")


def page(slug: str, kind: str = VENDOR, says: str = "") -> Source:
    return Source(f"https://developers.openai.com/api/docs/models/{slug}", kind, says=says)


def priority(r: Rates, start: datetime = ALWAYS) -> dict[str, tuple[tuple[datetime, TierRule], ...]]:
    """Explicit Priority prices; `service_tier: "fast"` is the same tier (reported as "priority")."""
    steps = since(Explicit(r), start)
    return {"priority": steps, "fast": steps}


# --------------------------------------------------------------------------- OpenAI models

OPENAI: tuple[Model, ...] = (
    # ---- GPT-6.2 (released 2026-11-17)
    Model(
        "gpt-6.2-sol", "openai",
        prices=((date(2026, 11, 17), rates("2.00", "0.10", "10.00", "2.50")),),
        long_context=GPT6_LONG,
        tiers={
            "batch": since(HALF),  # "Batch costs 50% of Standard rates."
            "priority": since(TWICE),  # "Fast mode costs twice the Standard rate for the same context length."
            "fast": since(TWICE),
            # "Ultrafast costs 3 times the Standard rate through February 28, 2027, and 6 times the Standard
            # rate starting March 1, 2027" (Pacific time, per the page's Chinese mirror).
            "ultrafast": tier((ALWAYS, Multiplier(D(3))), (datetime(2027, 3, 1, tzinfo=PACIFIC), Multiplier(D(6)))),
        },
        regional=REGIONAL_10,  # the page is silent; the data residency guide (released after 2026-03-05)
        sources=(page("gpt-6.2-sol"), Source("https://developers.openai.com/api/docs/models/gpt-6.2-sol.md"),
                 Source("https://www.w3cschool.cn/openai_api/openai_api-models-gpt-6-2-sol.html", THIRD_PARTY,
                        says="translation of the page: Ultrafast 3x through 2027-02-28 (Pacific), 6x from 2027-03-01"),
                 RESIDENCY),
        notes="Cache write price is for 30-minute retention; a 12-hour cache write costs $5 per 1M tokens "
              "(short context, Standard) - list_cost prices every cache write as 30-minute. No Flex on the page.",
    ),
    Model(
        "gpt-6.2-astra", "openai",
        # $8 / $40 per the launch coverage; cached "60% cheaper" than GPT-6 Astra's $1 gives $0.40.
        prices=((date(2026, 11, 17), rates("8.00", "0.40", "40.00")),),
        long_context_unpublished_above=272_000,
        regional=REGIONAL_10,
        sources=(Source("https://github.com/BerriAI/litellm/discussions/52347", THIRD_PARTY,
                        says="$8 input / $40 output, down from $10/$50, cached input 60% cheaper"),
                 Source("https://dev.to/hassann/how-to-use-gpt-62-astra-api-3j9l", THIRD_PARTY), RESIDENCY),
        notes="No vendor page found. Cached $0.40 derived from '60% cheaper'; cache write, long-context "
              "and tier rates unknown.",
    ),
    # ---- GPT-6.1
    Model(
        "gpt-6.1-sol", "openai",
        prices=((date(2026, 9, 29), rates("2.00", "0.10", "10.00", "2.50")),),
        long_context=GPT6_LONG,
        tiers={"priority": since(TWICE), "fast": since(TWICE),  # "Fast mode prices are 2x Standard."
               "batch": since(HALF), "flex": since(HALF),  # "Batch and Flex prices are 50% lower than Standard."
               "ultrafast": since(Multiplier(D(6)))},  # "Ultrafast mode prices are 6x Standard."
        regional=REGIONAL_10,  # "Regional processing adds a 10% premium where available."
        sources=(page("gpt-6.1-sol"), Source("https://developers.openai.com/api/docs/models/gpt-6.1-sol.md", VENDOR_COPY)),
        notes="Cached input 5% of input; cache writes 1.25x input.",
    ),
    Model(
        "gpt-6.1-terra", "openai",
        prices=((date(2026, 10, 26), rates("1.00", "0.05", "5.00", "1.25")),),
        long_context=GPT6_LONG,
        regional=REGIONAL_10,
        sources=(Source("https://qiita.com/AIHubMix/items/0ad009aed283a93b63cf", THIRD_PARTY,
                        says="$1 in / $5 out, cached 5%, 30-min write 125%, 12-hour write 250%; >272K whole request "
                             "repriced (300K in + 20K out = $0.75)"),
                 Source("https://github.com/TheKrush/PromptFuel/releases/tag/v1.0.24", THIRD_PARTY), RESIDENCY),
        notes="No vendor page found. Tier (Flex/Fast/Batch) rates not published in what was found.",
    ),
    # ---- GPT-6 (Astra 2026-09-03, Sol and Luna 2026-09-22)
    Model(
        "gpt-6-sol", "openai",
        prices=((date(2026, 9, 22), rates("2.00", "0.20", "10.00", "2.50")),),
        long_context=GPT6_LONG,
        tiers={"batch": since(HALF), "flex": since(HALF),  # "Batch and Flex are priced at 50% of Standard rates."
               "priority": since(TWICE), "fast": since(TWICE)},  # "Fast mode is priced at 2x the applicable rates."
        regional=REGIONAL_10,  # "Regional processing adds a 10% premium where available."
        sources=(Source("https://developers.openai.com/zh-Hans/api/docs/models/gpt-6-sol"),
                 Source("https://developers.openai.com/ja-JP/api/docs/models/gpt-6-sol"),
                 Source("https://developers.openai.com/api/docs/models/gpt-6-sol.md", VENDOR_COPY)),
        notes="EU data residency only with Standard processing (Fast not available with EU residency).",
    ),
    Model(
        "gpt-6-luna", "openai",
        prices=((date(2026, 9, 22), rates("0.10", "0.01", "0.50", "0.125")),),
        long_context=GPT6_LONG,
        regional=REGIONAL_10,
        sources=(Source("https://github.com/TheKrush/PromptFuel/releases/tag/v1.0.21", THIRD_PARTY),
                 Source("https://github.com/merefield/codexometer/releases/tag/v0.18.4", THIRD_PARTY),
                 Source("https://github.com/BerriAI/litellm/discussions/42523", THIRD_PARTY,
                        says="rates double on input and cache above 272K, output 1.5x (Sol and Luna)")),
        notes="No vendor page found.",
    ),
    Model(
        "gpt-6-astra", "openai",
        prices=((date(2026, 9, 3), rates("10.00", "1.00", "50.00", "12.50")),),
        long_context=GPT6_LONG,
        tiers={"batch": since(HALF), "flex": since(HALF), "priority": since(TWICE), "fast": since(TWICE),
               "ultrafast": since(Multiplier(D(6)))},
        regional=REGIONAL_10,
        sources=(Source("https://github.com/BerriAI/litellm/discussions/39633", THIRD_PARTY,
                        says="$10/$50, cache reads $1, writes $12.50; >272K 2x input and cache, 1.5x output; "
                             "Batch and Flex 50% off, Fast 2x"),
                 Source("https://apidog.com/jp/blog/openai-ultrafast-mode/", THIRD_PARTY,
                        says="Ultrafast 6x Standard: $60 input, $6 cached, $75 cache write, $300 output"),
                 Source("https://developers.openai.com/api/docs/guides/ultrafast-mode",
                        says="Ultrafast broadly available for GPT-6 Astra (no price in the excerpt read)")),
        notes="No vendor model page found. Ultrafast is US / global processing only.",
    ),
    # ---- GPT-5.6 (GA 2026-07-09). Priority became "Fast mode" on 2026-07-30.
    Model(
        "gpt-5.6-sol", "openai",
        prices=((date(2026, 7, 9), rates("5.00", "0.50", "30.00", "6.25")),
                # "GPT-5.6 Sol costs $4 per million input tokens and $20 per million output tokens, a 20%
                # reduction in input pricing and a 33% reduction in output pricing. GPT-5.6 Sol's promotional
                # pricing is available at least through November 21, 2026." Effective 2026-08-21.
                (date(2026, 8, 21), rates("4.00", "0.40", "20.00", "5.00"))),
        long_context=GPT5_LONG,
        tiers=priority(rates("10.00", "1.00", "60.00"), utc(date(2026, 7, 30))),
        regional=REGIONAL_10,  # page silent; the data residency guide
        sources=(page("gpt-5.6-sol"), Source("https://developers.openai.com/ja-JP/api/docs/models/gpt-5.6-sol"),
                 Source("https://developers.openai.com/api/docs/models/gpt-5.6-sol.md", VENDOR_COPY,
                        says="older copy: $5 / $0.50 / $30"),
                 Source("https://docs.laozhang.ai/announcements/gpt-5-6-sol-price-cut-2026-09", THIRD_PARTY,
                        says="OpenAI effective date of the cut 2026-08-21; long context $10->$8 in, $45->$30 out"),
                 FAST_MODE, RESIDENCY),
        notes="Cache writes 1.25x the uncached input rate (so $6.25, then $5.00). Fast mode $10/$1/$60 is the Fast "
              "page's table, 2x the pre-promotion list price; the promotion's end after 2026-11-21 is not "
              "published, so $4/$20 is kept.",
    ),
    Model(
        "gpt-5.6-terra", "openai",
        prices=((date(2026, 7, 9), rates("2.50", "0.25", "15.00", "3.125")),
                (date(2026, 7, 30), rates("2.00", "0.20", "12.00", "2.50"))),
        long_context=GPT5_LONG,
        tiers=priority(rates("4.00", "0.40", "24.00"), utc(date(2026, 7, 30))),
        regional=REGIONAL_10,
        sources=(page("gpt-5.6-terra", VENDOR_COPY), FAST_MODE, RESIDENCY,
                 Source("https://apidog.com/blog/how-to-use-gpt-5-6-api/", THIRD_PARTY, says="launch price $2.50/$15"),
                 Source("https://github.com/TheKrush/PromptFuel/releases/tag/v1.0.19", THIRD_PARTY,
                        says="price reduction to $2/$0.20/$12 effective 2026-07-30")),
        notes="Launch cached/cache-write prices derived (10% / 125% of input) by third parties.",
    ),
    Model(
        "gpt-5.6-luna", "openai",
        prices=((date(2026, 7, 9), rates("1.00", "0.10", "6.00", "1.25")),
                (date(2026, 7, 30), rates("0.20", "0.02", "1.20", "0.25"))),
        long_context=GPT5_LONG,
        tiers=priority(rates("0.40", "0.04", "2.40"), utc(date(2026, 7, 30))),
        regional=REGIONAL_10,
        sources=(page("gpt-5.6-luna", VENDOR_COPY), FAST_MODE, RESIDENCY,
                 Source("https://apidog.com/blog/how-to-use-gpt-5-6-api/", THIRD_PARTY, says="launch price $1/$6"),
                 Source("https://github.com/TheKrush/PromptFuel/releases/tag/v1.0.19", THIRD_PARTY,
                        says="price reduction to $0.20/$0.02/$1.20 effective 2026-07-30")),
    ),
    # ---- GPT-5.5 (2026-04-23)
    Model(
        "gpt-5.5", "openai",
        prices=((date(2026, 4, 23), rates("5.00", "0.50", "30.00", writes_at_input=True)),),
        # "For GPT-5.5, prompts with >272K input tokens are priced at 2x input and 1.5x output for the full
        # session for standard, batch, and flex." The Priority table excludes long context.
        long_context=GPT5_LONG,
        tiers=priority(rates("12.50", "1.25", "75.00", writes_at_input=True)),
        regional=REGIONAL_10,  # "Regional processing (data residency) endpoints are charged a 10% uplift for GPT-5.5."
        sources=(page("gpt-5.5", VENDOR_COPY), PRIORITY),
        notes="Batch and Flex exist but their rates for GPT-5.5 were not on the pages read.",
    ),
    Model(
        "gpt-5.5-pro", "openai",
        prices=((date(2026, 4, 23), rates("30.00", None, "180.00", writes_at_input=True)),),
        regional=REGIONAL_10,
        sources=(page("gpt-5.5-pro", VENDOR_COPY, says="does not offer a cached input discount; regional +10%"),),
        notes="The page states no long-context rule (a reseller tiers it at 278,528 tokens).",
    ),
    # ---- GPT-5.4 (2026-03-05; mini and nano 2026-03-17)
    Model(
        "gpt-5.4", "openai",
        prices=((date(2026, 3, 5), rates("2.50", "0.25", "15.00", writes_at_input=True)),),
        long_context=GPT5_LONG,
        tiers={"batch": since(HALF), "flex": since(HALF),  # pricing page: $1.25 / $0.13 / $7.50, long $2.50/$0.25/$11.25
               **priority(rates("5.00", "0.50", "30.00", writes_at_input=True))},
        regional=REGIONAL_10,
        sources=(page("gpt-5.4", VENDOR_COPY), Source(PRICING, VENDOR_COPY), PRIORITY),
        notes="The pricing page shows Batch/Flex cached input as $0.13; 50% of $0.25 is $0.125 (used here).",
    ),
    Model("gpt-5.4-mini", "openai", prices=((date(2026, 3, 17), rates("0.75", "0.075", "4.50", writes_at_input=True)),),
          tiers=priority(rates("1.50", "0.15", "9.00", writes_at_input=True)), regional=REGIONAL_10,
          sources=(page("gpt-5.4-mini", VENDOR_COPY), PRIORITY), notes="400K context, 272K max input."),
    Model("gpt-5.4-nano", "openai", prices=((date(2026, 3, 17), rates("0.20", "0.02", "1.25", writes_at_input=True)),),
          regional=REGIONAL_10, sources=(page("gpt-5.4-nano", VENDOR_COPY),)),
    # ---- earlier GPT-5 models (released before 2026-03-05: no data-residency uplift)
    Model("gpt-5.3-codex", "openai", prices=((date.min, rates("1.75", "0.175", "14.00", writes_at_input=True)),),
          regional=NO_REGIONAL_UPLIFT,
          sources=(Source("https://raw.githubusercontent.com/github/docs/main/data/tables/copilot/models-and-pricing.yml",
                          THIRD_PARTY), Source("https://docs.venice.ai/models/gpt-5-3-codex.md", THIRD_PARTY)),
          notes="No vendor page found."),
    Model("gpt-5.2", "openai", prices=((date.min, rates("1.75", "0.175", "14.00", writes_at_input=True)),),
          tiers=priority(rates("3.50", "0.35", "28.00", writes_at_input=True)), regional=NO_REGIONAL_UPLIFT,
          sources=(PRIORITY, Source("https://raw.githubusercontent.com/github/docs/main/data/tables/copilot/"
                                    "models-and-pricing.yml", THIRD_PARTY)),
          notes="Standard rates from third parties (the vendor Priority table is exactly 2x them)."),
    Model("gpt-5.1", "openai", prices=((date.min, rates("1.25", "0.125", "10.00", writes_at_input=True)),),
          tiers=priority(rates("2.50", "0.25", "20.00", writes_at_input=True)), regional=NO_REGIONAL_UPLIFT,
          sources=(page("gpt-5.1"), PRIORITY), notes="Deprecated (snapshot gpt-5.1-2025-11-13)."),
    Model("gpt-5.1-codex", "openai", prices=((date.min, rates("1.25", "0.125", "10.00", writes_at_input=True)),),
          tiers=priority(rates("2.50", "0.25", "20.00", writes_at_input=True)), regional=NO_REGIONAL_UPLIFT,
          sources=(PRIORITY,), notes="Standard rates not read on a page: taken as GPT-5.1's (its Priority prices "
                                     "equal GPT-5.1's). Unsure."),
    Model("gpt-5", "openai", prices=((date.min, rates("1.25", "0.125", "10.00", writes_at_input=True)),),
          tiers=priority(rates("2.50", "0.25", "20.00", writes_at_input=True)), regional=NO_REGIONAL_UPLIFT,
          sources=(PRIORITY, Source("https://developers.openai.com/api/docs/models/gpt-5-codex",
                                    says="GPT-5 $1.25 in the quick comparison")),
          notes="Standard rates from the GPT-5-Codex page's comparison and third parties."),
    Model("gpt-5-mini", "openai", prices=((date.min, rates("0.25", "0.025", "2.00", writes_at_input=True)),),
          tiers=priority(rates("0.45", "0.045", "3.60", writes_at_input=True)), regional=NO_REGIONAL_UPLIFT,
          sources=(page("gpt-5-mini", VENDOR_COPY), PRIORITY), notes="Priority is 1.8x Standard here, not 2x."),
    Model("gpt-5-nano", "openai", prices=((date.min, rates("0.05", "0.005", "0.40", writes_at_input=True)),),
          regional=NO_REGIONAL_UPLIFT, sources=(page("gpt-5-nano"),), notes="Deprecated (gpt-5-nano-2025-08-07)."),
    # ---- GPT-4.1, GPT-4o, o-series (non-reasoning: 4.1 and 4o)
    Model("gpt-4.1", "openai", prices=((date.min, rates("2.00", "0.50", "8.00", writes_at_input=True)),),
          tiers=priority(rates("3.50", "0.875", "14.00", writes_at_input=True)), regional=NO_REGIONAL_UPLIFT,
          reasoning=False, sources=(page("gpt-4.1", VENDOR_COPY), PRIORITY)),
    Model("gpt-4.1-mini", "openai", prices=((date.min, rates("0.40", "0.10", "1.60", writes_at_input=True)),),
          tiers=priority(rates("0.70", "0.175", "2.80", writes_at_input=True)), regional=NO_REGIONAL_UPLIFT,
          reasoning=False, sources=(page("gpt-4.1-mini", VENDOR_COPY), PRIORITY)),
    Model("gpt-4.1-nano", "openai", prices=((date.min, rates("0.10", "0.025", "0.40", writes_at_input=True)),),
          tiers=priority(rates("0.20", "0.05", "0.80", writes_at_input=True)), regional=NO_REGIONAL_UPLIFT,
          reasoning=False,
          sources=(PRIORITY, Source("https://raw.githubusercontent.com/Sraleik/undetermini/HEAD/PRICING.md",
                                    THIRD_PARTY, says="$0.10 / $0.40")),
          notes="Standard rates from third parties (the vendor Priority table is exactly 2x them)."),
    Model("gpt-4o", "openai", prices=((date.min, rates("2.50", "1.25", "10.00", writes_at_input=True)),),
          tiers=priority(rates("4.25", "2.125", "17.00", writes_at_input=True)), regional=NO_REGIONAL_UPLIFT,
          reasoning=False, sources=(page("gpt-4o", VENDOR_COPY), PRIORITY),
          notes="Priority for gpt-4o-2024-11-20 and -08-06; gpt-4o-2024-05-13 is priced apart (not in this table)."),
    Model("gpt-4o-mini", "openai", prices=((date.min, rates("0.15", "0.075", "0.60", writes_at_input=True)),),
          regional=NO_REGIONAL_UPLIFT, reasoning=False, sources=(page("gpt-4o-mini", VENDOR_COPY),)),
    Model("o3", "openai",
          prices=((date.min, rates("10.00", "2.50", "40.00", writes_at_input=True)),
                  (date(2025, 6, 10), rates("2.00", "0.50", "8.00", writes_at_input=True))),
          regional=NO_REGIONAL_UPLIFT,
          sources=(Source("https://github.com/RooCodeInc/Roo-Code/pull/2691.patch", THIRD_PARTY,
                          says="April 2025: $10 / $2.50 cached / $40"),
                   Source("https://chatgptpricing-akr.pages.dev/api-pricing", THIRD_PARTY, says="O3 $2.00 / $8.00")),
          notes="No vendor page found; the 2025-06-10 cut and the $0.50 cached rate are from memory of the "
                "announcement, not a page read here. Unsure."),
    Model("o4-mini", "openai", prices=((date.min, rates("1.10", "0.275", "4.40", writes_at_input=True)),),
          regional=NO_REGIONAL_UPLIFT, sources=(page("o4-mini", VENDOR_COPY),)),
    Model("text-embedding-3-small", "openai", prices=((date.min, rates("0.02", None, "0", writes_at_input=True)),),
          regional=NO_REGIONAL_UPLIFT, sources=(Source("https://chatgptpricing-akr.pages.dev/api-pricing", THIRD_PARTY),),
          notes="No vendor page found."),
    Model("text-embedding-3-large", "openai", prices=((date.min, rates("0.13", None, "0", writes_at_input=True)),),
          regional=NO_REGIONAL_UPLIFT, sources=(Source("https://chatgptpricing-akr.pages.dev/api-pricing", THIRD_PARTY),),
          notes="No vendor page found."),
)

# --------------------------------------------------------------------------- BytePlus ModelArk
# https://docs.byteplus.com/docs/ModelArk/1099320 (Model Service Billing): "Online inference fee = input
# unit price x (input token - cache hit token) + cache hit unit price x cache hit token + cache storage
# unit price x cache storage token x duration + output unit price x output token". Conditions are
# prompt lengths in thousands of tokens: [0, 128] and (128, 256].

BYTEPLUS_BILLING = Source("https://docs.byteplus.com/docs/ModelArk/1099320")
BYTEPLUS_MCP = Source("https://docs.byteplus.com/zh-CN/docs/ModelArk/1827534",
                      says="Charges apply to base model token consumption only. No additional fees are incurred "
                           "for MCP tool calls.")


def seed(input: str, hit: str, output: str) -> Rates:
    return Rates(D(input), D(hit), D(output), D(input))  # no write price: non-hit input bills at input


BYTEPLUS: tuple[Model, ...] = (
    Model("seed-1-6", "byteplus",
          prompt_tiers=(PromptTier(128_000, seed("0.25", "0.05", "2.00")),  # prompt length [0, 128K]
                        PromptTier(256_000, seed("0.5", "0.05", "4.00"))),  # (128K, 256K]
          cache_storage=D("0.0083"), tool_fees={"mcp": D(0)}, sources=(BYTEPLUS_BILLING, BYTEPLUS_MCP),
          notes="ByteDance-Seed-1.6 (seed-1-6-250915, seed-1-6-250615)."),
    Model("seed-1-6-flash", "byteplus",
          prompt_tiers=(PromptTier(128_000, seed("0.075", "0.015", "0.30")),
                        PromptTier(256_000, seed("0.10", "0.015", "0.80"))),
          cache_storage=D("0.0083"), sources=(BYTEPLUS_BILLING,), notes="ByteDance-Seed-1.6-flash."),
    Model("seed-1-8", "byteplus",
          prompt_tiers=(PromptTier(128_000, seed("0.25", "0.05", "2.00")),  # prompt length [0, 128K]
                        PromptTier(256_000, seed("0.5", "0.05", "4.00"))),  # (128K, 256K]
          cache_storage=D("0.0083"),
          sources=(Source("https://docs.byteplus.com/en/docs/Byteplus_LAS/Large_model_billing",
                          says="ByteDance-Seed-1.8 input 0.25 / output 2 ('Not applicable' condition), input 0.5 / "
                               "output 4 for prompt length (128, 256], cache storage 0.0083, cache hit 0.05"),),
          notes="From BytePlus's LAS billing page (ModelArk models used by LAS operators); its first row's condition "
                "reads 'Not applicable', taken as [0, 128]. Unsure."),
)

ALIASES = {
    "seed-1-6-250915": "seed-1-6", "seed-1-6-250615": "seed-1-6",
    "seed-1-6-flash-250715": "seed-1-6-flash", "seed-1-6-flash-250615": "seed-1-6-flash",
    "seed-1-8-251228": "seed-1-8",
    "gpt-5.6": "gpt-5.6-sol",  # "The gpt-5.6 alias routes requests to GPT-5.6 Sol."
}
NOT_THE_ALIAS = {"gpt-4o-2024-05-13"}  # a dated snapshot priced apart from its alias

MODELS: Mapping[str, Model] = MappingProxyType({m.name: m for m in OPENAI + BYTEPLUS})

# --------------------------------------------------------------------------- OpenAI built-in tools
# Pricing page, "Built-in tools". Tokens the tools use are billed at the model's token rates.

WEB_SEARCH = D("10.00") / 1000  # "Web search (all models): $10.00 / 1k calls + search content tokens"
WEB_SEARCH_PREVIEW_REASONING = D("10.00") / 1000  # "(reasoning models, including gpt-5, o-series)"
WEB_SEARCH_PREVIEW_NON_REASONING = D("25.00") / 1000  # "+ search content tokens are free"
FILE_SEARCH = D("2.50") / 1000  # "File search tool call (Responses API only): $2.50 / 1k calls"
# Container usage (Hosted Shell and Code Interpreter), by memory: "$0.03 / container" until 2026-03-31,
# "per 20-minute session per container" from then ("Rates by memory tier are unchanged"). The `tools`
# count is the number of units billed (containers, then 20-minute container sessions).
CONTAINERS = {"1g": D("0.03"), "4g": D("0.12"), "16g": D("0.48"), "64g": D("1.92")}
CONTAINER_SESSIONS_FROM = date(2026, 3, 31)

# Image generation, prices per image: quality x size (pricing page, "Image generation").
_SIZES = ("1024x1024", "1024x1536", "1536x1024")
_IMAGE_TABLE = {
    "gpt-image-1.5": {"low": ("0.009", "0.013", "0.013"), "medium": ("0.034", "0.05", "0.05"),
                      "high": ("0.133", "0.2", "0.2")},
    "gpt-image-1": {"low": ("0.011", "0.016", "0.016"), "medium": ("0.042", "0.063", "0.063"),
                    "high": ("0.167", "0.25", "0.25")},
    "gpt-image-1-mini": {"low": ("0.005", "0.006", "0.006"), "medium": ("0.011", "0.015", "0.015"),
                         "high": ("0.036", "0.052", "0.052")},
}
IMAGES: Mapping[str, Decimal] = MappingProxyType({
    f"{model}.{quality}.{size}": D(price)
    for model, qualities in _IMAGE_TABLE.items()
    for quality, prices in qualities.items()
    for size, price in zip(_SIZES, prices, strict=True)
})
# gpt-image-2: the pricing page lists token prices only (image input $8, cached $2, output $30; text input
# $5, cached $1.25 per 1M tokens); no per-image table was found, so `image.gpt-image-2.*` is unpublished.
GPT_IMAGE_2_TOKENS = {"image": rates("8.00", "2.00", "30.00"), "text": rates("5.00", "1.25", "0")}

TOOL_SOURCES = (
    Source(PRICING, VENDOR_COPY, says="built-in tools and image generation tables (copy from before 2026-03-31, "
                                      "and a later one with gpt-image-2)"),
)

# --------------------------------------------------------------------------- pricing

STANDARD_TIERS = {None, "auto", "default", "standard"}
_DATED = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def model_entry(model: str) -> Model | None:
    """The table's entry for a model name, dated snapshot (gpt-5.5-2026-04-23) or alias."""
    if model in MODELS:
        return MODELS[model]
    if model in ALIASES:
        return MODELS[ALIASES[model]]
    if model not in NOT_THE_ALIAS and (base := _DATED.sub("", model)) != model:
        return MODELS.get(base)
    return None


def _aware(at: datetime) -> datetime:
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at


def _dated(steps, at: datetime):
    """The step in force at `at` (the first one before its start date: the model's first price)."""
    current = steps[0][1]
    for start, value in steps:
        start = utc(start) if not isinstance(start, datetime) else start
        if _aware(at) >= start:
            current = value
    return current


def _openai_rates(m: Model, at: datetime, input_tokens: int, service_tier: str | None) -> Rates:
    r = _dated(m.prices, at)
    long = m.long_context is not None and input_tokens > m.long_context.above
    if m.long_context_unpublished_above is not None and input_tokens > m.long_context_unpublished_above:
        raise UnpublishedPrice(f"{m.name}: long-context rates are not published")
    if long:
        lc = m.long_context
        r = r.scaled(lc.input, lc.cached, lc.cache_write, lc.output)
    if service_tier in STANDARD_TIERS:
        return r
    steps = m.tiers.get(service_tier)
    if steps is None:
        raise UnpublishedPrice(f"{m.name}: no published price for service tier {service_tier!r}")
    if _aware(at) < _first_start(steps):
        raise UnpublishedPrice(f"{m.name}: service tier {service_tier!r} has no published price before "
                               f"{_first_start(steps).date()}")
    rule = _dated(steps, at)
    if isinstance(rule, Explicit):
        if long:
            raise UnpublishedPrice(f"{m.name}: {service_tier} prices exclude long context")
        return rule.rates
    if long and not rule.long_context:
        raise UnpublishedPrice(f"{m.name}: {service_tier} is not published for long context")
    f = rule.factor
    return r.scaled(f, f, f, f)


def _first_start(steps) -> datetime:
    start = steps[0][0]
    return start if isinstance(start, datetime) else utc(start)


def _byteplus_rates(m: Model, input_tokens: int, service_tier: str | None, regional: bool) -> Rates:
    if service_tier not in STANDARD_TIERS:
        raise UnpublishedPrice(f"{m.name}: no published price for service tier {service_tier!r}")
    if regional:
        raise UnpublishedPrice(f"{m.name}: no regional uplift is published")
    for t in m.prompt_tiers:
        if input_tokens <= t.up_to:
            return t.rates
    raise UnpublishedPrice(f"{m.name}: no price above {m.prompt_tiers[-1].up_to} prompt tokens")


def _tool_cost(m: Model, tools: Mapping[str, int]) -> Decimal:
    total = D(0)
    for key, count in tools.items():
        if count < 0:
            raise ValueError(f"negative tool count for {key}")
        if not count:
            continue
        if key in m.tool_fees:
            fee = m.tool_fees[key]
        elif m.vendor != "openai":
            raise UnpublishedPrice(f"{m.name}: no published fee for {key!r}")
        elif key == "web_search":
            fee = WEB_SEARCH
        elif key == "web_search_preview":
            fee = WEB_SEARCH_PREVIEW_REASONING if m.reasoning else WEB_SEARCH_PREVIEW_NON_REASONING
        elif key == "file_search":
            fee = FILE_SEARCH
        elif key.startswith("container.") and key.removeprefix("container.") in CONTAINERS:
            fee = CONTAINERS[key.removeprefix("container.")]  # per container / per 20-minute session (same rate)
        elif key.startswith("image."):
            if key.removeprefix("image.") not in IMAGES:
                raise UnpublishedPrice(f"no published per-image price for {key!r}")
            fee = IMAGES[key.removeprefix("image.")]
        else:
            raise UnpublishedPrice(f"no published fee for tool {key!r}")
        total += fee * count
    return total


def list_cost(model: str, at: datetime, **usage) -> Decimal | None:
    """The USD the vendor bills for one call at its list prices, exactly; None for a model not in the table.
    The same arguments as `list_cost_items`, whose items it sums."""
    items = list_cost_items(model, at, **usage)
    return None if items is None else sum(items.values(), D(0))


def _token_items(r: Rates, *, uncached: int, cached: int, writes: int, output: int) -> dict[str, Decimal]:
    if writes and r.cache_write is None:
        raise UnpublishedPrice("no cache-write price is published for this model")
    write = r.cache_write if writes else D(0)
    return {"input": (r.input * uncached + write * writes) / MILLION, "cached input": r.cached * cached / MILLION,
            "output": r.output * output / MILLION}


def list_cost_items(model: str, at: datetime, *, input_tokens: int, cached_tokens: int, cache_write_tokens: int,
                    output_tokens: int, reasoning_tokens: int, service_tier: str | None,
                    tools: dict[str, int], cache_storage_token_hours: int = 0,
                    regional: bool = False) -> dict[str, Decimal] | None:
    """What the vendor bills for one call at its list prices, exactly, by line of its bill (input
    with cache writes, cached input, output, cache storage, built-in tools); None for a model not
    in the table.

    `cached_tokens` and `cache_write_tokens` are part of `input_tokens`; `reasoning_tokens` are part of
    `output_tokens`. `service_tier` None / "auto" / "default" is Standard; "fast" is Priority. `regional`:
    a regional-processing (data residency) endpoint, an uplift on the token charges. Raises
    UnpublishedPrice where the vendor publishes no price for the case."""
    m = model_entry(model)
    if m is None:
        return None
    if min(input_tokens, cached_tokens, cache_write_tokens, output_tokens, reasoning_tokens,
           cache_storage_token_hours) < 0:
        raise ValueError("token counts cannot be negative")
    if cached_tokens + cache_write_tokens > input_tokens:
        raise ValueError("cached and cache-write tokens are part of input_tokens")
    if reasoning_tokens > output_tokens:
        raise ValueError("reasoning tokens are part of output_tokens")

    uncached = input_tokens - cached_tokens - cache_write_tokens
    if m.vendor == "byteplus":
        r = _byteplus_rates(m, input_tokens, service_tier, regional)
        items = _token_items(r, uncached=uncached, cached=cached_tokens, writes=cache_write_tokens,
                             output=output_tokens)
        items["cache storage"] = m.cache_storage * cache_storage_token_hours / MILLION
        items["tools"] = _tool_cost(m, tools)
        return items

    if cache_storage_token_hours:
        raise UnpublishedPrice(f"{m.name}: OpenAI publishes no cache-storage price")
    r = _openai_rates(m, at, input_tokens, service_tier)
    items = _token_items(r, uncached=uncached, cached=cached_tokens, writes=cache_write_tokens, output=output_tokens)
    if regional:
        if m.regional is None:
            raise UnpublishedPrice(f"{m.name}: no regional-processing price is published")
        items = {line: amount * m.regional for line, amount in items.items()}  # the uplift is on token charges
    items["tools"] = _tool_cost(m, tools)
    return items
