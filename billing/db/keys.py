"""API keys in the database: issue, list, revoke, and the change feed the proxy mirrors."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from billing.db.tables import api_keys, tenants
from billing.db.tenants import NotFound, get_tenant
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


async def issue_key(engine: AsyncEngine, tenant_name: str, *, label: str | None = None,
                    expires_at: datetime | None = None) -> IssuedKey:
    tenant = await get_tenant(engine, tenant_name)
    minted = mint_key()
    async with engine.begin() as conn:
        row = (await conn.execute(
            insert(api_keys)
            .values(tenant_id=tenant.id, secret_hash=minted.secret_hash, display_prefix=minted.display_prefix,
                    label=label, expires_at=expires_at)
            .returning(api_keys.c.id, api_keys.c.created_at)
        )).one()
    return IssuedKey(row.id, minted.secret, minted.display_prefix, tenant.name, label, expires_at, row.created_at)


async def list_keys(engine: AsyncEngine, tenant_name: str | None = None) -> list[KeyListing]:
    query = (
        select(api_keys.c.id, api_keys.c.display_prefix, tenants.c.name.label("tenant"), api_keys.c.label,
               api_keys.c.status, api_keys.c.created_at, api_keys.c.expires_at, api_keys.c.revoked_at)
        .join(tenants, tenants.c.id == api_keys.c.tenant_id)
        .order_by(api_keys.c.id)
    )
    if tenant_name is not None:
        query = query.where(tenants.c.name == tenant_name)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [KeyListing(*row) for row in rows]


async def revoke_key(engine: AsyncEngine, key_id: int) -> None:
    async with engine.begin() as conn:
        result = await conn.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id)
            .values(status="revoked", revoked_at=func.coalesce(api_keys.c.revoked_at, func.now()))
            .returning(api_keys.c.id)
        )
        if result.one_or_none() is None:
            raise NotFound(f"no key with id {key_id}")


async def grants_changed_since(conn: AsyncConnection, revision: int) -> tuple[list[tuple[str, KeyGrant]], int]:
    """Keys whose own row or whose tenant changed after `revision`, and the newest revision seen."""
    rows = (await conn.execute(
        select(api_keys.c.id, api_keys.c.secret_hash, api_keys.c.status, api_keys.c.expires_at,
               api_keys.c.revision.label("key_revision"), tenants.c.id.label("tenant_id"),
               tenants.c.name, tenants.c.status.label("tenant_status"), tenants.c.price_multiplier,
               tenants.c.revision.label("tenant_revision"))
        .join(tenants, tenants.c.id == api_keys.c.tenant_id)
        .where(or_(api_keys.c.revision > revision, tenants.c.revision > revision))
    )).all()
    newest = revision
    grants = []
    for row in rows:
        newest = max(newest, row.key_revision, row.tenant_revision)
        grants.append((row.secret_hash, KeyGrant(
            key_id=row.id, tenant_id=row.tenant_id, tenant_name=row.name, key_status=row.status,
            tenant_status=row.tenant_status, expires_at=row.expires_at, price_multiplier=row.price_multiplier,
        )))
    return grants, newest


__all__ = ["IssuedKey", "KeyListing", "NotFound", "issue_key", "list_keys", "revoke_key", "grants_changed_since"]
