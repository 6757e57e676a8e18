"""A quota statement that fails while the database is up is not an outage: the call gets a
retryable 503 and nothing is admitted from the last known state (which would let a tenant
near its limit spend past it). Only an unreachable database admits from memory."""


import aiohttp
import orjson
from sqlalchemy import text

from billing.db.keys import issue_key
from billing.db.tenants import create_tenant
from proxy.observability.metrics import OFFLINE_ADMISSIONS
from tests.e2e.test_quota_two_processes import BODY, SIM_HEADERS


async def test_a_failing_quota_statement_answers_503_and_admits_nothing(proxy, engine, simulator):
    # Close enough to its token quota that every call is admitted by a statement (no lease).
    await create_tenant(engine, "near-limit", monthly_token_quota=2_000)
    key = await issue_key(engine, "near-limit")
    headers = {"Authorization": f"Bearer {key.secret}", "Content-Type": "application/json", **SIM_HEADERS}
    offline_before = OFFLINE_ADMISSIONS._value.get()
    async with aiohttp.ClientSession() as http:
        async def call() -> aiohttp.ClientResponse:
            async with http.post(proxy.url + "/v1/responses", data=orjson.dumps(BODY), headers=headers) as reply:
                await reply.read()
                return reply

        assert (await call()).status == 200  # the proxy now knows what remains
        sent = len(simulator.state.requests)
        async with engine.begin() as conn:  # the database is up, and refuses every new reservation
            await conn.execute(text("ALTER TABLE reservations ADD CONSTRAINT test_refuses CHECK (false) NOT VALID"))
        try:
            refused = await call()
            body = orjson.loads(refused._body)
            assert refused.status == 503 and body["error"]["code"] == "quota_unavailable"
            assert refused.headers["x-should-retry"] == "true" and refused.headers["retry-after"] == "1"
            assert len(simulator.state.requests) == sent  # it never went upstream
            assert OFFLINE_ADMISSIONS._value.get() == offline_before  # not admitted from memory
        finally:
            async with engine.begin() as conn:
                await conn.execute(text("ALTER TABLE reservations DROP CONSTRAINT test_refuses"))
        assert (await call()).status == 200
