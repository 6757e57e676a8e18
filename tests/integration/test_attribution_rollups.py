"""The end-user and tag roll-ups (migration 0024) on real PostgreSQL: after live batches,
replays, late bookings, hand-written rows of odd JSON and a backfill, each roll-up row
equals the entries summed at its grain, every report by user or tag read from a roll-up
equals the same report scanned from the entries, and every total equals the ledger."""

import asyncio
import importlib
import itertools
import uuid
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import func, insert, select, text

from billing.db.engine import make_engine
from billing.db.keys import issue_key
from billing.db.ledger import insert_rows
from billing.db.reports import monthly_report
from billing.db.tables import ledger_daily_tags, ledger_daily_users, ledger_entries
from billing.db.tenants import create_tenant
from billing.report_dimensions import SCAN

NOW = datetime.now(timezone.utc).replace(microsecond=0)
MONTH = NOW.strftime("%Y-%m")
MIGRATION = importlib.import_module("migrations.versions.0024_attribution_rollups")
COUNTED = ("requests", "input_tokens", "output_tokens", "cost_total", "charge_total", "late_requests",
           "late_charge", "estimated_requests")


def entry_row(tenant_id: int, key_id: int, *, end_user=None, tags=None, charge="0.0123", started_at=None,
              model="m", service_tier=None, estimated=False) -> dict:
    charge = Decimal(charge)
    return {"request_id": uuid.uuid4(), "tenant_id": tenant_id, "key_id": key_id, "endpoint": "responses",
            "requested_model": model, "model": model, "price_version_id": None, "upstream_response_id": None,
            "status": "completed", "stream": False, "started_at": started_at or NOW, "finished_at": started_at or NOW,
            "first_byte_ms": 1, "input_tokens": 100, "cached_tokens": 10, "cache_write_tokens": 0,
            "output_tokens": 7, "reasoning_tokens": 0, "service_tier": service_tier, "tool_calls": {"web_search": 2},
            "cache_storage_tokens": 0, "cache_storage_hours": 0, "cost_uncached_input": charge / 2,
            "cost_cached_input": Decimal(0), "cost_cache_write": Decimal(0), "cost_output": charge / 2,
            "cost_reasoning": Decimal(0), "cost_tool_calls": Decimal(0), "cost_cache_storage": Decimal(0),
            "cost_total": charge, "price_multiplier": Decimal(1), "charge_price_version_id": None,
            "charge_total": charge * 3, "quota_period": None, "cache_savings": Decimal("0.001"),
            "estimated": estimated, "upstream": "default", "usage_flags": [], "raw_usage": {}, "end_user": end_user,
            "tags": tags, "run_budget": None}


async def write(engine, rows: list[dict]) -> int:
    async with engine.begin() as conn:
        return await insert_rows(conn, rows)


def _tag_pairs(tags) -> list[tuple[str, str]]:
    """What a roll-up counts of an entry's tags: an object's pairs with a value, as text."""
    if not isinstance(tags, dict):
        return []
    shown = {True: "true", False: "false"}
    return [(k, shown.get(v, v) if isinstance(v, bool) else str(v)) for k, v in tags.items()
            if v is not None and isinstance(v, (str, int, bool))]


async def _entries(conn) -> list[dict]:
    led = ledger_entries
    day = func.coalesce(led.c.booked_on, func.date(func.timezone("UTC", led.c.started_at)))
    rows = await conn.execute(select(led, day.label("day")))
    return [r._asdict() for r in rows]


def _expected(entries: list[dict], grain) -> dict[tuple, dict]:
    sums: dict[tuple, dict] = defaultdict(lambda: dict.fromkeys(COUNTED, 0))
    for e in entries:
        for key in grain(e):
            total = sums[key]
            total["requests"] += 1
            for f in COUNTED[1:5] + ("estimated_requests",):
                total[f] += e[f] if f != "estimated_requests" else int(e["estimated"])
            total["late_requests"] += e["booked_on"] is not None
            total["late_charge"] += e["charge_total"] if e["booked_on"] is not None else 0
    return dict(sums)


