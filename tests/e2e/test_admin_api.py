"""The admin HTTP API end to end: auth, tenants, keys (issue, rotate, revoke, allow-lists),
suspension, validation, audit, and the OpenAPI document."""

import asyncio
import time
from dataclasses import replace

import aiohttp
import openai
import pytest

from proxy.admin.operations import OPERATIONS
from proxy.app import create_app
from proxy.gateway.state import STATE
from tests.conftest import UPSTREAM_KEY
from tests.processes import environment, free_port, serve

ADMIN_TOKEN = "admin-" + "t" * 32


@pytest.fixture
async def admin_proxy(aiohttp_server, engine, database_url, proxy_settings):
    app = create_app(replace(proxy_settings, admin_token=ADMIN_TOKEN), database_url)
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/"), app


class Admin:
    def __init__(self, http: aiohttp.ClientSession, base: str, token: str | None = ADMIN_TOKEN):
        self.http, self.base = http, base
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def call(self, method: str, path: str, body=None, **params):
        async with self.http.request(method, self.base + path, json=body, params=params or None,
                                     headers=self.headers) as reply:
            return reply.status, await reply.json(content_type=None)


@pytest.fixture
async def admin(admin_proxy):
    async with aiohttp.ClientSession() as http:
        yield Admin(http, admin_proxy[0])


async def until_refused(client, model="gpt-4o-mini", timeout=2.0):
    started = time.monotonic()
    while True:
        try:
            await client.responses.create(model=model, input="hi")
        except openai.APIStatusError as error:
            return error, time.monotonic() - started
        assert time.monotonic() - started < timeout, "still accepted"
        await asyncio.sleep(0.02)


async def until_accepted(client, model="gpt-4o-mini", timeout=2.0) -> float:
    started = time.monotonic()
    while True:
        try:
            await client.responses.create(model=model, input="hi")
            return time.monotonic() - started
        except openai.PermissionDeniedError:
            assert time.monotonic() - started < timeout, "still refused"
            await asyncio.sleep(0.02)


