"""The ledger's statement-level settlement (migration 0015) on real PostgreSQL: four writers
insert overlapping batches of three tenants' entries (two time zones, two days, reserved and
not, some reservations already settled early) while early settlements run beside them. No
statement deadlocks, nothing is counted twice, and every quota counter and roll-up equals
what the ledger holds, exactly."""

import asyncio
import random
import uuid
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import text

from billing.db.keys import issue_key
from billing.db.ledger import insert_entries
from billing.db.prices import load_pricebook, set_price
from billing.db.quota import admit, settle
from billing.db.tenants import create_tenant
from billing.ledger import CallContext, LedgerEntry, build_entry
from billing.pricing import PriceVersion, Tier
from billing.quota import Estimate, period_start
from billing.usage import parse_usage

NOW = datetime.now(timezone.utc)
ZONES = {"utc-team": "UTC", "india-team": "Asia/Kolkata", "newfoundland-team": "America/St_Johns"}


async def _entries(engine, rng: random.Random) -> tuple[list[LedgerEntry], dict[int, str]]:
    await set_price(engine, PriceVersion("m", NOW - timedelta(days=40), (Tier(Decimal("1.25"), Decimal("10")),),
                                         source="test"))
    async with engine.connect() as conn:
        book = await load_pricebook(conn)
    keys, zones = [], {}
    for name, zone in ZONES.items():
        tenant = await create_tenant(engine, name, monthly_budget_usd=Decimal(1000), time_zone=zone)
        zones[tenant.id] = zone
        keys += [(tenant.id, (await issue_key(engine, name)).id) for _ in range(2)]
    entries = []
    for i in range(600):
        tenant_id, key_id = rng.choice(keys)
        started = NOW - timedelta(hours=rng.choice([0, 0, 20, 30]), seconds=rng.randrange(3600))
        call = CallContext(request_id=uuid.uuid4(), tenant_id=tenant_id, key_id=key_id, endpoint="responses",
                           stream=False, started_at=started, price=book.resolve("m", started),
                           quota_period=period_start(started, zones[tenant_id]), reserved=i % 2 == 0)
        usage = parse_usage({"input_tokens": rng.randrange(1, 5000), "output_tokens": rng.randrange(0, 2000)})
        entries.append(build_entry(call, usage, status="completed", upstream_response_id=f"resp_{i}",
                                   finished_at=started, first_byte_ms=1))
    return entries, zones


async def test_concurrent_batches_settle_every_counter_exactly_once(engine):
    rng = random.Random(18)
    entries, zones = await _entries(engine, rng)
    reserved = [e for i, e in enumerate(entries) if i % 2 == 0]
    for e in reserved:  # admitted as the proxy admits them: a worst case reserved at the call's start
        admission = await admit(engine, request_id=e.request_id, tenant_id=e.tenant_id, key_id=e.key_id,
                                at=e.started_at, estimate=Estimate(10_000, 7_000, Decimal("0.5")),
                                expires_at=NOW + timedelta(hours=1))
        assert admission.admitted
    for e in reserved[:100]:  # these calls ended a while ago: already shrunk to their cost
        assert await settle(engine, e.request_id, e.charge, e.usage.input_tokens + e.usage.output_tokens)

    # Four writers, each with random batches drawn from all entries (so batches overlap and
    # most entries arrive more than once), and early settlements racing them.
    async def writer(seed: int) -> None:
        own = random.Random(seed)
        pool = entries[:]
        own.shuffle(pool)
        for start in range(0, len(pool), 75):
            chunk = pool[start:start + own.randrange(1, 75)]
            async with engine.begin() as conn:
                await insert_entries(conn, chunk)
        async with engine.begin() as conn:  # whatever the random cuts left out
            await insert_entries(conn, pool)

    async def settler() -> None:
        for e in reserved[100:300]:
            await settle(engine, e.request_id, e.charge, e.usage.input_tokens + e.usage.output_tokens)

    await asyncio.gather(*(writer(seed) for seed in range(4)), settler())

    expected: dict[tuple, list] = defaultdict(lambda: [Decimal(0), 0])
    for e in entries:
        zone = zones[e.tenant_id]
        tokens = e.usage.input_tokens + e.usage.output_tokens
        for window in ("day", "week", "month"):
            for scope, scope_id in (("tenant", e.tenant_id), ("key", e.key_id)):
                cell = expected[(scope, scope_id, window, period_start(e.started_at, zone, window))]
                cell[0] += e.charge
                cell[1] += tokens
    async with engine.connect() as conn:
        ledger = (await conn.execute(text("SELECT count(*), sum(charge_total) FROM ledger_entries"))).one()
        rows = (await conn.execute(text(
            'SELECT scope, scope_id, "window", period_start, spent_usd, spent_tokens, reserved_usd, '
            "reserved_tokens, finished_usd, finished_tokens FROM quota_usage"))).all()
        daily = (await conn.execute(text("SELECT sum(requests), sum(charge_total), sum(input_tokens) "
                                         "FROM ledger_daily"))).one()
        owners = (await conn.execute(text("SELECT count(*) FROM response_owners"))).scalar_one()
        left = (await conn.execute(text("SELECT count(*) FROM reservations"))).scalar_one()
    assert ledger[0] == len(entries) and ledger[1] == sum(e.charge for e in entries)
    assert (daily[0], daily[1], daily[2]) == (len(entries), ledger[1], sum(e.usage.input_tokens for e in entries))
    assert owners == len(entries) and left == 0
    actual = {(r.scope, r.scope_id, r.window, r.period_start): [r.spent_usd, r.spent_tokens] for r in rows
              if r.spent_usd or r.spent_tokens}
    assert actual == {k: v for k, v in expected.items()}
    assert all(r.reserved_usd == r.reserved_tokens == r.finished_usd == r.finished_tokens == 0 for r in rows)
