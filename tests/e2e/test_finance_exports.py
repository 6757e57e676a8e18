"""Exports to billing systems: every ledger entry and adjustment reaches each sink at least
once with a stable id, in order per tenant, across a receiver outage and a proxy restart."""

import asyncio
import base64
import hashlib
import hmac
import json
from dataclasses import replace
from decimal import Decimal

import aiohttp
import openai
from aiohttp import web
from sqlalchemy import select

from billing.db.exports import export_status
from billing.db.keys import issue_key
from billing.db.months import add_adjustment
from billing.db.tables import export_outbox, ledger_entries
from billing.db.tenants import create_tenant
from billing.exports import SinkConfig
from proxy.app import create_app
from proxy.cli import main
from proxy.gateway.state import STATE
from tests.conftest import METRICS_AUTH

SECRET = "whsec_" + base64.b64encode(b"a receiver's shared secret").decode()


def signed_by_secret(headers, body: bytes) -> bool:
    """The receiver's check, written from the Standard Webhooks spec (not the proxy's code)."""
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return f"v1,{expected}" in headers["webhook-signature"].split(" ")


class Receiver:
    """A billing system's webhook: down (503), or up but losing one acknowledgement (it
    keeps the batch and answers 500, so the proxy sends it again), or up."""

    def __init__(self):
        self.mode = "down"
        self.batches: list[list[dict]] = []
        self.refused = 0
        self.bad_signatures = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.mode == "down":
            self.refused += 1
            return web.Response(status=503)
        if request.content_type != "application/cloudevents-batch+json" or not signed_by_secret(request.headers, body):
            self.bad_signatures += 1
            return web.Response(status=401)
        self.batches.append(json.loads(body))
        if self.mode == "lose_one_ack":
            self.mode = "up"
            return web.Response(status=500)
        return web.Response(status=204)

    def events(self) -> list[dict]:
        return [event for batch in self.batches for event in batch]


async def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.2)


async def test_a_receiver_down_then_up_counts_every_entry_exactly_once(aiohttp_server, engine, database_url,
                                                                       proxy_settings, monkeypatch, capsys):
    receiver = Receiver()
    hook = web.Application()
    hook.router.add_post("/usage", receiver.handle)
    hook_server = await aiohttp_server(hook)
    settings = replace(proxy_settings, export_webhook_url=str(hook_server.make_url("/usage")),
                       export_webhook_secret=SECRET)
    first = await aiohttp_server(create_app(settings, database_url))

    keys = {}
    for name in ("alpha", "beta"):
        await create_tenant(engine, name)
        keys[name] = (await issue_key(engine, name)).secret
    for round_ in range(3):
        for name, secret in keys.items():
            async with openai.AsyncOpenAI(base_url=str(first.make_url("/v1")), api_key=secret, max_retries=0) as sdk:
                if round_ == 1:
                    async with sdk.responses.stream(model="gpt-4o-mini", input=f"streamed {round_}") as stream:
                        await stream.get_final_response()
                else:
                    await sdk.responses.create(model="gpt-4o-mini", input=f"call {round_} of {name}",
                                               safety_identifier=f"user-of-{name}", metadata={"round": str(round_)})
    adjustment = await add_adjustment(engine, "beta", Decimal("-0.25"), "credit for an outage", actor="test")
    await first.app[STATE].writer.flush(timeout=5)

    # The receiver is down: nothing is lost, the backlog shows in /metrics and in the status.
    await wait_for(lambda: _true_after(receiver.refused >= 2))
    async with aiohttp.ClientSession() as http:
        async with http.get(str(first.make_url("/metrics")), headers=METRICS_AUTH) as reply:
            metrics = await reply.text()
    assert 'billing_proxy_export_pending{sink="webhook"} 7.0' in metrics
    assert 'billing_proxy_export_failures_total{sink="webhook"}' in metrics
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert await asyncio.get_running_loop().run_in_executor(
        None, main, ["exports", "status", "--format", "json"]) == 0
    [status] = json.loads(capsys.readouterr().out)
    assert (status["sink"], status["pending"], status["held_tenants"]) == ("webhook", 7, 2)
    assert "503" in status["last_error"] and status["lag_seconds"] >= 0

    # The proxy restarts during the outage; the receiver comes back, losing one acknowledgement.
    await first.close()
    receiver.mode = "lose_one_ack"
    second = await aiohttp_server(create_app(settings, database_url))
    await wait_for(lambda: _pending_is_zero(engine), timeout=40)
    await second.close()

    async with engine.connect() as conn:
        ledger = {str(r.request_id): r for r in await conn.execute(select(ledger_entries))}
        queued = [(r.tenant_id, str(r.event_id)) for r in
                  await conn.execute(select(export_outbox).order_by(export_outbox.c.id))]
    received = receiver.events()
    assert receiver.bad_signatures == 0
    assert len(received) > len(set(e["id"] for e in received)), "the lost acknowledgement caused a redelivery"
    deduplicated = {e["id"]: e for e in received}
    assert set(deduplicated) == set(ledger) | {str(adjustment.event_id)}
    usage = [e for e in deduplicated.values() if e["type"] == "io.billing-proxy.usage"]
    assert sum(Decimal(e["data"]["charge_usd"]) for e in usage) == sum(r.charge_total for r in ledger.values())
    assert sum(e["data"]["input_tokens"] for e in usage) == sum(r.input_tokens for r in ledger.values())
    assert sum(1 for e in usage if e["data"]["end_user"]) == 4  # rounds 0 and 2, each tenant
    [credit] = [e for e in deduplicated.values() if e["type"] == "io.billing-proxy.adjustment"]
    assert (credit["subject"], credit["data"]["amount_usd"]) == ("beta", "-0.25")
    for event in usage:
        assert event["specversion"] == "1.0" and event["source"] == "billing-proxy"
        entry = ledger[event["id"]]  # who it was for travels with it
        assert (event["data"]["end_user"], event["data"]["tags"]) == (entry.end_user, entry.tags or {})
        assert event["subject"] == event["data"]["tenant"]
    # Order per tenant: first receipts follow the outbox's order.
    first_seen = list(dict.fromkeys(e["id"] for e in received))
    for tenant_id in {t for t, _ in queued}:
        in_outbox = [event_id for t, event_id in queued if t == tenant_id]
        assert [i for i in first_seen if i in in_outbox] == in_outbox