async def test_admin_api_is_off_without_a_token_and_closed_to_tenant_keys(proxy, admin_proxy, tenant_key):
    async with aiohttp.ClientSession() as http:
        for path in ("/admin/tenants", "/admin/openapi.json", "/admin/nowhere"):
            async with http.get(proxy.url + path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as reply:
                assert reply.status == 404  # the proxy fixture has no admin token configured
        for token in (tenant_key.secret, "wrong", None):
            status, body = await Admin(http, admin_proxy[0], token).call("GET", "/admin/tenants")
            assert status == 401 and body["error"]["code"] == "invalid_admin_token"


async def test_key_lifecycle_through_the_admin_api(admin, admin_proxy):
    base = admin_proxy[0]
    status, tenant = await admin.call("POST", "/admin/tenants", {"name": "team-x", "monthly_budget_usd": "50.00"})
    assert status == 201 and tenant["monthly_budget_usd"] == "50.00" and tenant["status"] == "active"
    status, issued = await admin.call("POST", "/admin/keys", {"tenant_id": tenant["id"], "label": "ci",
                                                              "allowed_models": ["gpt-4o*", "seed-1-6"]})
    assert status == 201 and issued["key"].startswith("bpk_") and issued["prefix"] == issued["key"][:12]

    status, listing = await admin.call("GET", "/admin/keys", tenant_id=tenant["id"])
    assert status == 200 and issued["key"] not in str(listing)
    assert listing["data"][0]["display_prefix"] == issued["prefix"] and listing["data"][0]["last_used_at"] is None

    async with openai.AsyncOpenAI(base_url=base + "/v1", api_key=issued["key"], max_retries=0) as client:
        await client.responses.create(model="gpt-4o-mini", input="allowed by gpt-4o*")
        await client.responses.create(model="seed-1-6-250915", input="allowed: resolves to seed-1-6")
        with pytest.raises(openai.PermissionDeniedError) as denied:
            await client.responses.create(model="gpt-4.1", input="not on the list")
        assert denied.value.body["code"] == "model_not_allowed"

        # allow-list change takes effect at once
        status, _ = await admin.call("PATCH", f"/admin/keys/{issued['id']}", {"allowed_models": None})
        assert status == 200
        assert await until_accepted(client, model="gpt-4.1") < 1.5

        # suspension: 403 tenant_suspended; resume: back
        assert (await admin.call("POST", f"/admin/tenants/{tenant['id']}/suspend"))[0] == 200
        error, took = await until_refused(client)
        assert error.status_code == 403 and error.body["code"] == "tenant_suspended" and took < 1.5
        assert (await admin.call("POST", f"/admin/tenants/{tenant['id']}/resume"))[0] == 200
        assert await until_accepted(client) < 1.5

    # rotation with a grace period: both secrets work, the new one keeps the key id
    status, rotated = await admin.call("POST", f"/admin/keys/{issued['id']}/rotate", {"grace_seconds": 1})
    assert status == 200 and rotated["id"] == issued["id"] and rotated["key"] != issued["key"]
    async with openai.AsyncOpenAI(base_url=base + "/v1", api_key=issued["key"], max_retries=0) as old, \
            openai.AsyncOpenAI(base_url=base + "/v1", api_key=rotated["key"], max_retries=0) as new:
        await new.responses.create(model="gpt-4o-mini", input="new secret")
        await old.responses.create(model="gpt-4o-mini", input="old secret, in its grace period")
        error, _ = await until_refused(old, timeout=3.0)
        assert error.status_code == 401 and error.body["code"] == "invalid_api_key"
        await new.responses.create(model="gpt-4o-mini", input="new secret still fine")

        # rotation without grace: the old secret stops at once; revocation stops everything
        status, again = await admin.call("POST", f"/admin/keys/{issued['id']}/rotate")
        assert status == 200
        error, took = await until_refused(new)
        assert error.status_code == 401 and took < 1.5
        status, revoked = await admin.call("POST", f"/admin/keys/{issued['id']}/revoke")
        assert status == 200 and revoked["status"] == "revoked"
    async with openai.AsyncOpenAI(base_url=base + "/v1", api_key=again["key"], max_retries=0) as newest:
        error, took = await until_refused(newest)
        assert error.status_code == 401 and took < 1.5
    status, body = await admin.call("POST", f"/admin/keys/{issued['id']}/rotate")
    assert status == 409 and body["error"]["code"] == "conflict"

    status, shown = await admin.call("GET", f"/admin/keys/{issued['id']}")
    assert shown["last_used_at"] is not None and shown["status"] == "revoked"

    status, audit = await admin.call("GET", "/admin/audit", target=f"key:{issued['id']}")
    actions = [r["action"] for r in reversed(audit["data"])]
    assert actions == ["key.issue", "key.update", "key.rotate", "key.rotate", "key.revoke"]
    assert {r["actor"] for r in audit["data"]} == {"admin-api"}
    status, audit = await admin.call("GET", "/admin/audit", target=f"tenant:{tenant['id']}")
    assert [r["action"] for r in reversed(audit["data"])] == ["tenant.create", "tenant.suspend", "tenant.resume"]
    assert issued["key"] not in str(audit) and rotated["key"] not in str(audit)


@pytest.mark.parametrize(("method", "path", "body", "param"), [
    ("POST", "/admin/tenants", {"name": "x", "monthly_budget_usd": 12.5}, "monthly_budget_usd"),
    ("POST", "/admin/tenants", {"name": "x", "monthly_token_quota": "5"}, "monthly_token_quota"),
    ("POST", "/admin/tenants", {"name": "x", "colour": "red"}, "colour"),
    ("POST", "/admin/tenants", {}, "name"),
    ("POST", "/admin/keys", {"tenant_id": 1, "expires_at": "tomorrow"}, "expires_at"),
    ("POST", "/admin/keys", {"tenant_id": 1, "allowed_models": []}, "allowed_models"),
    ("POST", "/admin/prices", {"model": "m", "input": "1"}, "output"),
    ("GET", "/admin/reports", None, "month"),
])
async def test_validation_errors_are_400_naming_the_field(admin, method, path, body, param):
    status, reply = await admin.call(method, path, body)
    assert status == 400 and reply["error"]["param"] == param, reply


async def test_unknown_ids_are_404_and_conflicts_409(admin):
    for path in ("/admin/tenants/999999", "/admin/keys/999999", "/admin/tenants/abc"):
        status, body = await admin.call("GET", path)
        assert status == 404 and body["error"]["code"] == "not_found"
    assert (await admin.call("POST", "/admin/keys", {"tenant_id": 999999}))[0] == 404
    assert (await admin.call("POST", "/admin/tenants", {"name": "twice"}))[0] == 201
    assert (await admin.call("POST", "/admin/tenants", {"name": "twice"}))[0] == 409
    status, body = await admin.call("DELETE", "/admin/tenants")
    assert status == 405


async def test_prices_and_reports_through_the_admin_api(admin):
    status, version = await admin.call("POST", "/admin/prices", {
        "model": "tiered-model", "input": "0.50", "output": "4.00", "cached": "0.05",
        "tiers": {"128000": {"input": "0.25", "output": "2.00", "cached": "0.05"}},
        "effective_from": "2026-01-01T00:00:00Z"})
    assert status == 201 and version["model"] == "tiered-model"
    status, prices = await admin.call("GET", "/admin/prices", model="tiered-model", at="2026-06-01T00:00:00Z")
    assert [(p["up_to_input_tokens"], p["input"]) for p in prices["data"]] == [(128000, "0.25"), (None, "0.50")]
    status, _ = await admin.call("POST", "/admin/prices", {
        "model": "tiered-model", "service_tier": "priority", "input": "1.00", "output": "8.00",
        "tools": {"web_search": "10"}, "effective_from": "2026-07-01T00:00:00Z"})
    status, prices = await admin.call("GET", "/admin/prices", model="tiered-model", at="2026-07-02T00:00:00Z")
    assert [(p["service_tier"], p["up_to_input_tokens"], p["input"], p["tools"]) for p in prices["data"]] == [
        ("default", 128000, "0.25", "web_search=10"), ("default", None, "0.50", "web_search=10"),
        ("priority", None, "1.00", "web_search=10")]
    status, report = await admin.call("GET", "/admin/reports", month="2026-11", by="tenant,model")
    assert status == 200 and report["total_cost"] == "0.00" and report["by"] == ["tenant", "model"]


async def test_openapi_document_lists_every_operation(admin):
    status, document = await admin.call("GET", "/admin/openapi.json")
    assert status == 200 and document["openapi"].startswith("3.")
    listed = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}
    assert listed == {(op.method, op.path) for op in OPERATIONS}


