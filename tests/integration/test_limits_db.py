"""The limit functions of migration 0013 on real PostgreSQL: days and weeks beside months
in the tenant's zone, early settlement of a finished call, prepaid credit, rate-limit
buckets and concurrency slots."""

import asyncio
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import text

from billing.db.credits import add_credit, credit_standing
from billing.db.keys import issue_key
from billing.db.ledger import insert_entries
from billing.db.quota import admit, counters, settle
from billing.db.rate_limits import claim_slot, give_back, return_slots, withdraw
from billing.db.tenants import create_tenant, update_tenant
from billing.quota import Estimate, next_period_start, period_start
from billing.rate_limit import Withdrawal
from tests.integration.test_quota_db import entry, setup

D = Decimal
UTC = timezone.utc
NOW = datetime.now(UTC)


def admit_now(engine, tenant, key, usd, at=NOW, tokens=0):
    return admit(engine, request_id=uuid.uuid4(), tenant_id=tenant.id, key_id=key.id, at=at,
                 estimate=Estimate(tokens, 0, D(usd)), expires_at=datetime.now(UTC) + timedelta(minutes=5))


@pytest.mark.parametrize("zone", ["UTC", "Asia/Tokyo", "America/New_York", "Australia/Lord_Howe"])
@pytest.mark.parametrize("at", [datetime(2026, 11, 1, 5, 30, tzinfo=UTC), datetime(2026, 3, 8, 6, 59, tzinfo=UTC),
                                datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC), NOW])
async def test_the_database_and_python_agree_on_periods(engine, zone, at):
    async with engine.connect() as conn:
        row = (await conn.execute(text("SELECT * FROM quota_periods(:at, :zone)"), {"at": at, "zone": zone})).one()
    for window in ("day", "week", "month"):
        start = period_start(at, zone, window)
        assert getattr(row, f"{window}_start") == start
        assert getattr(row, f"{window}_end") == next_period_start(start, zone, window)


async def test_a_daily_budget_refuses_before_the_monthly_one(engine):
    tenant, key, _ = await setup(engine, budget=D("10"))
    await update_tenant(engine, tenant.id, daily_budget_usd=D("1"))
    assert (await admit_now(engine, tenant, key, "0.6")).admitted
    refused = await admit_now(engine, tenant, key, "0.6")
    # 0.6 is only reserved, not spent: the rest of the day is held by a call in flight
    assert (refused.admitted, refused.refused, refused.held_by_calls_in_flight) == (False, "tenant_daily_budget", True)
    assert refused.resets_at == next_period_start(period_start(NOW, "UTC", "day"), "UTC", "day")
    assert refused.budget_remaining == D("0.4")  # the tightest of the day's 0.4 and the month's 9.4
    # tomorrow is another day, in the same month (or the next one: still within 10)
    assert (await admit_now(engine, tenant, key, "0.6", at=NOW + timedelta(days=1))).admitted


async def test_a_finished_call_holds_its_actual_charge_until_its_entry_settles_it(engine):
    tenant, key, price = await setup(engine, budget=D("1"))
    await update_tenant(engine, tenant.id, weekly_budget_usd=D("1"))
    request_id = uuid.uuid4()
    await admit(engine, request_id=request_id, tenant_id=tenant.id, key_id=key.id, at=NOW,
                estimate=Estimate(5000, 5000, D("0.01")), expires_at=datetime.now(timezone.utc) + timedelta(minutes=5))
    assert await settle(engine, request_id, D("0.0015"), 1500)
    for window in ("day", "week", "month"):
        held = await counters(engine, "tenant", tenant.id, period_start(NOW, "UTC", window), window)
        assert (held.reserved_usd, held.reserved_tokens, held.spent_usd) == (D("0.0015"), 1500, 0)
    async with engine.begin() as conn:
        await insert_entries(conn, [entry(tenant, key, price, request_id, 1200, 300)])
    assert not await settle(engine, request_id, D("0.0015"), 1500)  # the entry already settled it
    for window in ("day", "week", "month"):
        assert (await counters(engine, "tenant", tenant.id, period_start(NOW, "UTC", window), window)).reserved_usd == 0
    for scope, scope_id in (("tenant", tenant.id), ("key", key.id)):
        for window in ("day", "week", "month"):
            now = await counters(engine, scope, scope_id, period_start(NOW, "UTC", window), window)
            assert (now.spent_usd, now.spent_tokens, now.reserved_usd, now.reserved_tokens) == (D("0.0015"), 1500, 0, 0)


