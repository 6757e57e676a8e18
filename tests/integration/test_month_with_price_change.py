"""A month spanning a price change and a markup: the report equals the sum of each entry
priced by its own version, to the last digit."""

import uuid
from datetime import datetime, timezone
from decimal import Decimal

from billing.db.ledger import insert_entries
from billing.db.prices import load_pricebook, set_price
from billing.db.reports import monthly_report
from billing.db.tenants import create_tenant
from billing.db.keys import issue_key
from billing.ledger import CallContext, build_entry
from billing.pricing import PriceVersion, Tier
from billing.usage import parse_usage

D = Decimal


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 10, day, hour, tzinfo=timezone.utc)


async def test_report_over_a_price_change_and_a_markup(engine):
    plain = await create_tenant(engine, "plain")
    resale = await create_tenant(engine, "resale", price_multiplier=D("1.2"))
    keys = {t.id: (await issue_key(engine, t.name)).id for t in (plain, resale)}
    await set_price(engine, PriceVersion("m", at(1, 0), (Tier(D("1.00"), D("4.00")),), source="test"))
    await set_price(engine, PriceVersion("m", at(16, 0), (Tier(D("2.00"), D("6.00"), cached=D("0.25")),),
                                         source="test"))
    async with engine.connect() as conn:
        book = await load_pricebook(conn)

    usage = parse_usage({"input_tokens": 3000, "input_tokens_details": {"cached_tokens": 1000},
                         "output_tokens": 500, "output_tokens_details": {"reasoning_tokens": 100}})
    # Before the change: 2000 x 1 + 1000 x 0.10 + 400 x 4 + 100 x 4, / 1M = 0.0041
    # After it:          2000 x 2 + 1000 x 0.25 + 400 x 6 + 100 x 6, / 1M = 0.00725
    calls = [(plain, at(3)), (plain, at(15, 23)), (plain, at(16)), (resale, at(10)), (resale, at(20))]
    expected_cost = D("0.0041") * 2 + D("0.00725") + D("0.0041") + D("0.00725")
    expected_charge = D("0.0041") * 2 + D("0.00725") + D("0.0041") * D("1.2") + D("0.00725") * D("1.2")
    entries = []
    for tenant, started in calls:
        call = CallContext(request_id=uuid.uuid4(), tenant_id=tenant.id, key_id=keys[tenant.id], endpoint="responses",
                           stream=False, started_at=started, price=book.resolve("m", started, tenant.id),
                           price_multiplier=tenant.price_multiplier)
        entries.append(build_entry(call, usage, status="completed", upstream_response_id=None, finished_at=started,
                                   first_byte_ms=1))
    async with engine.begin() as conn:
        await insert_entries(conn, entries)

    report = await monthly_report(engine, "2026-10")
    assert report.total_cost == expected_cost == D("0.0268")
    assert report.total_charge == expected_charge == D("0.02907")
    by_tenant = await monthly_report(engine, "2026-10", by=("tenant", "day"))
    assert by_tenant.total_cost == expected_cost and by_tenant.total_charge == expected_charge
    assert {r.group["tenant"] for r in by_tenant.rows} == {"plain", "resale"}
    assert (await monthly_report(engine, "2026-11")).rows == []
