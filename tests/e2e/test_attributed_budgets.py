"""Budgets inside a team, through the proxy with the official SDK and real PostgreSQL: every
end user's cap and a named user's, a tag value's budget, and run budgets a key makes with
`POST /v1/budgets`. Each refuses only the calls it weighs, names itself in the refusal,
and counts exactly what the ledger holds."""

import asyncio
from decimal import Decimal

import aiohttp
import openai
import pytest
from sqlalchemy import func, select, text

from billing.budgets import Subject, tag_subject, user_subject
from billing.db.budgets import list_budgets, remove_budget, set_budget
from billing.db.keys import issue_key
from billing.db.tables import ledger_entries
from billing.db.tenants import update_tenant
from tests.e2e.test_admin_api import admin, admin_proxy  # noqa: F401  (fixtures)

EVERY_USER = Subject("user", None)


async def settled(proxy, engine):
    """Every call's entry written (and so settled) before the test looks at the counters."""
    for _ in range(100):
        await proxy.state.writer.flush(timeout=5)
        async with engine.connect() as conn:
            pending = (await conn.execute(text("SELECT count(*) FROM reservations"))).scalar_one()
        if pending == 0:
            return
        await asyncio.sleep(0.05)


async def spent_by(engine, column, value) -> Decimal:
    async with engine.connect() as conn:
        return (await conn.execute(select(func.coalesce(func.sum(ledger_entries.c.charge_total), 0))
                                   .where(column == value))).scalar_one()


async def until_refused(call, limit=200):
    """Call until a budget is spent; the number of calls that went through, and the refusal.
    A call refused only for what calls in flight hold (the previous call's, not yet settled)
    is retried, as the SDK would."""
    made = 0
    for _ in range(limit):
        try:
            await call()
            made += 1
        except openai.RateLimitError as refusal:
            if refusal.body["code"] != "rate_limit_exceeded":
                return made, refusal
            await asyncio.sleep(0.05)
    raise AssertionError(f"{limit} calls, none refused")


async def mirror_knows(proxy, tenant_key, budgeted):
    """The proxy's mirror of keys has seen what the tenant budgets (it syncs within a second)."""
    await proxy.state.mirror.sync(full=True)
    grant = next(g for g in proxy.state.mirror._grants.values() if g.key_id == tenant_key.key_id)
    assert grant.budgeted_attribution == budgeted


def a_call(client, **kwargs):
    return lambda: client.responses.create(model="gpt-5-mini", input="hi", max_output_tokens=64, **kwargs)


async def test_every_users_cap_refuses_that_user_alone(proxy, client, engine, tenant_key):
    cap = Decimal("0.0005")
    await set_budget(engine, "team-a", EVERY_USER, "month", cap)
    await mirror_knows(proxy, tenant_key, ("user",))
    made, refusal = await until_refused(a_call(client, safety_identifier="dora"))
    assert made >= 1
    assert refusal.body["code"] == "insufficient_quota"
    assert "end user `dora`" in refusal.body["message"]
    assert refusal.response.headers["x-billing-refused-by"] == "user_budget"
    await settled(proxy, engine)
    assert Decimal(0) < await spent_by(engine, ledger_entries.c.end_user, "dora") <= cap
    # the others go on: another user, and calls for no user
    await a_call(client, user="erin")()
    await a_call(client)()
    [budget] = await list_budgets(engine, "team-a")
    assert (budget.kind, budget.subject, budget.amount_usd, budget.spent_usd) == ("user", None, cap, None)


