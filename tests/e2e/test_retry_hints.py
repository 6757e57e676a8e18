"""Retry hints, as the official SDK reads them: one attempt for a refusal that a retry cannot
change (`x-should-retry: false`), and retries with `Retry-After` where they can help. The
SDK is left at its default of 2 retries; an httpx hook counts what it sends."""

import dataclasses
from decimal import Decimal

import openai
import pytest

from billing.db.keys import issue_key
from billing.db.tenants import create_tenant, update_tenant
from proxy.app import create_app
from tests.processes import free_port


class Attempts:
    def __init__(self):
        self.sent = 0

    async def __call__(self, request) -> None:
        self.sent += 1


async def one_call(base_url: str, secret: str, **request) -> tuple[int, openai.APIStatusError]:
    """(attempts the SDK made, the error it raised) for one call with its default retries."""
    attempts = Attempts()
    http = openai.DefaultAsyncHttpxClient(event_hooks={"request": [attempts]})
    async with openai.AsyncOpenAI(base_url=base_url, api_key=secret, http_client=http) as sdk:
        with pytest.raises(openai.APIStatusError) as raised:
            await sdk.responses.create(**{"model": "gpt-4o-mini", "input": "Hello", **request})
    return attempts.sent, raised.value


async def test_refusals_that_a_retry_cannot_change_are_sent_once(proxy, engine, simulator):
    await create_tenant(engine, "spent", monthly_budget_usd=Decimal("0.000001"))
    spent = (await issue_key(engine, "spent")).secret
    await create_tenant(engine, "gone")
    gone = (await issue_key(engine, "gone")).secret
    await update_tenant(engine, "gone", status="suspended")
    await create_tenant(engine, "narrow")
    narrow = (await issue_key(engine, "narrow", allowed_models=["gpt-4o"])).secret
    base = proxy.url + "/v1"

    cases = [
        (spent, {}, 429, "insufficient_quota"),
        (gone, {}, 403, "tenant_suspended"),
        (narrow, {}, 403, "model_not_allowed"),
        (spent, {"model": "no-such-model"}, 400, "model_not_priced"),
        (spent, {"model": "seed-1-6-250915", "max_output_tokens": 50,
                 "extra_body": {"caching": {"type": "enabled", "prefix": True}}}, 400, "invalid_request_error"),
        ("bpk_" + "x" * 43, {}, 401, "invalid_api_key"),
    ]
    for secret, request, status, code in cases:
        attempts, error = await one_call(base, secret, **request)
        assert (attempts, error.status_code, error.code) == (1, status, code)
        assert error.response.headers["x-should-retry"] == "false"

    # A 2xx reply that is not JSON: the upstream billed it, a retry would be billed again.
    await create_tenant(engine, "open")
    secret = (await issue_key(engine, "open")).secret
    before = len(simulator.state.requests)
    attempts, error = await one_call(base, secret, extra_headers={"x-sim-malformed": "1"})
    assert (attempts, error.status_code, error.code) == (1, 502, "upstream_bad_response")
    assert len(simulator.state.requests) - before == 1


async def test_a_refusal_that_can_pass_soon_is_retried_after_the_hint(aiohttp_server, engine, database_url,
                                                                      proxy_settings):
    """Nothing listens at the upstream's address: 502 `upstream_unreachable`, with
    `Retry-After: 1`; the SDK tries 3 times, as it was told it may."""
    settings = dataclasses.replace(proxy_settings, upstream_base_url=f"http://127.0.0.1:{free_port()}/v1")
    server = await aiohttp_server(create_app(settings, database_url))
    await create_tenant(engine, "patient")
    secret = (await issue_key(engine, "patient")).secret
    attempts, error = await one_call(str(server.make_url("/v1")), secret)
    assert (attempts, error.status_code, error.code) == (3, 502, "upstream_unreachable")
    assert error.response.headers["x-should-retry"] == "true" and error.response.headers["retry-after"] == "1"
