"""The quota functions on real PostgreSQL: atomic admission under concurrency, settlement by
the ledger (exactly once), release, expiry, month boundaries."""

import asyncio
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import func, select, text

from billing.db.keys import issue_key
from billing.db.ledger import insert_entries
from billing.db.prices import load_pricebook, set_price
from billing.db.quota import admit, counters, expire, release
from billing.db.tables import ledger_entries, reservations
from billing.db.tenants import create_tenant
from billing.ledger import CallContext, build_entry
from billing.pricing import PriceVersion, Tier
from billing.quota import Estimate, period_start
from billing.usage import parse_usage

D = Decimal
NOW = datetime.now(timezone.utc)
PERIOD = period_start(NOW)


async def setup(engine, budget=None, quota=None, key_budget=None):
    tenant = await create_tenant(engine, "q", monthly_budget_usd=budget, monthly_token_quota=quota)
    key = await issue_key(engine, "q", monthly_budget_usd=key_budget)
    await set_price(engine, PriceVersion("m", NOW - timedelta(days=40), (Tier(D("1"), D("1")),), source="t"))
    async with engine.connect() as conn:
        price = (await load_pricebook(conn)).resolve("m", NOW)
    return tenant, key, price


def entry(tenant, key, price, request_id, tokens_in, tokens_out, started=NOW, period=PERIOD):
    call = CallContext(request_id=request_id, tenant_id=tenant.id, key_id=key.id, endpoint="responses", stream=False,
                       started_at=started, price=price, quota_period=period, reserved=True)
    return build_entry(call, parse_usage({"input_tokens": tokens_in, "output_tokens": tokens_out}),
                       status="completed", upstream_response_id=None, finished_at=started, first_byte_ms=1)


async def test_concurrent_admissions_never_exceed_the_budget(engine):
    tenant, key, _ = await setup(engine, budget=D("1.00"))
    estimate = Estimate(0, 0, D("0.03"))  # 33 fit into 1.00, not 34

    async def one():
        return await admit(engine, request_id=uuid.uuid4(), tenant_id=tenant.id, key_id=key.id, at=NOW,
                           estimate=estimate, expires_at=datetime.now(timezone.utc) + timedelta(minutes=5))

    results = await asyncio.gather(*[one() for _ in range(100)])
    admitted = [r for r in results if r.admitted]
    assert len(admitted) == 33
    assert {r.refused for r in results if not r.admitted} == {"tenant_budget"}
    now = await counters(engine, "tenant", tenant.id, PERIOD)
    assert now.reserved_usd == D("0.99") and now.spent_usd == 0
    assert min(r.budget_remaining for r in admitted) == D("0.01")


async def test_settlement_by_the_ledger_is_exact_and_happens_once(engine):
    tenant, key, price = await setup(engine, budget=D("1.00"), quota=1_000_000)
    request_id = uuid.uuid4()
    admission = await admit(engine, request_id=request_id, tenant_id=tenant.id, key_id=key.id, at=NOW,
                            estimate=Estimate(5000, 5000, D("0.01")), expires_at=datetime.now(timezone.utc) + timedelta(minutes=5))
    assert admission.admitted and admission.tokens_remaining == 1_000_000 - 10_000
    settled = entry(tenant, key, price, request_id, 1200, 300)  # 1500 tokens at 1 USD/1M = 0.0015
    async with engine.begin() as conn:
        await insert_entries(conn, [settled])
    async with engine.begin() as conn:
        await insert_entries(conn, [settled])  # a replay: no second entry, no second settlement
    for scope, scope_id in (("tenant", tenant.id), ("key", key.id)):
        now = await counters(engine, scope, scope_id, PERIOD)
        assert (now.spent_usd, now.spent_tokens, now.reserved_usd, now.reserved_tokens) == (D("0.0015"), 1500, 0, 0)
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(reservations))).scalar_one() == 0


