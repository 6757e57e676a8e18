"""Monthly reports, read from the daily rollups (kept in the ledger's own transactions), and
the same totals recomputed from raw ledger entries, for reconciliation."""

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import Numeric, String, Text, case, cast, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncEngine

from billing.db.months import list_adjustments
from billing.db.tables import (api_keys, ledger_daily, ledger_daily_tags, ledger_daily_users, ledger_entries,
                               quota_usage, tenants)
from billing.report import COST_FIELDS, COUNT_FIELDS, AdjustmentLine, Report, ReportRow, parse_month, with_untagged
from billing.report_dimensions import DAILY, TAGS, USER, USERS, source_for, tag_name

SUMMED = (*COUNT_FIELDS, *COST_FIELDS, "cost_total", "charge_total", "cache_savings")
ESTIMATED = ("estimated_requests", "estimated_charge",  # calls that ended without usage, priced from an estimate
             "late_requests", "late_charge")  # calls of a closed month, booked on the day they arrived


def _grouped(source, day_column, by: tuple[str, ...], attributed: dict | None = None):
    columns = {
        "tenant": tenants.c.name,
        "key": api_keys.c.display_prefix,
        "model": source.c.model,
        "service_tier": source.c.service_tier,
        "day": cast(day_column, String),
        **(attributed or {}),
    }
    groups = [columns[d].label(d) for d in by]
    if "key" in by:
        groups.append(api_keys.c.id.label("key_id"))
    return groups


def _summed(columns: dict) -> list:
    return [func.coalesce(func.sum(columns["requests"]), 0).label("requests"),
            *[func.coalesce(func.sum(columns[f]), 0).label(f) for f in SUMMED + ESTIMATED]]


async def _rollup_rows(conn, daily, by: tuple[str, ...], start: datetime, end: datetime, tenant: str | None,
                       attributed: dict | None = None, where=None) -> list[ReportRow]:
    """A report's rows from one of the daily roll-ups (all of them share ledger_daily's key
    and counters)."""
    groups = _grouped(daily, daily.c.day, by, attributed)
    query = (
        select(*groups, *_summed(daily.c))
        .select_from(daily.join(tenants, tenants.c.id == daily.c.tenant_id)
                     .join(api_keys, api_keys.c.id == daily.c.key_id))
        .where(daily.c.day >= start.date(), daily.c.day < end.date())
    )
    if where is not None:
        query = query.where(where)
    if tenant is not None:
        query = query.where(tenants.c.name == tenant)
    if groups:
        query = query.group_by(*groups).order_by(*groups)
    return [_row(r, by) for r in (await conn.execute(query)).all() if groups or r.requests]


def _in_month(led, start: datetime, end: datetime):
    """The entries a month's roll-ups count: started in it (the partitions it prunes to), or
    booked late into it."""
    return (((led.c.started_at >= start) & (led.c.started_at < end) & led.c.booked_on.is_(None))
            | ((led.c.booked_on >= start.date()) & (led.c.booked_on < end.date())))


async def _scanned_rows(conn, by: tuple[str, ...], start: datetime, end: datetime,
                        tenant: str | None) -> list[ReportRow]:
    """A report's rows straight from the entries, for groupings no roll-up serves."""
    led = ledger_entries
    day = func.coalesce(led.c.booked_on, func.date(func.timezone("UTC", led.c.started_at)))  # as the rollups book it
    late = led.c.booked_on.isnot(None)
    tags = case((func.jsonb_typeof(led.c.tags) == "object", led.c.tags))  # any other JSON: no tags
    attributed = {"service_tier": func.coalesce(led.c.service_tier, "default"), USER: led.c.end_user,
                  **{d: tags[tag_name(d)].astext for d in by if tag_name(d) is not None}}
    groups = _grouped(led, day, by, attributed)
    summed = [func.coalesce(func.sum(_ENTRY_TOOL_CALLS if f == "tool_calls" else led.c[f]), 0).label(f)
              for f in SUMMED]
    query = (select(*groups, func.count().label("requests"), *summed,
                    func.count().filter(led.c.estimated).label("estimated_requests"),
                    func.coalesce(func.sum(led.c.charge_total).filter(led.c.estimated), 0).label("estimated_charge"),
                    func.count().filter(late).label("late_requests"),
                    func.coalesce(func.sum(led.c.charge_total).filter(late), 0).label("late_charge"))
             .select_from(led.join(tenants, tenants.c.id == led.c.tenant_id)
                          .join(api_keys, api_keys.c.id == led.c.key_id))
             .where(_in_month(led, start, end)))
    if tenant is not None:
        query = query.where(tenants.c.name == tenant)
    if groups:
        query = query.group_by(*groups).order_by(*groups)
    return [_row(r, by) for r in (await conn.execute(query)).all() if groups or r.requests]