async def _true_after(value: bool) -> bool:
    return value


async def _pending_is_zero(engine) -> bool:
    return all(s.pending == 0 for s in await export_status(engine))


async def test_stripe_meter_events_and_openmeter_cloudevents(aiohttp_server, engine, database_url, proxy_settings):
    """Stripe: one meter event per entry, `identifier` = the ledger's request id, a tenant
    Stripe refuses waits (in order) while the others go on. OpenMeter: CloudEvents batches
    with its bearer token."""
    stripe_events, openmeter_events, refuse_gamma = [], [], {"on": True}

    async def stripe(request: web.Request) -> web.Response:
        assert request.headers["Authorization"] == "Bearer sk_test_123"
        form = dict(await request.post())
        if form["payload[stripe_customer_id]"] == "cus_gamma" and refuse_gamma["on"]:
            return web.json_response({"error": {"message": "No such customer: 'cus_gamma'"}}, status=400)
        stripe_events.append(form)
        return web.json_response({"object": "billing.meter_event", "identifier": form["identifier"]})

    async def openmeter(request: web.Request) -> web.Response:
        assert request.headers["Authorization"] == "Bearer om_token"
        assert request.content_type == "application/cloudevents-batch+json"
        openmeter_events.extend(await request.json())
        return web.Response(status=204)

    fake = web.Application()
    fake.router.add_post("/v1/billing/meter_events", stripe)
    fake.router.add_post("/api/v1/events", openmeter)
    fake_server = await aiohttp_server(fake)
    base = str(fake_server.make_url("")).rstrip("/")
    sinks = (SinkConfig("stripe", "stripe", base, "sk_test_123", customers={"delta": "cus_delta", "gamma": "cus_gamma"}),
             SinkConfig("openmeter", "openmeter", base, "om_token"))
    app = create_app(replace(proxy_settings, exports=sinks), database_url)
    server = await aiohttp_server(app)
    for name in ("gamma", "delta"):
        await create_tenant(engine, name)
        secret = (await issue_key(engine, name)).secret
        async with openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key=secret, max_retries=0) as sdk:
            for n in range(2):
                await sdk.responses.create(model="gpt-4o-mini", input=f"{name} {n}")
    await add_adjustment(engine, "delta", Decimal("1.50"), "support plan", actor="test")
    await app[STATE].writer.flush(timeout=5)

    await wait_for(lambda: _true_after(len(stripe_events) == 2 and len(openmeter_events) == 5))
    assert {e["payload[stripe_customer_id]"] for e in stripe_events} == {"cus_delta"}
    statuses = {s.sink: s for s in await export_status(engine)}
    assert (statuses["stripe"].pending, statuses["stripe"].held_tenants) == (2, 1)
    assert "No such customer" in statuses["stripe"].last_error
    refuse_gamma["on"] = False  # the operator adds the customer in Stripe
    await wait_for(lambda: _true_after(len(stripe_events) == 4))

    async with engine.connect() as conn:
        ledger = {str(r.request_id): r for r in await conn.execute(select(ledger_entries))}
    assert {e["identifier"] for e in stripe_events} == set(ledger)
    for event in stripe_events:
        entry = ledger[event["identifier"]]
        assert event["event_name"] == "llm_usage"
        assert event["payload[value]"] == str(entry.input_tokens + entry.output_tokens)
        assert int(event["timestamp"]) == int(entry.finished_at.timestamp())
    gamma = [e["identifier"] for e in stripe_events if e["payload[stripe_customer_id]"] == "cus_gamma"]
    assert gamma == sorted(gamma, key=lambda i: ledger[i].started_at), "gamma's events kept their order"
    assert {e["id"] for e in openmeter_events} >= set(ledger)
    assert [e["data"]["amount_usd"] for e in openmeter_events if e["type"].endswith("adjustment")] == ["1.50"]
