"""A limited call's input is bounded by its o200k_base tokens where the model uses that
encoding, by its bytes elsewhere: a Codex CLI turn (40 KB of instructions and tools) fits a
small budget that its bytes would not. The body as Codex sent it, the simulated upstream,
real Postgres."""

import copy
import dataclasses
import json
from decimal import Decimal as D
from pathlib import Path

import aiohttp

from billing.db.keys import issue_key
from billing.db.tenants import create_tenant
from billing.request_bounds import content_tokens
from proxy.app import create_app
from tests.conftest import RunningProxy
from tests.e2e.test_fitted_calls import spent

CODEX = json.loads((Path(__file__).resolve().parent.parent / "corpus" / "codex-cli" / "exec-hello.json").read_text())


def codex_turn() -> dict:
    """Codex's first turn with web search off (a built-in tool lets the model read its whole
    context again per search: no small budget holds that without `max_tool_calls`)."""
    body = copy.deepcopy(CODEX["body"])
    body["tools"] = [tool for tool in body["tools"] if tool.get("type") != "web_search"]
    return body


async def codex_call(proxy_url: str, secret: str) -> tuple[int, dict, bytes]:
    headers = {**CODEX["headers"], "authorization": f"Bearer {secret}"}
    async with aiohttp.ClientSession() as http, \
            http.post(proxy_url + "/v1/responses", data=json.dumps(codex_turn()), headers=headers) as reply:
        return reply.status, dict(reply.headers), await reply.read()


async def test_a_codex_turn_fits_a_budget_its_bytes_would_not(proxy, engine, simulator):
    # its bytes bound the input at 40,528 tokens ($0.0507 of gpt-5.1-codex, over the budget);
    # its o200k_base tokens at 11,599 ($0.0145), which leaves room for an answer
    tenant = await create_tenant(engine, "codex-team", monthly_budget_usd=D("0.03"))
    key = await issue_key(engine, "codex-team")
    status, headers, body = await codex_call(proxy.url, key.secret)
    assert status == 200, body
    assert b"response.completed" in body or b"response.incomplete" in body
    cap = int(headers["x-billing-output-cap"])
    assert headers["x-billing-output-cap-limit"] == "tenant_budget"
    assert 256 <= cap <= 1000  # half of what the input leaves: ($0.03 - $0.0145) / 2 at $10/M
    assert simulator.state.requests[-1]["body"]["max_output_tokens"] == cap
    assert 0 < await spent(proxy, engine, tenant.id) <= D("0.03")


async def test_without_the_tokenizer_the_same_turn_is_bounded_by_its_bytes(aiohttp_server, engine, database_url,
                                                                           proxy_settings):
    """An operator who turns the count off (BILLING_PROXY_O200K_MODELS=none) gets the byte
    bound: the same call's input alone is more than the budget."""
    settings = dataclasses.replace(proxy_settings, o200k_models=())
    server = await aiohttp_server(create_app(settings, database_url))
    proxy = RunningProxy(str(server.make_url("")).rstrip("/"), server.app, settings)
    tenant = await create_tenant(engine, "bytes-team", monthly_budget_usd=D("0.03"))
    key = await issue_key(engine, "bytes-team")
    status, _, body = await codex_call(proxy.url, key.secret)
    assert status == 429
    error = json.loads(body)["error"]
    assert error["code"] == "insufficient_quota"
    # the whole worst case: the input by bytes at $1.25/M and the model's 128,000 output tokens at $10/M
    worst = D(content_tokens(codex_turn())) * D("1.25") / 10**6 + D("1.28")
    assert f"could cost up to ${worst.normalize()}" in error["message"], error
    assert "would fit" not in error["message"]  # the input alone is over: no cap would
    assert await spent(proxy, engine, tenant.id) == 0
