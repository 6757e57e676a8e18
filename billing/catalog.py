"""Read a TOML price catalog into price versions and aliases.

A model's table is its first version; each of its `changes` (an array of tables, each with
an `effective_from`) is a later version that replaces its prices and service tiers and
keeps the rest (aliases, tools, output cap). `tool_prices = "NAME"` lays a shared table
`[tool_prices.NAME]` under the model's own `tools`.

A malformed catalog fails with `CatalogError` naming the file, the line of the model's
table and the field, so an operator can fix it without guessing.
"""

import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any

from billing.pricing import PriceVersion, Tier

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
PRICE_FIELDS = ("input", "output", "cached", "cache_write", "reasoning")
MODEL_FIELDS = {"source", "as_of", "effective_from", "aliases", "tiers", "max_output_tokens", "service_tiers",
                "tools", "tool_prices", "cache_storage", "changes", *PRICE_FIELDS}
CHANGE_FIELDS = {"source", "effective_from", "tiers", "service_tiers", "tools", *PRICE_FIELDS}
SERVICE_TIER_FIELDS = {"tiers", "source", *PRICE_FIELDS}
TIER_FIELDS = {"up_to_input_tokens", *PRICE_FIELDS}
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_.-]{0,63}")  # service tiers and tool units


class CatalogError(ValueError):
    pass


@dataclass(frozen=True)
class Catalog:
    versions: tuple[PriceVersion, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)


def shipped_catalog_path() -> Path:
    return Path(str(resources.files("billing") / "catalog" / "prices.toml"))


def load_catalog(path: Path | str) -> Catalog:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read price catalog: {exc.strerror}") from exc
    return parse_catalog(text, str(path))


def parse_catalog(text: str, origin: str) -> Catalog:
    try:
        data = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{origin}: {exc}") from exc
    models = data.get("models", {})
    if not isinstance(models, dict):
        raise CatalogError(f"{origin}: `models` must be a table of models")
    shared = _tool_tables(data.get("tool_prices", {}), origin)
    versions: list[PriceVersion] = []
    aliases: dict[str, str] = {}
    for name, spec in models.items():
        where = f"{origin}:{_line_of_model(text, name)}: models.{name}"
        model_versions, model_aliases = _parse_model(name, spec, where, origin, shared)
        versions.extend(model_versions)
        for alias in model_aliases:
            aliases[alias] = name
    return Catalog(versions=tuple(versions), aliases=aliases)


def _tool_tables(value: Any, origin: str) -> dict[str, dict[str, Decimal]]:
    """`[tool_prices.NAME]` tables: tool unit -> USD per 1,000, shared by the models naming them."""
    if not isinstance(value, dict):
        raise CatalogError(f"{origin}: `tool_prices` must be a table of named tables")
    tables = {}
    for table, prices in value.items():
        where = f"{origin}: tool_prices.{table}"
        tables[table] = {unit: parse_price(price, f"{where}.{unit}")
                         for unit, price in _named_table(prices, where).items()}
    return tables


def _parse_model(name: str, spec: Any, where: str, origin: str, shared: dict[str, dict[str, Decimal]]):
    if not isinstance(spec, dict):
        raise CatalogError(f"{where}: must be a table")
    unknown = set(spec) - MODEL_FIELDS
    if unknown:
        raise CatalogError(f"{where}.{sorted(unknown)[0]}: unknown field")
    table = spec.get("tool_prices")
    if table is not None and table not in shared:
        raise CatalogError(f"{where}.tool_prices: no [tool_prices.{table}] table in this catalog")
    tools = {**shared.get(table, {}), **_tools(spec, where)}
    first = _parse_version(name, spec, where, origin, tools)
    changes = spec.get("changes", [])
    if not isinstance(changes, list) or not all(isinstance(c, dict) for c in changes):
        raise CatalogError(f"{where}.changes: must be an array of tables")
    versions = [first]
    for index, change in enumerate(changes):
        change_where = f"{where}.changes[{index}]"
        unknown = set(change) - CHANGE_FIELDS
        if unknown:
            raise CatalogError(f"{change_where}.{sorted(unknown)[0]}: unknown field")
        if "effective_from" not in change:
            raise CatalogError(f"{change_where}.effective_from: missing")
        kept = {field: spec.get(field) for field in ("max_output_tokens", "source", "cache_storage")}
        version = _parse_version(name, {**kept, **change}, change_where, origin,
                                 {**tools, **_tools(change, change_where)})
        if version.effective_from <= versions[-1].effective_from:
            raise CatalogError(f"{change_where}.effective_from: must be later than the version before it")
        versions.append(version)
    return versions, _aliases(spec, where)


