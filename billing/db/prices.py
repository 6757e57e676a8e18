"""Price versions in the database.

Every price that ever applied is a row of `price_versions` (with its tiers), so each
ledger entry can name the exact version it was priced with. The TOML catalogs are synced
into it at start-up: a catalog price is inserted once per distinct content (its
fingerprint), so restarting never duplicates versions and editing a catalog adds one.
"""

import hashlib
import json
from decimal import Decimal

from sqlalchemy import func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from billing.catalog import Catalog
from billing.db.audit import record
from billing.db.tables import model_aliases, price_tiers, price_versions
from billing.price_import import ImportPlan
from billing.pricebook import PriceBook
from billing.pricing import PriceVersion, Tier

_TIER_PRICES = ("input", "output", "cached", "cache_write", "reasoning")


def _tier_dicts(tiers) -> list[dict]:
    return [{"up_to": t.up_to_input_tokens, **{p: None if getattr(t, p) is None else str(getattr(t, p))
                                               for p in _TIER_PRICES}} for t in tiers]


def fingerprint(version: PriceVersion) -> str:
    canonical = {
        "model": version.model,
        "effective_from": version.effective_from.isoformat(),
        "max_output_tokens": version.max_output_tokens,
        "tiers": _tier_dicts(version.tiers),
    }
    # Added only when set, so a catalog price without them keeps the fingerprint it always had.
    if version.service_tiers:
        canonical["service_tiers"] = {name: _tier_dicts(t) for name, t in version.service_tiers.items()}
    if version.tools:
        canonical["tools"] = {name: str(price) for name, price in version.tools.items()}
    if version.cache_storage is not None:
        canonical["cache_storage"] = str(version.cache_storage)
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def _tier_rows(version_id: int, version: PriceVersion) -> list[dict]:
    named = [("default", version.tiers), *version.service_tiers.items()]
    rows = [(service_tier, t) for service_tier, tiers in named for t in tiers]
    return [{"version_id": version_id, "position": i, "service_tier": service_tier,
             "up_to_input_tokens": t.up_to_input_tokens, **{p: getattr(t, p) for p in _TIER_PRICES}}
            for i, (service_tier, t) in enumerate(rows)]


async def _insert_version(conn: AsyncConnection, version: PriceVersion, *, unique_content: bool) -> int | None:
    statement = pg_insert(price_versions).values(
        model=version.model, effective_from=version.effective_from, source=version.source,
        tenant_id=version.tenant_id, max_output_tokens=version.max_output_tokens,
        tools={name: str(price) for name, price in version.tools.items()}, cache_storage=version.cache_storage,
        fingerprint=fingerprint(version) if unique_content else None,  # operator versions are never merged
    )
    if unique_content:
        statement = statement.on_conflict_do_nothing(index_elements=["fingerprint"])
    version_id = (await conn.execute(statement.returning(price_versions.c.id))).scalar_one_or_none()
    if version_id is None:
        return None
    await conn.execute(insert(price_tiers), _tier_rows(version_id, version))
    return version_id


async def sync_catalog(engine: AsyncEngine, catalog: Catalog) -> int:
    """Insert the catalog's versions not yet known and its aliases; returns versions added."""
    added = 0
    async with engine.begin() as conn:
        for version in catalog.versions:
            if await _insert_version(conn, version, unique_content=True) is not None:
                added += 1
        for alias, model in catalog.aliases.items():
            statement = pg_insert(model_aliases).values(alias=alias, model=model, source="catalog")
            await conn.execute(statement.on_conflict_do_update(
                index_elements=["alias"], set_={"model": model, "source": "catalog"},
                where=(model_aliases.c.model != model),
            ))
    return added


async def set_price(engine: AsyncEngine, version: PriceVersion, *, actor: str = "system") -> int:
    """A new version set by an operator; always a new row, even with equal prices."""
    async with engine.begin() as conn:
        version_id = await _insert_version(conn, version, unique_content=False)
        assert version_id is not None
        await record(conn, actor, "price.set", f"price:{version.model}", version=version_id,
                     tenant_id=version.tenant_id, max_output_tokens=version.max_output_tokens,
                     effective_from=version.effective_from, tiers=_tier_dicts(version.tiers),
                     service_tiers={name: _tier_dicts(t) for name, t in version.service_tiers.items()},
                     tools={name: str(price) for name, price in version.tools.items()},
                     cache_storage=None if version.cache_storage is None else str(version.cache_storage))
    return version_id


async def load_pricebook(conn: AsyncConnection) -> PriceBook:
    # One statement, so versions and their tiers come from the same snapshot.
    rows = await conn.execute(
        select(price_versions.c.id, price_versions.c.model, price_versions.c.effective_from,
               price_versions.c.source, price_versions.c.tenant_id, price_versions.c.max_output_tokens,
               price_versions.c.tools, price_versions.c.cache_storage, price_tiers)
        .join(price_tiers, price_tiers.c.version_id == price_versions.c.id)
        .order_by(price_versions.c.id, price_tiers.c.position)
    )
    heads: dict[int, dict] = {}
    tiers: dict[int, dict[str, list[Tier]]] = {}
    for row in rows:
        heads[row.id] = {"model": row.model, "effective_from": row.effective_from, "source": row.source,
                         "tenant_id": row.tenant_id, "max_output_tokens": row.max_output_tokens,
                         "tools": {name: Decimal(price) for name, price in (row.tools or {}).items()},
                         "cache_storage": row.cache_storage}
        tiers.setdefault(row.id, {}).setdefault(row.service_tier, []).append(Tier(
            up_to_input_tokens=row.up_to_input_tokens, input=row.input, output=row.output,
            cached=row.cached, cache_write=row.cache_write, reasoning=row.reasoning,
        ))
    versions = []
    for vid, head in heads.items():
        by_service_tier = {name: tuple(t) for name, t in tiers[vid].items()}
        versions.append(PriceVersion(id=vid, tiers=by_service_tier.pop("default"), service_tiers=by_service_tier,
                                     **head))
    aliases = {row.alias: row.model for row in await conn.execute(select(model_aliases))}
    return PriceBook(versions, aliases)


async def prices_revision(conn: AsyncConnection) -> int:
    """The newest change to prices or aliases; the pricebook is reloaded when it moves."""
    newest = select(func.greatest(
        select(func.coalesce(func.max(price_versions.c.revision), 0)).scalar_subquery(),
        select(func.coalesce(func.max(model_aliases.c.revision), 0)).scalar_subquery(),
    ))
    return (await conn.execute(newest)).scalar_one()


async def apply_import(engine: AsyncEngine, plan: ImportPlan, *, actor: str = "system") -> int:
    """Write what `plan_import` found, in one transaction: its versions (each once, however
    often the import runs: by content) and aliases; returns the versions added."""
    added = 0
    async with engine.begin() as conn:
        for version in plan.versions:
            if await _insert_version(conn, version, unique_content=True) is not None:
                added += 1
        for alias, model in plan.aliases:
            statement = pg_insert(model_aliases).values(alias=alias, model=model, source=plan.source[:64])
            await conn.execute(statement.on_conflict_do_nothing(index_elements=["alias"]))
        await record(conn, actor, "price.import", "prices", source=plan.source, versions=added,
                     models=sorted({v.model for v in plan.versions}), aliases=len(plan.aliases))
    return added
