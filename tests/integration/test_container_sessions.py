"""Container sessions in the database: a container bills once per 20-minute session per
tenant, whichever replica sees it, at the unit it was made as; two replies racing for one
container pay once; a retried claim by the same call still bills it; the session clock
runs from the start of the call that claimed it."""

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

from billing.db.container_sessions import ContainerCall, claim_sessions, owned_containers
from billing.db.engine import make_engine
from billing.db.tenants import create_tenant

START = datetime(2026, 12, 3, 12, tzinfo=timezone.utc)


def call(tenant_id, started, ended=None, request_id=None):
    return ContainerCall(tenant_id, request_id or uuid.uuid4(), started, ended or started)


def starting(known):
    return {container for container, (_, starts) in known.items() if starts}


async def test_once_per_session_and_tenant(engine):
    team, other = await create_tenant(engine, "team-a"), await create_tenant(engine, "team-b")
    made = await claim_sessions(engine, call(team.id, START), (("cntr_a", "container.64g"),))
    assert made == {"cntr_a": ("container.64g", True)}
    # 19 minutes later the session runs on: only the new container starts one; cntr_a, named by
    # its id (1g as the reply shows it), is known as what it was made as
    later = await claim_sessions(engine, call(team.id, START + timedelta(minutes=19)),
                                 (("cntr_a", "container.1g"), ("cntr_b", "container.4g")))
    assert later == {"cntr_a": ("container.64g", False), "cntr_b": ("container.4g", True)}
    # another tenant naming the same id pays for its own session
    assert starting(await claim_sessions(engine, call(other.id, START + timedelta(minutes=19)),
                                         (("cntr_a", "container.1g"),))) == {"cntr_a"}
    # 20 minutes after it began, cntr_a's session is over: a new one starts, still at 64g
    assert await claim_sessions(engine, call(team.id, START + timedelta(minutes=20)),
                                (("cntr_a", "container.1g"),)) == {"cntr_a": ("container.64g", True)}
    # a name that cannot be kept is paid for every time, as it is
    odd = (("", "container.1g"), ("x\x00y", "container.4g"), ("c" * 200, "container.1g"))
    assert await claim_sessions(engine, call(team.id, START), odd) == {c: (u, True) for c, u in odd}
    assert await claim_sessions(engine, call(team.id, START), ()) == {}
    assert await owned_containers(engine, team.id, ["cntr_a", "cntr_b", "cntr_x", "", "x\x00y"]) == {
        "cntr_a": "container.64g", "cntr_b": "container.4g"}
    assert await owned_containers(engine, other.id, ["cntr_b"]) == {}


async def test_the_session_runs_from_the_start_of_the_call_that_claimed_it(engine):
    team = await create_tenant(engine, "team-a")
    # a stream that ran 102 s: its session began when the call did, not when its reply ended
    first = call(team.id, START, START + timedelta(seconds=102))
    assert starting(await claim_sessions(engine, first, (("cntr_a", "container.4g"),))) == {"cntr_a"}
    # a call 19.5 minutes after that start, ending 20.5 minutes after it, may have used the
    # container after the session ended: it starts a new one
    second = call(team.id, START + timedelta(minutes=19, seconds=30), START + timedelta(minutes=20, seconds=30))
    assert starting(await claim_sessions(engine, second, (("cntr_a", "container.4g"),))) == {"cntr_a"}


async def test_a_retried_claim_by_the_same_call_still_bills(engine):
    team = await create_tenant(engine, "team-a")
    same = call(team.id, START)
    for _ in range(2):  # the claim committed, then the process died before the entry was written
        assert starting(await claim_sessions(engine, same, (("cntr_a", "container.1g"),))) == {"cntr_a"}
    assert starting(await claim_sessions(engine, call(team.id, START), (("cntr_a", "container.1g"),))) == set()


async def test_two_replicas_racing_for_one_container_pay_once(engine, database_url):
    team = await create_tenant(engine, "team-a")
    replicas = [make_engine(database_url, pool_size=2) for _ in range(2)]
    try:
        for round_ in range(10):
            at = START + timedelta(hours=round_)
            claimed = await asyncio.gather(*(claim_sessions(e, call(team.id, at), ((f"cntr_{round_}", "container.1g"),))
                                             for e in replicas))
            assert sorted(len(starting(c)) for c in claimed) == [0, 1]
    finally:
        for replica in replicas:
            await replica.dispose()