def _tools(spec: dict, where: str) -> dict[str, Decimal]:
    return {name: parse_price(price, f"{where}.tools.{name}")
            for name, price in _named_table(spec.get("tools", {}), f"{where}.tools").items()}


def _aliases(spec: dict, where: str) -> list[str]:
    aliases = spec.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a for a in aliases):
        raise CatalogError(f"{where}.aliases: must be an array of names or patterns")
    return aliases


def _parse_version(name: str, spec: dict, where: str, origin: str, tools: dict[str, Decimal]) -> PriceVersion:
    tiers = _parse_tiers(spec, where)
    service_tiers = {}
    for tier_name, tier_spec in _named_table(spec.get("service_tiers", {}), f"{where}.service_tiers").items():
        tier_where = f"{where}.service_tiers.{tier_name}"
        if not isinstance(tier_spec, dict):
            raise CatalogError(f"{tier_where}: must be a table of prices")
        unknown = set(tier_spec) - SERVICE_TIER_FIELDS
        if unknown:
            raise CatalogError(f"{tier_where}.{sorted(unknown)[0]}: unknown field")
        service_tiers[tier_name] = _parse_tiers({k: v for k, v in tier_spec.items() if k != "source"}, tier_where)
    cap = spec.get("max_output_tokens")
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap <= 0):
        raise CatalogError(f"{where}.max_output_tokens: must be a positive integer")
    try:
        version = PriceVersion(
            model=name,
            effective_from=_parse_time(spec.get("effective_from"), f"{where}.effective_from"),
            tiers=tiers,
            source=str(spec.get("source") or origin),
            max_output_tokens=cap,
            service_tiers=service_tiers,
            tools=tools,
            cache_storage=parse_price(spec.get("cache_storage"), f"{where}.cache_storage"),
        )
    except ValueError as exc:
        raise CatalogError(f"{where}.tiers: {exc}") from exc
    return version


def _parse_tiers(spec: dict, where: str) -> tuple[Tier, ...]:
    """Prices at the top of `spec`, or an array `tiers` of them."""
    if "tiers" not in spec:
        return (_parse_tier(spec, where, top_level=True),)
    if any(f in spec for f in PRICE_FIELDS):
        raise CatalogError(f"{where}: give prices either in `tiers` or at the top, not both")
    raw_tiers = spec["tiers"]
    if not isinstance(raw_tiers, list) or not raw_tiers:
        raise CatalogError(f"{where}.tiers: must be a non-empty array of tables")
    return tuple(_parse_tier(t, f"{where}.tiers[{i}]") for i, t in enumerate(raw_tiers))


def _named_table(value: Any, where: str) -> dict:
    """A table keyed by service tier or tool names (lower case, digits, `_.-`)."""
    if not isinstance(value, dict):
        raise CatalogError(f"{where}: must be a table")
    for name in value:
        if not NAME_PATTERN.fullmatch(name):
            raise CatalogError(f"{where}.{name}: not a valid name (lower case letters, digits, _ . -)")
    return value


def _parse_tier(spec: Any, where: str, top_level: bool = False) -> Tier:
    if not isinstance(spec, dict):
        raise CatalogError(f"{where}: must be a table")
    if not top_level:
        unknown = set(spec) - TIER_FIELDS
        if unknown:
            raise CatalogError(f"{where}.{sorted(unknown)[0]}: unknown field")
    prices = {f: parse_price(spec.get(f), f"{where}.{f}") for f in PRICE_FIELDS}
    for required in ("input", "output"):
        if prices[required] is None:
            raise CatalogError(f"{where}.{required}: missing")
    bound = spec.get("up_to_input_tokens")
    if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int) or bound <= 0):
        raise CatalogError(f"{where}.up_to_input_tokens: must be a positive integer")
    return Tier(up_to_input_tokens=bound, **prices)


def parse_price(value: Any, where: str) -> Decimal | None:
    """A USD-per-1M price from a string or TOML number; never a binary float."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise CatalogError(f"{where}: must be a decimal number such as \"0.25\"")
    try:
        price = Decimal(value) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise CatalogError(f"{where}: {value!r} is not a decimal number") from None
    if not price.is_finite() or price < 0:
        raise CatalogError(f"{where}: must be a finite, non-negative number")
    return price


def _parse_time(value: Any, where: str) -> datetime:
    if value is None:
        return EPOCH
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise CatalogError(f"{where}: {value!r} is not an ISO 8601 time") from None
    else:
        raise CatalogError(f"{where}: must be an ISO 8601 time")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _line_of_model(text: str, name: str) -> int:
    pattern = re.compile(r'^\s*\[+\s*models\.(?:"%s"|%s)\s*[\].]' % (re.escape(name), re.escape(name)))
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.match(line):
            return number
    return 1