async def report_rows(conn, month: str, by: tuple[str, ...], tenant: str | None = None,
                      source: str | None = None) -> list[ReportRow]:
    """The rows of a month's report, from the roll-up that serves `by` (or `source`: SCAN
    to read the entries, as reconciling and the benchmark do)."""
    start, end = parse_month(month)
    source = source or source_for(by)
    if source == DAILY:
        return await _rollup_rows(conn, ledger_daily, by, start, end, tenant)
    if source == USERS:
        users = ledger_daily_users
        return await _rollup_rows(conn, users, by, start, end, tenant, {USER: users.c.end_user})
    if source == TAGS:
        dimension = next(d for d in by if tag_name(d) is not None)
        others = tuple(d for d in by if d != dimension)
        tags = ledger_daily_tags
        tagged = await _rollup_rows(conn, tags, by, start, end, tenant, {dimension: tags.c.tag_value},
                                    tags.c.tag_name == tag_name(dimension))
        every = await _rollup_rows(conn, ledger_daily, others, start, end, tenant)
        return with_untagged(every, tagged, dimension, by)
    return await _scanned_rows(conn, by, start, end, tenant)


async def monthly_report(engine: AsyncEngine, month: str, *, tenant: str | None = None,
                         by: tuple[str, ...] = (), source: str | None = None) -> Report:
    async with engine.connect() as conn:
        rows = await report_rows(conn, month, by, tenant, source)
        adjustments = await list_adjustments(conn, month, tenant)
    return Report(month=month, tenant=tenant, by=by, rows=rows,
                  adjustments=tuple(AdjustmentLine(a.id, a.tenant, a.amount_usd, a.reason, a.created_at)
                                    for a in adjustments))


async def tag_value_totals(engine: AsyncEngine, month: str, tenant: str) -> list[tuple[str, str, int, Decimal]]:
    """(tag name, value, calls, charge) of a tenant's month, from the tag roll-up."""
    start, end = parse_month(month)
    tags = ledger_daily_tags
    query = (select(tags.c.tag_name, tags.c.tag_value, func.sum(tags.c.requests), func.sum(tags.c.charge_total))
             .join(tenants, tenants.c.id == tags.c.tenant_id)
             .where(tenants.c.name == tenant, tags.c.day >= start.date(), tags.c.day < end.date())
             .group_by(tags.c.tag_name, tags.c.tag_value).order_by(tags.c.tag_name, tags.c.tag_value))
    async with engine.connect() as conn:
        return [(r[0], r[1], int(r[2]), r[3]) for r in await conn.execute(query)]


def _row(row, by: tuple[str, ...]) -> ReportRow:
    values = row._asdict()  # one conversion; attribute access per field is slow on big reports
    group = {d: values[d] for d in by}
    if "key" in by:
        group["key_id"] = values["key_id"]
    return ReportRow(group=group, requests=int(values["requests"]),
                     tokens={f: int(values[f]) for f in COUNT_FIELDS}, costs={f: values[f] for f in COST_FIELDS},
                     cost=values["cost_total"], charge=values["charge_total"], cache_savings=values["cache_savings"],
                     estimated_requests=int(values["estimated_requests"]), estimated_charge=values["estimated_charge"],
                     late_requests=int(values["late_requests"]), late_charge=values["late_charge"])


# An entry keeps its calls per tool as JSON; its rollup keeps their sum.
_ENTRY_TOOL_CALLS = literal_column(
    "(SELECT coalesce(sum(value::bigint), 0) FROM jsonb_each_text(ledger_entries.tool_calls))")


async def ledger_totals(engine: AsyncEngine, start: datetime, end: datetime) -> dict[tuple, dict]:
    """Per (tenant, key, model, day, service tier): sums straight from the ledger entries."""
    led = ledger_entries
    day = func.coalesce(led.c.booked_on, func.date(func.timezone("UTC", led.c.started_at)))  # as the rollups book it
    late = led.c.booked_on.isnot(None)
    tier = func.coalesce(led.c.service_tier, "default")
    summed = [func.sum(_ENTRY_TOOL_CALLS if f == "tool_calls" else led.c[f]).label(f) for f in SUMMED]
    query = (select(led.c.tenant_id, led.c.key_id, led.c.model, cast(day, String).label("day"), tier.label("tier"),
                    func.count().label("requests"), *summed,
                    func.count().filter(led.c.estimated).label("estimated_requests"),
                    func.coalesce(func.sum(led.c.charge_total).filter(led.c.estimated), 0).label("estimated_charge"),
                    func.count().filter(late).label("late_requests"),
                    func.coalesce(func.sum(led.c.charge_total).filter(late), 0).label("late_charge"))
             .where(_in_month(led, start, end))
             .group_by(led.c.tenant_id, led.c.key_id, led.c.model, day, tier))
    async with engine.connect() as conn:
        return {(r.tenant_id, r.key_id, r.model, r.day, r.tier): {"requests": r.requests,
                                                          **{f: getattr(r, f) for f in SUMMED + ESTIMATED}}
                for r in await conn.execute(query)}