async def test_release_and_expiry_give_reservations_back(engine):
    tenant, key, _ = await setup(engine, budget=D("0.10"), key_budget=D("0.04"))
    first, second = uuid.uuid4(), uuid.uuid4()
    estimate = Estimate(0, 0, D("0.03"))
    assert (await admit(engine, request_id=first, tenant_id=tenant.id, key_id=key.id, at=NOW,
                        estimate=estimate, expires_at=datetime.now(timezone.utc) + timedelta(minutes=5))).admitted
    refused = await admit(engine, request_id=second, tenant_id=tenant.id, key_id=key.id, at=NOW,
                          estimate=estimate, expires_at=datetime.now(timezone.utc) + timedelta(minutes=5))
    assert not refused.admitted and refused.refused == "key_budget"  # 0.06 fits the tenant, not the key
    assert await release(engine, first) is True and await release(engine, first) is False
    stale = uuid.uuid4()
    assert (await admit(engine, request_id=stale, tenant_id=tenant.id, key_id=key.id, at=NOW,
                        estimate=estimate, expires_at=NOW - timedelta(seconds=1))).admitted  # already past expiry
    assert await expire(engine) == 1
    now = await counters(engine, "key", key.id, PERIOD)
    assert now.reserved_usd == 0


async def test_a_call_counts_in_the_month_it_started(engine):
    tenant, key, price = await setup(engine, budget=D("100"))
    october = datetime(2026, 10, 1, tzinfo=timezone.utc)
    late = datetime(2026, 10, 31, 23, 59, 59, tzinfo=timezone.utc)
    request_id = uuid.uuid4()
    await admit(engine, request_id=request_id, tenant_id=tenant.id, key_id=key.id, at=late,
                estimate=Estimate(1, 1, D("0.001")), expires_at=datetime.now(timezone.utc) + timedelta(minutes=5))
    in_flight = entry(tenant, key, price, request_id, 100, 100, started=late, period=october)
    in_flight = in_flight.__class__(**{**in_flight.__dict__, "finished_at": late + timedelta(seconds=5)})
    november = entry(tenant, key, price, uuid.uuid4(), 10, 10, started=late + timedelta(seconds=2),
                     period=datetime(2026, 11, 1, tzinfo=timezone.utc))
    async with engine.begin() as conn:
        await insert_entries(conn, [in_flight, november])
    assert (await counters(engine, "tenant", tenant.id, october)).spent_tokens == 200
    assert (await counters(engine, "tenant", tenant.id, datetime(2026, 11, 1, tzinfo=timezone.utc))).spent_tokens == 20


async def test_thresholds_record_one_alert_each_per_month(engine):
    tenant, key, price = await setup(engine, budget=D("0.001"))  # 1000 tokens at 1 USD/1M
    for tokens in (300, 300, 300, 300):  # 30%, 60%, 90%, 120%
        async with engine.begin() as conn:
            await insert_entries(conn, [entry(tenant, key, price, uuid.uuid4(), tokens, 0)])
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT threshold, spent FROM alerts ORDER BY threshold"))).all()
    assert [(r.threshold, r.spent) for r in rows] == [(50, D("0.0006")), (80, D("0.0009")), (100, D("0.0012"))]
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(ledger_entries))).scalar_one() == 4


async def test_an_admission_rolled_back_by_a_deadlock_or_serialization_failure_is_tried_again(engine):
    """The server aborts the first attempt with SQLSTATE 40001 (a one-shot trigger counting on
    a sequence, which a rollback does not undo): the second attempt reserves, once."""
    tenant, key, _ = await setup(engine, budget=D("1.00"))
    async with engine.begin() as conn:
        await conn.execute(text("CREATE SEQUENCE admit_attempts"))
        await conn.execute(text(
            "CREATE FUNCTION fail_first_reservation() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF nextval('admit_attempts') = 1 THEN "
            "RAISE EXCEPTION 'simulated conflict' USING ERRCODE = 'serialization_failure'; END IF; "
            "RETURN NEW; END $$"))
        await conn.execute(text("CREATE TRIGGER fail_first BEFORE INSERT ON reservations "
                                "FOR EACH ROW EXECUTE FUNCTION fail_first_reservation()"))
    try:
        request_id = uuid.uuid4()
        admission = await admit(engine, request_id=request_id, tenant_id=tenant.id, key_id=key.id, at=NOW,
                                estimate=Estimate(0, 0, D("0.03")), expires_at=datetime.now(timezone.utc) + timedelta(minutes=5))
        assert admission.admitted
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT last_value FROM admit_attempts"))).scalar_one() == 2
            assert (await conn.execute(select(func.count()).select_from(reservations))).scalar_one() == 1
        assert (await counters(engine, "tenant", tenant.id, PERIOD)).reserved_usd == D("0.03")
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("DROP TRIGGER fail_first ON reservations"))
            await conn.execute(text("DROP FUNCTION fail_first_reservation()"))
            await conn.execute(text("DROP SEQUENCE admit_attempts"))
