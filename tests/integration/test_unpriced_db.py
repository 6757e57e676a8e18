"""Calls for unpriced models, counted in memory per day, tenant, key and model and added to
`unpriced_calls_daily`: flushes add up (from several processes at once too), keep the
first and last time seen, and a flush that fails keeps its counts for the next."""

import asyncio
from datetime import date, datetime, timedelta, timezone

import pytest

from billing.db.engine import make_engine
from billing.db.keys import issue_key
from billing.db.tenants import create_tenant
from billing.db.unpriced import unpriced_models
from billing.model_labels import MAX_DISTINCT, OTHER
from proxy.gateway.unpriced import UnpricedTally

DAY = datetime(2026, 12, 9, 10, 0, tzinfo=timezone.utc)
DECEMBER = (date(2026, 12, 1), date(2027, 1, 1))


async def _tenants(engine):
    a, b = await create_tenant(engine, "unpriced-a"), await create_tenant(engine, "unpriced-b")
    return (a.id, (await issue_key(engine, a.name)).id), (b.id, (await issue_key(engine, b.name)).id)


async def test_counts_add_up_across_flushes_and_processes(engine):
    (a, key_a), (b, key_b) = await _tenants(engine)
    first, second = UnpricedTally(), UnpricedTally()  # two replicas
    first.count(a, key_a, "gpt-6.2-sol", DAY + timedelta(minutes=5))
    first.count(a, key_a, "gpt-6.2-sol", DAY)
    second.count(b, key_b, "gpt-6.2-sol", DAY + timedelta(hours=2))
    second.count(b, key_b, "x" * 10_000, DAY)
    second.count(b, key_b, 'gpt"\n\x00', DAY)
    await asyncio.gather(first.flush(engine), second.flush(engine))
    first.count(a, key_a, "gpt-6.2-sol", DAY + timedelta(hours=3))
    first.count(a, key_a, "o5-mini", DAY + timedelta(days=1))
    await first.flush(engine)
    await first.flush(engine)  # nothing new: nothing added

    found = {m.model: m for m in await unpriced_models(engine, *DECEMBER)}
    assert list(found) == ["gpt-6.2-sol", OTHER, "o5-mini"]  # the most called first
    sol = found["gpt-6.2-sol"]
    assert (sol.calls, sol.tenants, sol.first_seen, sol.last_seen) == (
        4, ("unpriced-a", "unpriced-b"), DAY, DAY + timedelta(hours=3))
    assert (found[OTHER].calls, found[OTHER].tenants) == (2, ("unpriced-b",))
    only_a = await unpriced_models(engine, *DECEMBER, tenant="unpriced-a")
    assert [(m.model, m.calls) for m in only_a] == [("gpt-6.2-sol", 3), ("o5-mini", 1)]
    assert await unpriced_models(engine, date(2026, 11, 1), DECEMBER[0]) == []
    assert [m.model for m in await unpriced_models(engine, DECEMBER[0], date(2026, 12, 10))] == [
        "gpt-6.2-sol", OTHER]  # the days [first, last)


async def test_each_day_keeps_so_many_names_apart(engine):
    (a, key_a), _ = await _tenants(engine)
    tally = UnpricedTally()
    for n in range(MAX_DISTINCT + 50):  # a new name on every call
        tally.count(a, key_a, f"made-up-{n}", DAY)
    tally.count(a, key_a, "gpt-6.2-sol", DAY + timedelta(days=1))  # the next day starts afresh
    await tally.flush(engine)
    found = {m.model: m.calls for m in await unpriced_models(engine, *DECEMBER, limit=1000)}
    assert len(found) == MAX_DISTINCT + 2 and found[OTHER] == 50 and found["gpt-6.2-sol"] == 1


async def test_a_failed_flush_keeps_its_counts(engine, database_url):
    (a, key_a), _ = await _tenants(engine)
    tally = UnpricedTally()
    tally.count(a, key_a, "gpt-6.2-sol", DAY)
    unreachable = make_engine("postgresql://postgres@127.0.0.1:1/none", pool_size=1)
    try:
        with pytest.raises(OSError):
            await tally.flush(unreachable)
    finally:
        await unreachable.dispose()
    tally.count(a, key_a, "gpt-6.2-sol", DAY + timedelta(hours=1))
    await tally.flush(engine)
    [sol] = await unpriced_models(engine, *DECEMBER)
    assert (sol.calls, sol.first_seen, sol.last_seen) == (2, DAY, DAY + timedelta(hours=1))