async def test_prepaid_credit_never_goes_below_zero(engine):
    tenant, key, price = await setup(engine)
    await update_tenant(engine, tenant.id, prepaid=True)
    refused = await admit_now(engine, tenant, key, "0.01")
    assert (refused.refused, refused.resets_at, refused.held_by_calls_in_flight) == ("tenant_credit", None, False)
    await add_credit(engine, tenant.id, D("0.05"), "first top-up")
    results = await asyncio.gather(*[admit_now(engine, tenant, key, "0.01") for _ in range(8)])
    assert sum(r.admitted for r in results) == 5
    standing = await credit_standing(engine, tenant.id)
    assert (standing.credited_usd, standing.reserved_usd, standing.balance_usd) == (D("0.05"), D("0.05"), 0)
    with pytest.raises(ValueError):
        await add_credit(engine, tenant.id, D("0"), "nothing")


async def test_rate_buckets_give_all_or_nothing_and_refill(engine):
    rpm, tpm = ("key", 1, "requests"), ("key", 1, "tokens")
    first = await withdraw(engine, [Withdrawal(rpm, 60, 1, 50), Withdrawal(tpm, 600, 100, 500)])
    assert {(t.key, t.granted) for t in first} == {(rpm, 50), (tpm, 500)}
    # 10 requests and 100 tokens left: asking for 150 tokens takes nothing from either
    refused = await withdraw(engine, [Withdrawal(rpm, 60, 1, 1), Withdrawal(tpm, 600, 150, 150)])
    assert {t.key: t.granted for t in refused} == {rpm: 0, tpm: 0}
    wait = {t.key: t.wait_seconds for t in refused}
    assert wait[rpm] == 0 and 4.5 < wait[tpm] <= 5.0  # 50 tokens short at 10 per second
    await give_back(engine, [(tpm, 600, 100)])
    assert {t.key: t.granted for t in await withdraw(engine, [Withdrawal(tpm, 600, 150, 150)])} == {tpm: 150}


async def test_concurrency_slots_are_capped_across_holders_and_expire(engine):
    await create_tenant(engine, "c")
    key = await issue_key(engine, "c")
    one, other = uuid.uuid4(), uuid.uuid4()
    assert await claim_slot(engine, key.id, one, 2, 30) and await claim_slot(engine, key.id, other, 2, 0.2)
    assert not await claim_slot(engine, key.id, one, 2, 30)
    await return_slots(engine, key.id, one, 1)
    assert await claim_slot(engine, key.id, one, 2, 30)
    await asyncio.sleep(0.3)  # the other holder died: its claim expired
    assert await claim_slot(engine, key.id, one, 3, 30)  # one holds 2 now
    assert await claim_slot(engine, key.id, other, 3, 30)  # the third
    assert not await claim_slot(engine, key.id, other, 3, 30)


async def test_a_refusal_tells_spent_from_held_by_calls_still_running(engine):
    tenant, key, _ = await setup(engine, budget=D("1"))
    running, finished = uuid.uuid4(), uuid.uuid4()
    for request_id in (running, finished):
        await admit(engine, request_id=request_id, tenant_id=tenant.id, key_id=key.id, at=NOW,
                    estimate=Estimate(0, 0, D("0.45")), expires_at=datetime.now(timezone.utc) + timedelta(minutes=5))
    held = await admit_now(engine, tenant, key, "0.2")
    assert (held.refused, held.held_by_calls_in_flight) == ("tenant_budget", True)  # both may cost less
    await settle(engine, finished, D("0.40"), 0)  # it ended: 0.40 is as good as spent
    assert (await admit_now(engine, tenant, key, "0.2")).held_by_calls_in_flight  # 0.40 + 0.2 fits once running ends
    spent = await admit_now(engine, tenant, key, "0.61")
    assert (spent.refused, spent.held_by_calls_in_flight) == ("tenant_budget", False)  # 0.40 + 0.61 > 1: final