def _base(e) -> tuple:
    return (e["day"], e["tenant_id"], e["key_id"], e["model"], e["service_tier"] or "default")


async def assert_rollups_equal_the_entries(engine) -> None:
    async with engine.connect() as conn:
        entries = await _entries(conn)
        users = {(r.day, r.tenant_id, r.key_id, r.model, r.service_tier, r.end_user): {f: getattr(r, f) for f in COUNTED}
                 for r in await conn.execute(select(ledger_daily_users))}
        tags = {(r.day, r.tenant_id, r.key_id, r.model, r.service_tier, r.tag_name, r.tag_value):
                {f: getattr(r, f) for f in COUNTED} for r in await conn.execute(select(ledger_daily_tags))}
    assert users == _expected(entries, lambda e: [(*_base(e), e["end_user"])])
    assert tags == _expected(entries, lambda e: [(*_base(e), *pair) for pair in _tag_pairs(e["tags"])])


def _plain(report) -> list[dict]:
    return [{**r.group, "requests": r.requests, **r.tokens, **r.costs, "cost": r.cost, "charge": r.charge,
             "savings": r.cache_savings, "late_requests": r.late_requests, "late_charge": r.late_charge,
             "estimated_requests": r.estimated_requests, "estimated_charge": r.estimated_charge} for r in report.rows]


def _key(row: dict) -> tuple:
    """A row as comparable text: None apart from any string, amounts by value (0.0000 is 0)."""
    shown = lambda v: "\0none" if v is None else format(v.normalize(), "f") if isinstance(v, Decimal) else str(v)  # noqa: E731
    return tuple(sorted((k, shown(v)) for k, v in row.items()))


async def assert_reports_agree(engine, groupings, tenant=None) -> None:
    async with engine.connect() as conn:
        led = ledger_entries
        count, charge = (await conn.execute(select(func.count(), func.coalesce(func.sum(led.c.charge_total), 0))
                                            )).one() if tenant is None else (None, None)
    for by in groupings:
        read = await monthly_report(engine, MONTH, tenant=tenant, by=by)
        scanned = await monthly_report(engine, MONTH, tenant=tenant, by=by, source=SCAN)
        assert sorted(map(_key, _plain(read))) == sorted(map(_key, _plain(scanned))), by
        if tenant is None:
            assert read.total_requests == count and read.total_usage_charge == charge, by


GROUPINGS = [("user",), ("tag:project",), ("tag:env",), ("tag:absent",), ("user", "model"), ("tag:project", "model"),
             ("tenant", "tag:env"), ("tenant", "key", "model", "service_tier", "day", "user"),
             ("day", "key", "tag:project"), ("user", "tag:project"), ("tag:project", "tag:env")]


