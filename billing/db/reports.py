"""The monthly report query: sums over ledger entries, grouped as asked."""

from sqlalchemy import String, cast, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from billing.db.tables import api_keys, ledger_entries, tenants
from billing.report import COST_FIELDS, TOKEN_FIELDS, Report, ReportRow, parse_month


async def monthly_report(engine: AsyncEngine, month: str, *, tenant: str | None = None,
                         by: tuple[str, ...] = ()) -> Report:
    start, end = parse_month(month)
    led = ledger_entries
    group_columns = {
        "tenant": tenants.c.name.label("tenant"),
        "key": api_keys.c.display_prefix.label("key"),
        "model": led.c.model.label("model"),
        "day": cast(func.date(func.timezone("UTC", led.c.started_at)), String).label("day"),
    }
    groups = [group_columns[d] for d in by]
    if "key" in by:
        groups.append(api_keys.c.id.label("key_id"))
    query = (
        select(
            *groups,
            func.count().label("requests"),
            *[func.coalesce(func.sum(led.c[f]), 0).label(f) for f in TOKEN_FIELDS],
            *[func.coalesce(func.sum(led.c[f]), 0).label(f) for f in COST_FIELDS],
            func.coalesce(func.sum(led.c.cost_total), 0).label("cost_total"),
            func.coalesce(func.sum(led.c.charge_total), 0).label("charge_total"),
        )
        .select_from(led.join(tenants, tenants.c.id == led.c.tenant_id).join(api_keys, api_keys.c.id == led.c.key_id))
        .where(led.c.started_at >= start, led.c.started_at < end)
    )
    if tenant is not None:
        query = query.where(tenants.c.name == tenant)
    if groups:
        query = query.group_by(*groups).order_by(*groups)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    report_rows = []
    for row in rows:
        if not groups and row.requests == 0:
            continue
        group = {d: getattr(row, d) for d in by}
        if "key" in by:
            group["key_id"] = row.key_id
        report_rows.append(ReportRow(
            group=group,
            requests=row.requests,
            tokens={f: int(getattr(row, f)) for f in TOKEN_FIELDS},
            costs={f: getattr(row, f) for f in COST_FIELDS},
            cost=row.cost_total,
            charge=row.charge_total,
        ))
    return Report(month=month, tenant=tenant, by=by, rows=report_rows)
