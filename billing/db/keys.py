"""API keys in the database: issue, list, update, rotate, revoke, and the change feed the
proxy mirrors. Secrets are minted here, returned once, and stored only as SHA-256."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from billing.db.audit import record
from billing.db.tables import api_key_secrets, api_keys, ledger_entries, tenants
from billing.db.tenants import UNSET, Conflict, NotFound, get_tenant
from billing.keys import KeyGrant, mint_key


@dataclass(frozen=True)
class IssuedKey:
    id: int
    secret: str  # shown once, never stored
    display_prefix: str
    tenant: str
    label: str | None
    expires_at: datetime | None
    created_at: datetime
    old_secret_valid_until: datetime | None = None  # after a rotation


@dataclass(frozen=True)
class KeyListing:
    id: int
    display_prefix: str
    tenant: str
    label: str | None
    status: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    allowed_models: list[str] | None
    monthly_budget_usd: Decimal | None
    last_used_at: datetime | None  # the start of its latest billed call
    daily_budget_usd: Decimal | None = None
    weekly_budget_usd: Decimal | None = None
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    max_concurrent: int | None = None
    max_call_usd: Decimal | None = None
    fit_floor_tokens: int | None = None
    daily_request_quota: int | None = None
    monthly_request_quota: int | None = None


# Limits of a key beside its monthly budget, set and changed like it (None clears one).
LIMITS = ("daily_budget_usd", "weekly_budget_usd", "requests_per_minute", "tokens_per_minute", "max_concurrent",
          "max_call_usd", "fit_floor_tokens", "daily_request_quota", "monthly_request_quota")


def _limits(limits: dict) -> dict:
    unknown = set(limits) - set(LIMITS)
    if unknown:
        raise TypeError(f"unknown key limits: {sorted(unknown)}")
    return {name: value for name, value in limits.items() if value is not UNSET}


async def _add_secret(conn: AsyncConnection, key_id: int):
    minted = mint_key()
    await conn.execute(insert(api_key_secrets).values(secret_hash=minted.secret_hash, key_id=key_id,
                                                      display_prefix=minted.display_prefix))
    return minted


async def issue_key(engine: AsyncEngine, tenant_name: str | int, *, label: str | None = None,
                    expires_at: datetime | None = None, allowed_models: list[str] | None = None,
                    monthly_budget_usd: Decimal | None = None, actor: str = "system", **limits) -> IssuedKey:
    """A new key of the tenant; `limits` are any of `LIMITS`."""
    limits = _limits(limits)
    tenant = await get_tenant(engine, tenant_name)
    async with engine.begin() as conn:
        row = (await conn.execute(
            insert(api_keys)
            .values(tenant_id=tenant.id, display_prefix="", label=label, expires_at=expires_at,
                    allowed_models=allowed_models, monthly_budget_usd=monthly_budget_usd, **limits)
            .returning(api_keys.c.id, api_keys.c.created_at)
        )).one()
        minted = await _add_secret(conn, row.id)
        await conn.execute(update(api_keys).where(api_keys.c.id == row.id).values(display_prefix=minted.display_prefix))
        await record(conn, actor, "key.issue", f"key:{row.id}", tenant=tenant.name, label=label,
                     prefix=minted.display_prefix, expires_at=expires_at, allowed_models=allowed_models,
                     monthly_budget_usd=monthly_budget_usd, **limits)
    return IssuedKey(row.id, minted.secret, minted.display_prefix, tenant.name, label, expires_at, row.created_at)


def _listing_query():
    last_used = (select(func.max(ledger_entries.c.started_at)).where(ledger_entries.c.key_id == api_keys.c.id)
                 .scalar_subquery())
    return (
        select(api_keys.c.id, api_keys.c.display_prefix, tenants.c.name.label("tenant"), api_keys.c.label,
               api_keys.c.status, api_keys.c.created_at, api_keys.c.expires_at, api_keys.c.revoked_at,
               api_keys.c.allowed_models, api_keys.c.monthly_budget_usd, last_used.label("last_used_at"),
               *(api_keys.c[name] for name in LIMITS))
        .join(tenants, tenants.c.id == api_keys.c.tenant_id)
        .order_by(api_keys.c.id)
    )


async def list_keys(engine: AsyncEngine, tenant: str | int | None = None) -> list[KeyListing]:
    query = _listing_query()
    if tenant is not None:
        query = query.where(tenants.c.id == tenant if isinstance(tenant, int) else tenants.c.name == tenant)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [KeyListing(*row) for row in rows]


async def get_key(engine: AsyncEngine, key_id: int) -> KeyListing:
    async with engine.connect() as conn:
        row = (await conn.execute(_listing_query().where(api_keys.c.id == key_id))).one_or_none()
    if row is None:
        raise NotFound(f"no key with id {key_id}")
    return KeyListing(*row)


async def update_key(engine: AsyncEngine, key_id: int, *, label=UNSET, expires_at=UNSET, allowed_models=UNSET,
                     monthly_budget_usd=UNSET, actor: str = "system", **limits) -> KeyListing:
    values = {c: v for c, v in (("label", label), ("expires_at", expires_at), ("allowed_models", allowed_models),
                                ("monthly_budget_usd", monthly_budget_usd)) if v is not UNSET} | _limits(limits)
    if values:
        async with engine.begin() as conn:
            found = (await conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(**values)
                                        .returning(api_keys.c.id))).one_or_none()
            if found is None:
                raise NotFound(f"no key with id {key_id}")
            await record(conn, actor, "key.update", f"key:{key_id}", **values)
    return await get_key(engine, key_id)


async def revoke_key(engine: AsyncEngine, key_id: int, *, actor: str = "system") -> KeyListing:
    async with engine.begin() as conn:
        found = (await conn.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id)
            .values(status="revoked", revoked_at=func.coalesce(api_keys.c.revoked_at, func.now()))
            .returning(api_keys.c.id)
        )).one_or_none()
        if found is None:
            raise NotFound(f"no key with id {key_id}")
        await record(conn, actor, "key.revoke", f"key:{key_id}")
    return await get_key(engine, key_id)


async def rotate_key(engine: AsyncEngine, key_id: int, *, grace: timedelta = timedelta(0),
                     actor: str = "system") -> IssuedKey:
    """A new secret for the same key (same id, tenant, limits); the current secret keeps
    working for `grace` (none by default)."""
    async with engine.begin() as conn:
        key = (await conn.execute(
            select(api_keys, tenants.c.name.label("tenant"))
            .join(tenants, tenants.c.id == api_keys.c.tenant_id)
            .where(api_keys.c.id == key_id)
            .with_for_update(of=api_keys)
        )).one_or_none()
        if key is None:
            raise NotFound(f"no key with id {key_id}")
        if key.status != "active":
            raise Conflict(f"key {key_id} is {key.status}; only an active key can be rotated")
        now = (await conn.execute(select(func.now()))).scalar_one()
        valid_until = now + grace
        await conn.execute(update(api_key_secrets)
                           .where(api_key_secrets.c.key_id == key_id)
                           .where(or_(api_key_secrets.c.valid_until.is_(None),
                                      api_key_secrets.c.valid_until > valid_until))
                           .values(valid_until=valid_until))
        minted = await _add_secret(conn, key_id)
        await conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(display_prefix=minted.display_prefix))
        await record(conn, actor, "key.rotate", f"key:{key_id}", prefix=minted.display_prefix,
                     old_secret_valid_until=valid_until)
    return IssuedKey(key_id, minted.secret, minted.display_prefix, key.tenant, key.label, key.expires_at,
                     key.created_at, old_secret_valid_until=valid_until)


async def grants_changed_since(conn: AsyncConnection, revision: int) -> tuple[list[tuple[str, KeyGrant]], int]:
    """Secrets whose own row, key or tenant changed after `revision`, and the newest revision seen."""
    rows = (await conn.execute(
        select(api_key_secrets.c.secret_hash, api_key_secrets.c.valid_until,
               api_key_secrets.c.revision.label("secret_revision"),
               api_keys.c.id, api_keys.c.status, api_keys.c.expires_at, api_keys.c.allowed_models,
               api_keys.c.monthly_budget_usd, api_keys.c.revision.label("key_revision"),
               tenants.c.id.label("tenant_id"), tenants.c.name, tenants.c.status.label("tenant_status"),
               tenants.c.price_multiplier, tenants.c.revision.label("tenant_revision"),
               tenants.c.monthly_budget_usd.label("tenant_budget"), tenants.c.monthly_token_quota,
               tenants.c.time_zone, api_keys.c.daily_budget_usd, api_keys.c.weekly_budget_usd,
               api_keys.c.requests_per_minute, api_keys.c.tokens_per_minute, api_keys.c.max_concurrent,
               tenants.c.daily_budget_usd.label("tenant_daily_budget"),
               tenants.c.weekly_budget_usd.label("tenant_weekly_budget"), tenants.c.daily_token_quota,
               tenants.c.weekly_token_quota, tenants.c.requests_per_minute.label("tenant_rpm"),
               tenants.c.tokens_per_minute.label("tenant_tpm"), tenants.c.prepaid, tenants.c.credit_usd,
               api_keys.c.max_call_usd, tenants.c.max_call_usd.label("tenant_max_call"), api_keys.c.fit_floor_tokens,
               tenants.c.fit_floor_tokens.label("tenant_fit_floor"), api_keys.c.daily_request_quota,
               api_keys.c.monthly_request_quota, tenants.c.daily_request_quota.label("tenant_daily_requests"),
               tenants.c.monthly_request_quota.label("tenant_monthly_requests"), tenants.c.enforcement,
               tenants.c.budgeted_attribution)
        .join(api_keys, api_keys.c.id == api_key_secrets.c.key_id)
        .join(tenants, tenants.c.id == api_keys.c.tenant_id)
        .where(or_(api_key_secrets.c.revision > revision, api_keys.c.revision > revision,
                   tenants.c.revision > revision))
    )).all()
    newest = revision
    grants = []
    for row in rows:
        newest = max(newest, row.secret_revision, row.key_revision, row.tenant_revision)
        grants.append((row.secret_hash, KeyGrant(
            key_id=row.id, tenant_id=row.tenant_id, tenant_name=row.name, key_status=row.status,
            tenant_status=row.tenant_status, expires_at=row.expires_at, price_multiplier=row.price_multiplier,
            secret_valid_until=row.valid_until,
            allowed_models=tuple(row.allowed_models) if row.allowed_models is not None else None,
            monthly_budget_usd=row.monthly_budget_usd, tenant_budget_usd=row.tenant_budget,
            tenant_token_quota=row.monthly_token_quota, time_zone=row.time_zone,
            daily_budget_usd=row.daily_budget_usd, weekly_budget_usd=row.weekly_budget_usd,
            requests_per_minute=row.requests_per_minute, tokens_per_minute=row.tokens_per_minute,
            max_concurrent=row.max_concurrent, tenant_daily_budget_usd=row.tenant_daily_budget,
            tenant_weekly_budget_usd=row.tenant_weekly_budget, tenant_daily_token_quota=row.daily_token_quota,
            tenant_weekly_token_quota=row.weekly_token_quota, tenant_requests_per_minute=row.tenant_rpm,
            tenant_tokens_per_minute=row.tenant_tpm, prepaid=row.prepaid, credit_usd=row.credit_usd,
            max_call_usd=row.max_call_usd, tenant_max_call_usd=row.tenant_max_call,
            fit_floor_tokens=row.fit_floor_tokens, tenant_fit_floor_tokens=row.tenant_fit_floor,
            daily_request_quota=row.daily_request_quota, monthly_request_quota=row.monthly_request_quota,
            tenant_daily_request_quota=row.tenant_daily_requests,
            tenant_monthly_request_quota=row.tenant_monthly_requests, enforcement=row.enforcement,
            budgeted_attribution=tuple(row.budgeted_attribution or ()),
        )))
    return grants, newest