async def test_rollups_equal_the_entries_through_batches_replays_late_rows_and_a_backfill(engine):
    alpha, beta = await create_tenant(engine, "alpha"), await create_tenant(engine, "beta")
    keys = {t.id: [(await issue_key(engine, t.name)).id for _ in range(2)] for t in (alpha, beta)}
    rows = []
    for i, (tenant, user, tags) in enumerate(itertools.product(
            (alpha, beta), (None, "alice", "bob", "ü 用户"),
            (None, {}, {"project": "search"}, {"project": "ads", "env": "prod", "team": "x"}, {"env": "dev"}))):
        rows.append(entry_row(tenant.id, keys[tenant.id][i % 2], end_user=user, tags=tags,
                              charge=f"0.{i + 1:04d}7", model=("m", "n")[i % 2],
                              service_tier=(None, "flex", "default")[i % 3], estimated=i % 5 == 0,
                              started_at=NOW - timedelta(seconds=i)))
    assert await write(engine, rows[:20]) == 20
    assert await write(engine, rows[10:]) == len(rows) - 20  # a replay overlapping a new batch
    assert await write(engine, rows) == 0  # a replay of everything: nothing twice
    # Hand-written rows: tags that are no object, a null or number value, and a late booking.
    odd = [entry_row(alpha.id, keys[alpha.id][0], tags=t) for t in (["project", "x"], "project", 5)]
    odd += [entry_row(alpha.id, keys[alpha.id][1], end_user="alice", tags={"project": None, "env": 3})]
    assert await write(engine, odd) == len(odd)
    late = entry_row(beta.id, keys[beta.id][0], end_user="carol", tags={"project": "search"},
                     started_at=NOW - timedelta(days=40))
    async with engine.begin() as conn:
        await conn.execute(text("SELECT ledger_ensure_partition(:at)"), {"at": late["started_at"]})
        await conn.execute(insert(ledger_entries).values(**late, booked_on=NOW.date()))

    await assert_rollups_equal_the_entries(engine)
    await assert_reports_agree(engine, GROUPINGS)
    await assert_reports_agree(engine, GROUPINGS, tenant="beta")
    report = await monthly_report(engine, MONTH, by=("tag:project",))
    assert {r.group["tag:project"] for r in report.rows} == {"search", "ads", None}
    assert [r.late_requests for r in report.rows if r.group["tag:project"] == "search"] == [1]

    async with engine.begin() as conn:  # the migration's backfill builds the same rows
        await conn.execute(text("TRUNCATE ledger_daily_users, ledger_daily_tags"))
        for statement in MIGRATION.roll_ups("ledger_entries"):
            await conn.exec_driver_sql(statement)
    await assert_rollups_equal_the_entries(engine)
    await assert_reports_agree(engine, GROUPINGS)


async def test_concurrent_writers_of_the_same_users_and_tags_neither_deadlock_nor_lose_a_row(engine):
    tenant = await create_tenant(engine, "busy")
    key = (await issue_key(engine, "busy")).id
    batches = [[entry_row(tenant.id, key, end_user=f"u{(w + i) % 3}", tags={"project": f"p{i % 2}", "env": "prod"},
                          started_at=NOW - timedelta(seconds=i)) for i in range(40)] for w in range(4)]
    assert sum(await asyncio.gather(*[write(engine, b) for b in batches])) == 160
    await assert_rollups_equal_the_entries(engine)


# Any JSON where the tags are, any printable text as the end user.
JSON = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                    max_leaves=6)
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=12)
ENTRIES = st.lists(st.tuples(st.none() | TEXT, st.none() | JSON | st.dictionaries(st.sampled_from(["k", "j"]) | TEXT,
                                                                                   st.none() | TEXT, max_size=3),
                             st.decimals(min_value=0, max_value=100, places=9, allow_nan=False)),
                   min_size=1, max_size=8)


async def _arbitrary(database_url: str, entries) -> None:
    engine = make_engine(database_url, pool_size=1)
    try:
        name = f"h-{uuid.uuid4().hex[:12]}"
        tenant = await create_tenant(engine, name)
        key = (await issue_key(engine, name)).id
        rows = [entry_row(tenant.id, key, end_user=user, tags=tags, charge=str(charge)) for user, tags, charge in entries]
        await write(engine, rows)
        expected = sum((r["charge_total"] for r in rows), Decimal(0))
        for by in (("user",), ("tag:k",), ("user", "tag:k"), ("tag:j", "model")):
            report = await monthly_report(engine, MONTH, tenant=name, by=by)
            assert report.total_usage_charge == expected and report.total_requests == len(rows), by
        await assert_reports_agree(engine, [("user",), ("tag:k",), ("tag:k", "key")], tenant=name)
    finally:
        await engine.dispose()


@settings(max_examples=20, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(entries=ENTRIES)
def test_any_user_and_tag_json_is_stored_and_reported_whole(database_url, entries):
    asyncio.run(_arbitrary(database_url, entries))