async def test_a_named_users_own_budget_replaces_the_cap(proxy, client, engine, tenant_key):
    await set_budget(engine, "team-a", EVERY_USER, "month", Decimal("0.0001"))
    await set_budget(engine, "team-a", user_subject("boss"), "month", Decimal("1"))
    await mirror_knows(proxy, tenant_key, ("user",))
    for _ in range(3):
        await a_call(client, safety_identifier="boss")()
    await settled(proxy, engine)
    budgets = {b.subject: b for b in await list_budgets(engine, "team-a")}
    assert budgets["boss"].spent_usd == await spent_by(engine, ledger_entries.c.end_user, "boss")
    assert budgets["boss"].held_usd == 0
    await remove_budget(engine, "team-a", user_subject("boss"), "month")
    await mirror_knows(proxy, tenant_key, ("user",))
    made, refusal = await until_refused(a_call(client, safety_identifier="boss"))
    assert made == 0  # the every-user cap is far below what boss spent already


async def test_a_tag_budget_counts_what_was_spent_before_it(proxy, client, engine, tenant_key):
    for _ in range(2):
        await a_call(client, metadata={"project": "search"})()
    await settled(proxy, engine)
    before = await spent_by(engine, ledger_entries.c.tags["project"].astext, "search")
    budget = await set_budget(engine, "team-a", tag_subject("project=search"), "month", before * 3)
    assert budget.spent_usd == before  # counted in from the ledger
    await mirror_knows(proxy, tenant_key, ("tag:project",))
    made, refusal = await until_refused(a_call(client, extra_headers={"X-Billing-Tags": "project=search"}))
    assert "tag `project=search`" in refusal.body["message"]
    assert refusal.response.headers["x-billing-refused-by"] == "tag_budget"
    await a_call(client, metadata={"project": "ads"})()  # another project goes on
    await settled(proxy, engine)
    [budget] = await list_budgets(engine, "team-a")
    assert budget.spent_usd == await spent_by(engine, ledger_entries.c.tags["project"].astext, "search")
    assert budget.spent_usd <= before * 3


async def post(proxy, secret, path, body=None, method="POST"):
    async with aiohttp.ClientSession() as http:
        async with http.request(method, proxy.url + path, json=body,
                                headers={"Authorization": f"Bearer {secret}"}) as reply:
            return reply.status, await reply.json()


async def test_a_run_budget_stops_that_run_alone(proxy, client, engine, tenant_key):
    status, run = await post(proxy, tenant_key.secret, "/v1/budgets",
                             {"amount_usd": "0.0004", "expires_in": 3600, "label": "eval run 7"})
    assert status == 200, run
    assert run["id"].startswith("budget_") and run["status"] == "active" and run["label"] == "eval run 7"
    made, refusal = await until_refused(a_call(client, extra_headers={"X-Billing-Budget": run["id"]}))
    assert made >= 1 and f"run budget `{run['id']}`" in refusal.body["message"]
    assert refusal.response.headers["x-billing-refused-by"] == "run_budget"
    await a_call(client)()  # the key itself goes on
    await settled(proxy, engine)
    status, shown = await post(proxy, tenant_key.secret, f"/v1/budgets/{run['id']}", method="GET")
    assert status == 200
    assert Decimal(str(shown["spent_usd"])) == await spent_by(engine, ledger_entries.c.run_budget, run["id"])
    assert shown["requests"] == made and Decimal(str(shown["spent_usd"])) <= Decimal("0.0004")
    status, closed = await post(proxy, tenant_key.secret, f"/v1/budgets/{run['id']}", method="DELETE")
    assert closed["status"] == "closed"


async def test_another_keys_run_budget_is_unknown(proxy, client, engine, tenant_key, stranger):
    other = await issue_key(engine, "team-a", label="other")
    _, run = await post(proxy, other.secret, "/v1/budgets", {"amount_usd": 5, "expires_in": 600})
    with pytest.raises(openai.BadRequestError) as refused:
        await a_call(client, extra_headers={"X-Billing-Budget": run["id"]})()
    assert refused.value.body["code"] == "budget_not_found"
    status, _ = await post(proxy, tenant_key.secret, f"/v1/budgets/{run['id']}", method="GET")
    assert status == 404
    status, listed = await post(proxy, tenant_key.secret, "/v1/budgets", method="GET")
    assert listed["data"] == []


