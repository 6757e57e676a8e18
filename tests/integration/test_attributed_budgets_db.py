"""Budgets inside a tenant, in the database: concurrent admissions under an end user's cap
never exceed it, while a tenant limit and ledger batches settle at the same time (no
deadlock); holds leave with their reservation on release, early settlement and expiry; an
entry settles its user, tag and run counters exactly once; a threshold records one alert."""

import asyncio
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import select, text

from billing.budgets import RunRequest, Subject, tag_subject
from billing.db.budgets import create_run, get_run, list_budgets, set_budget
from billing.db.ledger import insert_entries
from billing.db.quota import admit, expire, release, settle
from billing.db.tables import alerts
from billing.ledger import CallContext, build_entry
from billing.quota import Estimate, period_start
from billing.usage import parse_usage
from tests.integration.test_quota_db import setup

D = Decimal
NOW = datetime.now(timezone.utc)
PERIOD = period_start(NOW)


def later() -> datetime:  # from the time the test runs, not the time the suite collected this module
    return datetime.now(timezone.utc) + timedelta(minutes=5)


def entry(tenant, key, price, request_id, tokens_in, tokens_out, user=None, tags=(), run=None):
    call = CallContext(request_id=request_id, tenant_id=tenant.id, key_id=key.id, endpoint="responses", stream=False,
                       started_at=NOW, price=price, quota_period=PERIOD, reserved=True, end_user=user, tags=tags,
                       run_budget=run)
    return build_entry(call, parse_usage({"input_tokens": tokens_in, "output_tokens": tokens_out}),
                       status="completed", upstream_response_id=None, finished_at=NOW, first_byte_ms=1)


async def scoped_counters(engine) -> dict:
    async with engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT s.kind, s.name, q.\"window\", q.spent_usd, q.reserved_usd, q.finished_usd, q.requests, "
            "q.reserved_requests FROM quota_usage q JOIN spend_subjects s ON s.id = q.scope_id "
            "WHERE q.scope = s.kind"))).all()
    return {(r.kind, r.name, r.window): tuple(r)[3:] for r in rows}


async def test_concurrent_calls_of_one_user_never_exceed_its_cap(engine):
    tenant, key, price = await setup(engine, budget=D("100"))
    await set_budget(engine, "q", Subject("user", None), "month", D("1.00"))
    estimate = Estimate(0, 0, D("0.03"))  # 33 fit into 1.00, not 34

    async def one(user):
        return await admit(engine, request_id=uuid.uuid4(), tenant_id=tenant.id, key_id=key.id, at=NOW,
                           estimate=estimate, expires_at=later(), user=user)

    async def batches():  # the ledger settling other calls of the tenant meanwhile
        for i in range(10):
            async with engine.begin() as conn:
                await insert_entries(conn, [entry(tenant, key, price, uuid.uuid4(), 10, 10, user="other")
                                            for _ in range(5)])

    results, _ = await asyncio.gather(asyncio.gather(*[one("ann") for _ in range(100)]), batches())
    admitted = [r for r in results if r.admitted]
    assert len(admitted) == 33
    assert {(r.refused, r.refused_subject) for r in results if not r.admitted} == {("user_budget", "ann")}
    counted = await scoped_counters(engine)
    assert counted[("user", "ann", "month")][:2] == (0, D("0.99"))
    assert ("user", "other", "month") not in counted  # no call of its was weighed: no counter
    assert min(r.scoped_remaining for r in admitted) == D("0.01")


async def test_holds_leave_with_their_reservation(engine):
    tenant, key, price = await setup(engine)
    await set_budget(engine, "q", tag_subject("project=search"), "month", D("1"))
    released, shrunk, stale = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for request_id, expires in ((released, later()), (shrunk, later()), (stale, NOW - timedelta(seconds=1))):
        assert (await admit(engine, request_id=request_id, tenant_id=tenant.id, key_id=key.id, at=NOW,
                            estimate=Estimate(0, 0, D("0.10")), expires_at=expires,
                            tags=["project=search"])).admitted
    assert (await scoped_counters(engine))[("tag", "project=search", "month")][1:] == (D("0.30"), 0, 0, 3)
    assert await release(engine, released)
    assert await settle(engine, shrunk, D("0.004"), 100)  # ended: holds what it cost, as finished
    assert await expire(engine) == 1
    assert (await scoped_counters(engine))[("tag", "project=search", "month")][1:] == (D("0.004"), D("0.004"), 0, 1)
    async with engine.begin() as conn:  # 4000 tokens at 1 USD per 1M
        await insert_entries(conn, [entry(tenant, key, price, shrunk, 3000, 1000, tags=(("project", "search"),))])
    async with engine.begin() as conn:
        await insert_entries(conn, [entry(tenant, key, price, shrunk, 3000, 1000, tags=(("project", "search"),))])
    assert (await scoped_counters(engine))[("tag", "project=search", "month")] == (D("0.004"), 0, 0, 1, 0)
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM reservation_holds"))).scalar_one() == 0


async def test_a_run_counts_every_entry_that_names_it(engine):
    tenant, key, price = await setup(engine)
    run = await create_run(engine, tenant.id, key.id, RunRequest(D("0.01"), NOW + timedelta(hours=1), "r"))
    admitted = await admit(engine, request_id=uuid.uuid4(), tenant_id=tenant.id, key_id=key.id, at=NOW,
                           estimate=Estimate(0, 0, D("0.02")), expires_at=later(), run=run.id)
    assert (admitted.admitted, admitted.refused, admitted.refusal_cause) == (False, "run_budget", "over_left")
    async with engine.begin() as conn:  # a replayed call that had no reservation counts all the same
        await insert_entries(conn, [entry(tenant, key, price, uuid.uuid4(), 6000, 2000, run=run.id)])
    shown = await get_run(engine, tenant.id, key.id, run.id)
    assert (shown.spent_usd, shown.held_usd, shown.requests) == (D("0.008"), 0, 1)
    unknown = await admit(engine, request_id=uuid.uuid4(), tenant_id=tenant.id, key_id=key.id + 1000, at=NOW,
                          estimate=Estimate(0, 0, D("0.001")), expires_at=later(), run=run.id)
    assert (unknown.refused, unknown.refusal_cause) == ("run_budget", "unknown")


async def test_a_threshold_records_one_alert_per_subject_and_period(engine):
    tenant, key, price = await setup(engine)
    await set_budget(engine, "q", tag_subject("project=ads"), "month", D("0.01"))
    for _ in range(3):  # 0.004 each: 40%, 80%, 120%
        async with engine.begin() as conn:
            await insert_entries(conn, [entry(tenant, key, price, uuid.uuid4(), 3000, 1000,
                                              tags=(("project", "ads"),))])
    async with engine.connect() as conn:
        recorded = (await conn.execute(select(alerts.c.scope, alerts.c.threshold, alerts.c.limit_kind)
                                       .order_by(alerts.c.threshold))).all()
    thresholds = [t for t in tenant.alert_thresholds if t <= 120]
    assert [tuple(r) for r in recorded] == [("tag", t, "budget") for t in thresholds]
    [budget] = await list_budgets(engine, "q")
    assert budget.spent_usd == D("0.012")
