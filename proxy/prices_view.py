"""Price versions as rows for people (the CLI) and scripts (the admin API). Pure."""

from datetime import datetime

from billing.pricebook import PriceBook


def price_rows(book: PriceBook, at: datetime, history: bool, model: str | None,
               tenant_names: dict[int, str]) -> list[dict]:
    """One row per tier of each service tier: the versions in force at `at`, or with `history`
    every version. Tool prices (USD per 1,000 calls) read `web_search=10.00 file_search=2.50`."""
    owners = sorted({(v.model, v.tenant_id or 0) for v in book.all_versions()})
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
            tools = " ".join(f"{tool}={price}" for tool, price in sorted(version.tools.items()))
            for service_tier, tiers in (("default", version.tiers), *sorted(version.service_tiers.items())):
                for tier in tiers:
                    rows.append({"model": name, "tenant": tenant_names.get(tenant_id), "version": version.id,
                                 "effective_from": version.effective_from, "service_tier": service_tier,
                                 "up_to_input_tokens": tier.up_to_input_tokens, "input": tier.input,
                                 "cached": tier.cached_price, "cache_write": tier.cache_write_price,
                                 "output": tier.output, "reasoning": tier.reasoning_price, "tools": tools,
                                 "cache_storage": version.cache_storage, "source": version.source})
    return rows