async def test_revocation_reaches_a_second_replica_under_load(simulator, database_url, admin, tenant_key, tmp_path):
    """Replica B is a separate `billing-proxy serve` process with its own key mirror; the key
    is revoked through replica A's admin API while B is busy serving that same key."""
    loop = asyncio.get_running_loop()
    env = environment(DATABASE_URL=database_url, UPSTREAM_BASE_URL=str(simulator.make_url("/v1")),
                      UPSTREAM_API_KEY=UPSTREAM_KEY, BILLING_PROXY_HOME=str(tmp_path))
    port = free_port()
    replica_b = await loop.run_in_executor(None, serve, env, port)
    stop = asyncio.Event()
    served = 0

    async def load(client):
        nonlocal served
        while not stop.is_set():
            try:
                await client.responses.create(model="gpt-4o-mini", input="load")
                served += 1
            except openai.AuthenticationError:
                await asyncio.sleep(0.01)

    try:
        async with openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=tenant_key.secret,
                                      max_retries=0) as client:
            workers = [asyncio.create_task(load(client)) for _ in range(8)]
            await asyncio.sleep(0.5)
            assert served > 0
            status, _ = await admin.call("POST", f"/admin/keys/{tenant_key.key_id}/revoke")
            assert status == 200
            error, took = await until_refused(client, timeout=2.0)
            stop.set()
            await asyncio.gather(*workers)
        assert error.status_code == 401 and took < 2.0
    finally:
        await loop.run_in_executor(None, replica_b.stop)


