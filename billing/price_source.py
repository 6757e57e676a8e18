"""Price versions from a maintained price source: Pydantic's `genai-prices` package, as
installed (its data ships in the package; nothing is fetched). Pure.

The source prices a model with fields that may each be tiered by the request's input
tokens (a tier applies above its `start`, to the whole request), may change on dated
`ConditionalPrice`s, and may differ per service tier (`price_variants`). Each becomes what
this project prices with:
- a dated price change is a version from that date (midnight UTC); a variant that starts
  on its own date makes a version from that date too; a date that changes nothing makes none;
- the fields' tiers become `Tier`s bounded by `up_to_input_tokens` (the source's start);
- a `service_tier` variant is that service tier's prices; `processing: batch` is the
  `batch` tier; a `fast` variant equal to `priority` is left out (the upstream answers
  `fast` as priority, which bills it so);
- web searches and file searches per 1,000 become the `web_search` and `file_search` tools.
What the source prices that has no place here (audio, image and video tokens, per-request
fees, cache writes by retention time, time-of-day prices) is listed in `skipped`, never
silently dropped; a model that cannot be represented at all is skipped whole.
"""

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from decimal import Decimal
from typing import Any, Iterable

from billing.pricing import DEFAULT_SERVICE_TIERS, PriceVersion, Tier

SOURCE_NAME = "genai-prices"
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_TOKEN_FIELDS = {"input_mtok": "input", "output_mtok": "output", "cache_read_mtok": "cached",
                 "cache_write_mtok": "cache_write"}
_TOOL_FIELDS = {"web_searches_kcount": "web_search", "storage_searches_kcount": "file_search"}
_BATCH = {"processing": "batch"}


@dataclass(frozen=True)
class SourceModel:
    """One model of the source: its versions, the names it answers to, what was left out."""

    model: str
    versions: tuple[PriceVersion, ...]
    aliases: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()  # price fields (or the whole model) the book cannot hold


@dataclass(frozen=True)
class SourceBook:
    source: str  # e.g. "genai-prices 0.2.3"
    models: tuple[SourceModel, ...] = ()
    skipped_models: tuple[tuple[str, str], ...] = field(default_factory=tuple)  # (model, why)


def read_source(providers: Iterable[Any], version: str, provider_ids: Iterable[str] = ("openai",)) -> SourceBook:
    """The models of the given providers in the source's `providers` list."""
    wanted = set(provider_ids)
    source = f"{SOURCE_NAME} {version}"
    models, skipped = [], []
    for provider in providers:
        if provider.id not in wanted:
            continue
        urls = " ".join(provider.pricing_urls or ())
        for info in provider.models:
            try:
                models.append(_model(info, provider.id, source, urls))
            except _Unrepresentable as why:
                skipped.append((info.id, str(why)))
    return SourceBook(source=source, models=tuple(models), skipped_models=tuple(skipped))


class _Unrepresentable(ValueError):
    pass


def _model(info: Any, provider_id: str, source: str, urls: str) -> SourceModel:
    conditional = info.prices if isinstance(info.prices, list) else []
    if any(c.constraint is not None and not hasattr(c.constraint, "start_date") for c in conditional):
        raise _Unrepresentable("its prices depend on the time of day")
    variants = [v for v in info.price_variants or () if _variant_name(v.when) is not None]
    dates = {EPOCH.date()} | {c.constraint.start_date for c in conditional if c.constraint is not None} | {
        v.constraint.start_date for v in variants if v.constraint is not None and hasattr(v.constraint, "start_date")}
    note = f"{source} {provider_id}/{info.id}" + (f" ({urls.split()[0]})" if urls else "")
    versions: list[PriceVersion] = []
    skipped: set[str] = set()
    for day in sorted(dates):
        at = datetime.combine(day, time(), timezone.utc) if day != EPOCH.date() else EPOCH
        version = _version_at(info, variants, at, note, skipped)
        if version is not None and (not versions or _content(versions[-1]) != _content(version)):
            versions.append(version)
    if not versions:
        raise _Unrepresentable("it has no input and output price")
    return SourceModel(model=info.id, versions=tuple(versions), aliases=tuple(_aliases(info.match, info.id)),
                       skipped=tuple(sorted(skipped)))


def _variant_name(when: dict) -> str | None:
    if when == _BATCH:
        return "batch"
    if set(when) == {"service_tier"} and when["service_tier"] not in DEFAULT_SERVICE_TIERS:
        return when["service_tier"]
    return None


