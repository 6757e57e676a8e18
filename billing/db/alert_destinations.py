"""A tenant's own alert destinations in the database; every change audited (the hook
itself never: it is a secret)."""

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from billing.alert_destinations import check_addresses, check_hook_url, shown_hook
from billing.db.audit import record
from billing.db.tables import alert_destinations
from billing.db.tenants import get_tenant

UNSET = object()  # leave unchanged


@dataclass(frozen=True)
class AlertDestinations:
    tenant: str
    slack_url: str | None  # shown as scheme and host only (`shown_hook`)
    emails: list[str]


async def get_destinations(engine: AsyncEngine, tenant_name: str | int) -> AlertDestinations:
    tenant = await get_tenant(engine, tenant_name)
    async with engine.connect() as conn:
        row = (await conn.execute(select(alert_destinations.c.slack_url, alert_destinations.c.emails)
                                  .where(alert_destinations.c.tenant_id == tenant.id))).one_or_none()
    return AlertDestinations(tenant.name, shown_hook(row.slack_url) if row else None, list(row.emails) if row else [])


async def set_destinations(engine: AsyncEngine, tenant_name: str | int, *, slack_url=UNSET, emails=UNSET,
                           actor: str = "system") -> AlertDestinations:
    """Set (or with None / [] clear) a tenant's Slack hook and email recipients."""
    changes = {}
    if slack_url is not UNSET:
        changes["slack_url"] = None if slack_url in (None, "") else check_hook_url(slack_url)
    if emails is not UNSET:
        changes["emails"] = check_addresses(list(emails or []))
    tenant = await get_tenant(engine, tenant_name)
    if changes:
        async with engine.begin() as conn:
            await conn.execute(insert(alert_destinations).values(tenant_id=tenant.id, **changes)
                               .on_conflict_do_update(index_elements=["tenant_id"],
                                                      set_={**changes, "updated_at": func.now()}))
            details = {"emails": changes["emails"]} if "emails" in changes else {}
            if "slack_url" in changes:
                details["slack"] = "set" if changes["slack_url"] else "cleared"
            await record(conn, actor, "tenant.alert_destinations", f"tenant:{tenant.id}", **details)
    return await get_destinations(engine, tenant.id)