async def rollup_totals(engine: AsyncEngine, start: datetime, end: datetime) -> dict[tuple, dict]:
    """The same, as the rollups have them."""
    daily = ledger_daily
    query = select(daily).where(daily.c.day >= start.date(), daily.c.day < end.date())
    async with engine.connect() as conn:
        return {(r.tenant_id, r.key_id, r.model, str(r.day), r.service_tier): {"requests": r.requests,
                                                               **{f: getattr(r, f) for f in SUMMED + ESTIMATED}}
                for r in await conn.execute(query)}


async def quota_comparison(engine: AsyncEngine, month: str) -> tuple[dict, dict]:
    """For each tenant and key: spent per the quota counters, and per the ledger entries,
    over the tenant's own calendar month `month` (in its time zone)."""
    year, number = (int(part) for part in month.split("-"))
    async with engine.connect() as conn:
        zones = {r.id: r.time_zone for r in await conn.execute(select(tenants.c.id, tenants.c.time_zone))}
        periods = {tenant_id: datetime(year, number, 1, tzinfo=ZoneInfo(zone)) for tenant_id, zone in zones.items()}
        counted, summed = {}, {}
        for tenant_id, period in periods.items():
            led = ledger_entries
            utc_month = func.timezone("UTC", func.date_trunc("month", func.timezone("UTC", led.c.started_at)))
            in_period = func.coalesce(led.c.quota_period, utc_month) == period
            for scope, column in (("tenant", led.c.tenant_id), ("key", led.c.key_id)):
                rows = await conn.execute(
                    select(column.label("scope_id"), func.sum(led.c.charge_total).label("usd"),
                           func.sum(led.c.input_tokens + led.c.output_tokens).label("tokens"))
                    .where(led.c.tenant_id == tenant_id, in_period).group_by(column))
                for r in rows:
                    summed[(scope, r.scope_id)] = {"spent_usd": r.usd, "spent_tokens": r.tokens}
            key_ids = select(api_keys.c.id).where(api_keys.c.tenant_id == tenant_id)
            rows = await conn.execute(
                select(quota_usage).where(quota_usage.c.window == "month", quota_usage.c.period_start == period).where(
                    ((quota_usage.c.scope == "tenant") & (quota_usage.c.scope_id == tenant_id))
                    | ((quota_usage.c.scope == "key") & quota_usage.c.scope_id.in_(key_ids))))
            for r in rows:
                counted[(r.scope, r.scope_id)] = {"spent_usd": r.spent_usd, "spent_tokens": r.spent_tokens}
    return summed, counted


# Splits of a usage block kept in `raw_usage`, by measure: the Responses and the Chat shape.
USAGE_DETAILS = {
    "input_audio_tokens": (("input_tokens_details", "audio_tokens"), ("prompt_tokens_details", "audio_tokens")),
    "output_audio_tokens": (("output_tokens_details", "audio_tokens"), ("completion_tokens_details", "audio_tokens")),
    "input_image_tokens": (("input_tokens_details", "image_tokens"), ("prompt_tokens_details", "image_tokens")),
    "output_image_tokens": (("output_tokens_details", "image_tokens"), ("completion_tokens_details", "image_tokens")),
}


def _usage_detail(raw, paths):
    """The first of `paths` in the usage block that holds a whole number, else 0 (the block is
    the upstream's, kept as it came: any JSON)."""
    value = func.coalesce(*(raw[outer][inner] for outer, inner in paths))
    return case((func.jsonb_typeof(value) == "number", cast(cast(value, Text), Numeric)), else_=0)


async def upstream_day_model_totals(engine: AsyncEngine, start: datetime, end: datetime, upstream: str
                                    ) -> dict[tuple[str, str], dict]:
    """Per (UTC day of use, model) of one upstream's calls, straight from the ledger entries
    (not the rollups: an entry deleted by hand must show): requests, tokens, and the upstream
    cost split into tokens, built-in tool calls and cache storage."""
    led = ledger_entries
    day = cast(func.date(func.timezone("UTC", led.c.started_at)), String)
    token_cost = (led.c.cost_uncached_input + led.c.cost_cached_input + led.c.cost_cache_write + led.c.cost_output
                  + led.c.cost_reasoning)
    query = (select(day.label("day"), led.c.model, func.count().label("requests"),
                    *[func.sum(led.c[f]).label(f) for f in ("input_tokens", "cached_tokens", "cache_write_tokens",
                                                            "output_tokens", "reasoning_tokens", "cost_tool_calls",
                                                            "cost_cache_storage")],
                    *[func.sum(_usage_detail(led.c.raw_usage, paths)).label(measure)
                      for measure, paths in USAGE_DETAILS.items()],
                    func.sum(token_cost).label("token_cost"))
             .where(led.c.started_at >= start, led.c.started_at < end, led.c.upstream == upstream)
             .group_by(day, led.c.model))
    async with engine.connect() as conn:
        return {(r.day, r.model): r._asdict() for r in await conn.execute(query)}