def _version_at(info: Any, variants: list, at: datetime, note: str, skipped: set[str]) -> PriceVersion | None:
    # the source's constraints compare the request's date: any moment of that day will do
    moment = at.replace(hour=12)
    standard = info.get_prices(moment)
    tiers, tools = _tiers(standard, skipped), _tools(standard)
    if tiers is None:
        return None
    service_tiers = {}
    for variant in variants:
        if variant.constraint is not None and not variant.constraint.active(moment):
            continue
        name = _variant_name(variant.when)
        priced = _tiers(info.get_prices(moment, dict(variant.when)), skipped)
        if priced is not None and priced != tiers:
            service_tiers[name] = priced
    if "fast" in service_tiers and service_tiers["fast"] == service_tiers.get("priority"):
        del service_tiers["fast"]
    return PriceVersion(model=info.id, effective_from=at, tiers=tiers, source=note, service_tiers=service_tiers,
                        tools=tools)


def _tiers(price: Any, skipped: set[str]) -> tuple[Tier, ...] | None:
    """The source's fields as tiers bounded by input tokens; None without input and output."""
    fields = {}
    for key, value in vars(price).items():
        if value is None or key.startswith("_"):
            continue
        if key in _TOKEN_FIELDS:
            fields[_TOKEN_FIELDS[key]] = value
        elif key not in _TOOL_FIELDS:
            skipped.add(key)
    if "input" not in fields or "output" not in fields:
        return None
    starts = sorted({tier.start for value in fields.values() if hasattr(value, "tiers") for tier in value.tiers})
    bounds: list[int | None] = [*starts, None]
    tiers = []
    for index, bound in enumerate(bounds):
        above = -1 if index == 0 else starts[index - 1]  # this tier holds inputs above the previous start
        tiers.append(Tier(up_to_input_tokens=bound, **{name: _at(value, above) for name, value in fields.items()}))
    return tuple(tiers)


def _at(value: Any, above: int) -> Decimal:
    """A field's price for an input of more than `above` tokens (the source's rule: the last
    tier whose start the input exceeds)."""
    if not hasattr(value, "tiers"):
        return Decimal(value)
    price = value.base
    for tier in sorted(value.tiers, key=lambda t: t.start):
        if above >= tier.start:
            price = tier.price
    return Decimal(price)


def _tools(price: Any) -> dict[str, Decimal]:
    return {tool: Decimal(getattr(price, key)) for key, tool in _TOOL_FIELDS.items()
            if getattr(price, key, None) is not None and not hasattr(getattr(price, key), "tiers")}


_SIMPLE_REGEX = re.compile(r"\^((?:[a-z0-9-]|\\\.|\\d(?:\{\d\})?)+)\$")


def _aliases(match: Any, model: str) -> list[str]:
    """The names and patterns a source's match clauses stand for, where they are simple:
    an exact name, a prefix (`name*`), an anchored regex of literals and digits (`gpt-5.6-sol-????-??-??`
    written as `[0-9]`). Other clauses (contains, ends with, complex regexes) are left out."""
    found: list[str] = []
    for clause in _clauses(match):
        if hasattr(clause, "equals"):
            found.append(clause.equals.lower())
        elif hasattr(clause, "starts_with"):
            found.append(clause.starts_with.lower() + "*")
        elif hasattr(clause, "regex") and (simple := _SIMPLE_REGEX.fullmatch(clause.regex)):
            found.append(_glob(simple.group(1)))
    return sorted({name for name in found if name != model})


def _clauses(match: Any) -> list[Any]:
    if hasattr(match, "or_"):
        return [clause for inner in match.or_ for clause in _clauses(inner)]
    return [] if hasattr(match, "and_") else [match]


def _glob(regex: str) -> str:
    def digits(found: re.Match) -> str:
        return "[0-9]" * int(found.group(1) or 1)
    return re.sub(r"\\d(?:\{(\d)\})?", digits, regex.replace("\\.", "."))


def _content(version: PriceVersion) -> tuple:
    return version.tiers, tuple(sorted(version.service_tiers.items())), tuple(sorted(version.tools.items()))


def installed_source(provider_ids: Iterable[str] = ("openai",)) -> SourceBook:
    """The source as the installed `genai-prices` package holds it."""
    from importlib.metadata import version

    from genai_prices.data import providers  # ~1 s to import: only when prices are imported
    return read_source(providers, version("genai-prices"), provider_ids)