async def test_a_closed_run_budget_refuses(proxy, client, tenant_key):
    _, run = await post(proxy, tenant_key.secret, "/v1/budgets", {"amount_usd": 5, "expires_in": 600})
    await post(proxy, tenant_key.secret, f"/v1/budgets/{run['id']}", method="DELETE")
    with pytest.raises(openai.RateLimitError) as refused:
        await a_call(client, extra_headers={"X-Billing-Budget": run["id"]})()
    assert "has ended" in refused.value.body["message"]


@pytest.mark.parametrize("body", [{}, {"amount_usd": "-1", "expires_in": 600}, {"amount_usd": 1},
                                  {"amount_usd": 1, "expires_in": 10}, {"amount_usd": 1.5e400, "expires_in": 600},
                                  {"amount_usd": 1, "expires_in": 600, "owner": "x"}, [], "x",
                                  {"amount_usd": 1, "expires_in": 1e999999}])
async def test_a_bad_run_budget_is_a_400_naming_it(proxy, tenant_key, body):
    status, reply = await post(proxy, tenant_key.secret, "/v1/budgets", body)
    assert status == 400, reply
    assert reply["error"]["param"]


async def test_tenant_limits_and_a_user_cap_both_hold(proxy, client, engine, tenant_key):
    await update_tenant(engine, "team-a", monthly_budget_usd=Decimal("10"))
    await set_budget(engine, "team-a", EVERY_USER, "day", Decimal("0.0003"))
    await mirror_knows(proxy, tenant_key, ("user",))
    made, refusal = await until_refused(a_call(client, safety_identifier="fay"))
    assert "daily budget of end user `fay`" in refusal.body["message"]
    await settled(proxy, engine)
    async with engine.connect() as conn:
        counters = (await conn.execute(text(
            "SELECT scope, \"window\", spent_usd, reserved_usd, reserved_requests FROM quota_usage "
            "WHERE scope IN ('tenant', 'user') AND \"window\" IN ('day', 'month') ORDER BY 1, 2"))).all()
    fay = await spent_by(engine, ledger_entries.c.end_user, "fay")
    assert [tuple(c) for c in counters] == [("tenant", "day", fay, 0, 0), ("tenant", "month", fay, 0, 0),
                                            ("user", "day", fay, 0, 0), ("user", "month", fay, 0, 0)]


async def test_the_admin_api_sets_lists_and_removes_budgets(admin, tenant_key):
    path = f"/admin/tenants/{tenant_key.tenant_id}/budgets"
    status, made = await admin.call("PUT", path + "/tags", {"tag": "project=search", "per": "month",
                                                            "amount_usd": "100"})
    assert status == 200, made
    assert (made["subject"], made["amount_usd"], made["spent_usd"]) == ("project=search", "100.00", "0.00")
    status, _ = await admin.call("PUT", path + "/users", {"per": "day", "amount_usd": "2.50"})
    assert status == 200
    status, _ = await admin.call("PUT", path + "/users", {"user": "alice", "per": "day", "amount_usd": "9"})
    assert status == 200
    status, bad = await admin.call("PUT", path + "/tags", {"tag": "no-equals", "per": "month", "amount_usd": "1"})
    assert status == 400
    status, listed = await admin.call("GET", path)
    assert [(b["kind"], b["subject"], b["window"]) for b in listed["data"]] == [
        ("user", None, "day"), ("user", "alice", "day"), ("tag", "project=search", "month")]
    status, left = await admin.call("POST", path + "/users/remove", {"per": "day"})
    assert status == 200 and len(left["data"]) == 2
    status, again = await admin.call("POST", path + "/users/remove", {"per": "day"})  # a retry: same answer
    assert (status, again) == (200, left)
    status, _ = await admin.call("POST", "/admin/tenants/999999/budgets/users/remove", {"per": "day"})
    assert status == 404
    status, runs = await admin.call("GET", f"/admin/tenants/{tenant_key.tenant_id}/run-budgets")
    assert status == 200 and runs["data"] == []
