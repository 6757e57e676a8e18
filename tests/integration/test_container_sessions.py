"""Container sessions in the database: a container bills once per 20-minute session per
tenant, whichever replica sees it, and two replies racing for one container pay once."""

import asyncio
from datetime import datetime, timedelta, timezone

from billing.db.container_sessions import claim_sessions
from billing.db.engine import make_engine
from billing.db.tenants import create_tenant

START = datetime(2026, 12, 3, 12, tzinfo=timezone.utc)


async def test_once_per_session_and_tenant(engine):
    team, other = await create_tenant(engine, "team-a"), await create_tenant(engine, "team-b")
    assert await claim_sessions(engine, team.id, ["cntr_a", "cntr_a"], START) == {"cntr_a"}
    # 19 minutes later the session runs on: only the new container starts one
    assert await claim_sessions(engine, team.id, ["cntr_a", "cntr_b"], START + timedelta(minutes=19)) == {"cntr_b"}
    # another tenant naming the same id pays for its own session
    assert await claim_sessions(engine, other.id, ["cntr_a"], START + timedelta(minutes=19)) == {"cntr_a"}
    # 20 minutes after it began, cntr_a's session is over: a new one starts
    assert await claim_sessions(engine, team.id, ["cntr_a"], START + timedelta(minutes=20)) == {"cntr_a"}
    # a name that cannot be kept is paid for every time
    assert await claim_sessions(engine, team.id, ["", "x\x00y", "c" * 200], START) == {"", "x\x00y", "c" * 200}
    assert await claim_sessions(engine, team.id, [], START) == set()


async def test_two_replicas_racing_for_one_container_pay_once(engine, database_url):
    team = await create_tenant(engine, "team-a")
    replicas = [make_engine(database_url, pool_size=2) for _ in range(2)]
    try:
        for round_ in range(10):
            at = START + timedelta(hours=round_)
            claimed = await asyncio.gather(*(claim_sessions(e, team.id, [f"cntr_{round_}"], at) for e in replicas))
            assert sorted(len(c) for c in claimed) == [0, 1]
    finally:
        for replica in replicas:
            await replica.dispose()
