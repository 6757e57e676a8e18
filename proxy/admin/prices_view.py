"""Price versions as rows for people (the CLI) and scripts (the admin API). Pure."""

from datetime import datetime

from billing.pricebook import PriceBook
from billing.pricing import PriceVersion


def price_rows(book: PriceBook, at: datetime, history: bool, model: str | None,
               tenant_names: dict[int, str]) -> list[dict]:
    """One row per tier of each service tier: the versions in force at `at`, or with `history`
    every version. `model` may be any name a client sends: a dated name shows the price it
    resolves to."""
    owners = sorted({(v.model, v.tenant_id or 0) for v in book.all_versions()})
    if model is not None and model not in {name for name, _ in owners}:
        model = book.resolve_name(model) or model
    rows = []
    for name, tenant_id in owners:
        if model is not None and name != model:
            continue
        tenant = tenant_id or None
        if history:
            versions = book.versions(name, tenant)
        else:
            current = book.version_at(name, at, tenant)
            versions = [current] if current else []
        for version in versions:
            rows += version_rows(version, tenant_names.get(tenant_id), book.aliases_of(name))
    return rows


def tool_prices_text(tools) -> str:
    """Tool prices (USD per 1,000 units) as `web_search=10.00 file_search=2.50`; the many
    per-image prices of an image model in one item, their range:
    `image_generation.gpt-image-1.*=11.00..250.00` (`prices list --format json` on the admin
    API, or the catalog, has each)."""
    items, images = [], {}
    for unit, price in sorted(tools.items()):
        parts = unit.split(".")
        if parts[0] == "image_generation" and len(parts) >= 4:
            images.setdefault(".".join(parts[:-2]), []).append(price)
        else:
            items.append(f"{unit}={price}")
    items += [f"{model}.*={min(prices)}..{max(prices)}" for model, prices in sorted(images.items())]
    return " ".join(items)


def version_rows(version: PriceVersion, tenant: str | None, aliases: list[str]) -> list[dict]:
    """One row per tier of each service tier of one version (`tool_prices_text`); aliases
    and patterns, space-separated."""
    tools = tool_prices_text(version.tools)
    return [{"model": version.model, "tenant": tenant, "version": version.id,
             "effective_from": version.effective_from, "service_tier": service_tier,
             "up_to_input_tokens": tier.up_to_input_tokens, "input": tier.input, "cached": tier.cached_price,
             "cache_write": tier.cache_write_price, "output": tier.output, "reasoning": tier.reasoning_price,
             "tools": tools, "cache_storage": version.cache_storage, "aliases": " ".join(aliases),
             "source": version.source}
            for service_tier, tiers in (("default", version.tiers), *sorted(version.service_tiers.items()))
            for tier in tiers]
