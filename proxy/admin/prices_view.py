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


def version_rows(version: PriceVersion, tenant: str | None, aliases: list[str]) -> list[dict]:
    """One row per tier of each service tier of one version. Tool prices (USD per 1,000
    calls) read `web_search=10.00 file_search=2.50`; aliases and patterns, space-separated."""
    tools = " ".join(f"{tool}={price}" for tool, price in sorted(version.tools.items()))
    return [{"model": version.model, "tenant": tenant, "version": version.id,
             "effective_from": version.effective_from, "service_tier": service_tier,
             "up_to_input_tokens": tier.up_to_input_tokens, "input": tier.input, "cached": tier.cached_price,
             "cache_write": tier.cache_write_price, "output": tier.output, "reasoning": tier.reasoning_price,
             "tools": tools, "cache_storage": version.cache_storage, "aliases": " ".join(aliases),
             "source": version.source}
            for service_tier, tiers in (("default", version.tiers), *sorted(version.service_tiers.items()))
            for tier in tiers]