async def test_limits_and_credit_over_the_admin_api(admin):
    status, tenant = await admin.call("POST", "/admin/tenants", {
        "name": "api-limits", "daily_budget_usd": "5", "requests_per_minute": 60, "prepaid": True})
    assert status == 201 and (tenant["daily_budget_usd"], tenant["requests_per_minute"], tenant["prepaid"]) == \
        ("5.00", 60, True)
    status, credit = await admin.call("POST", f"/admin/tenants/{tenant['id']}/credits",
                                      {"amount_usd": "20.00", "reason": "contract 2026"})
    assert status == 201 and (credit["balance_usd"], credit["topups"][0]["actor"]) == ("20.00", "admin-api")
    assert (await admin.call("POST", f"/admin/tenants/{tenant['id']}/credits",
                             {"amount_usd": "0", "reason": "x"}))[0] == 400
    assert (await admin.call("POST", f"/admin/tenants/{tenant['id']}/credits", {"amount_usd": "1"}))[0] == 400
    status, shown = await admin.call("GET", f"/admin/tenants/{tenant['id']}/credits")
    assert status == 200 and shown["credited_usd"] == "20.00" and len(shown["topups"]) == 1
    status, updated = await admin.call("PATCH", f"/admin/tenants/{tenant['id']}",
                                       {"daily_budget_usd": None, "tokens_per_minute": 5000})
    assert status == 200 and (updated["daily_budget_usd"], updated["tokens_per_minute"]) == (None, 5000)
    assert (await admin.call("PATCH", f"/admin/tenants/{tenant['id']}", {"requests_per_minute": 0}))[0] == 400
    status, key = await admin.call("POST", "/admin/keys", {"tenant_id": tenant["id"], "max_concurrent": 2,
                                                           "weekly_budget_usd": "1.50"})
    assert status == 201
    status, shown_key = await admin.call("GET", f"/admin/keys/{key['id']}")
    assert (shown_key["max_concurrent"], shown_key["weekly_budget_usd"]) == (2, "1.50")


async def test_per_call_caps_request_quotas_and_enforcement_through_the_admin_api(admin, admin_proxy):
    base = admin_proxy[0]
    status, tenant = await admin.call("POST", "/admin/tenants", {"name": "agents-team", "max_call_usd": "0.01",
                                                                 "daily_request_quota": 2, "enforcement": "hard"})
    assert status == 201 and (tenant["max_call_usd"], tenant["daily_request_quota"], tenant["enforcement"]) == \
        ("0.01", 2, "hard")
    status, refused = await admin.call("PATCH", f"/admin/tenants/{tenant['id']}", {"enforcement": "lenient"})
    assert status == 400
    status, issued = await admin.call("POST", "/admin/keys", {"tenant_id": tenant["id"], "fit_floor_tokens": 64})
    assert status == 201
    async with openai.AsyncOpenAI(base_url=base + "/v1", api_key=issued["key"], max_retries=0) as client:
        raw = await client.responses.with_raw_response.create(model="gpt-5", input="hi")
        assert raw.headers["x-billing-output-cap-limit"] == "tenant_max_call"
        await client.responses.create(model="gpt-4o-mini", input="hi")
        await admin_proxy[1][STATE].writer.flush(timeout=10)
        error, _ = await until_refused(client)
    assert error.status_code == 429 and "daily request quota" in error.message
