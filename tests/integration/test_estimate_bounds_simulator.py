"""Property: for random request bodies, and whatever the simulated upstream bills for them
(its replies' usage, tiers, tools and storage, priced as the ledger prices them), the
worst-case estimate is never below the bill. A continuation is estimated with the context
the ledger knows of the response it continues (that response's input plus output)."""

import asyncio

import orjson
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings, strategies as st

from billing.catalog import load_catalog, shipped_catalog_path
from billing.pricebook import ResolvedPrice
from billing.pricing import price_usage
from billing.quota import ModelLimits, estimate
from billing.reply import reply_usage
from billing.request_bounds import request_bounds
from proxy.simulator import create_simulator

CATALOG = load_catalog(shipped_catalog_path())
VERSIONS = {v.model: v for v in CATALOG.versions}
MODELS = ["gpt-4o-mini", "gpt-5.4", "seed-1-6"]
LIMITS = ModelLimits(default_output_cap=16_384, context_window=1_050_000, image_tokens=50_000, tool_calls=10)
text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=400)


@st.composite
def calls(draw) -> tuple[str, dict, dict]:
    endpoint = draw(st.sampled_from(["responses", "chat.completions"]))
    body: dict = {"model": draw(st.sampled_from(MODELS))}
    if endpoint == "responses":
        body["input"] = draw(text)
        for name, values in (("max_output_tokens", st.integers(0, 5000)), ("max_tokens", st.integers(0, 50)),
                             ("reasoning", st.just({"effort": "high"})),
                             ("service_tier", st.sampled_from(["auto", "default", "flex", "priority"])),
                             ("caching", st.just({"type": "enabled"})),
                             ("tools", st.just([{"type": "web_search"}])), ("max_tool_calls", st.integers(0, 4))):
            if draw(st.booleans()):
                body[name] = draw(values)
    else:
        body["messages"] = [{"role": "user", "content": draw(text)}]
        for name, values in (("max_output_tokens", st.integers(0, 50)), ("max_tokens", st.integers(1, 5000)),
                             ("max_completion_tokens", st.integers(1, 5000)), ("n", st.integers(1, 16)),
                             ("reasoning_effort", st.just("low")),
                             ("service_tier", st.sampled_from(["auto", "priority"]))):
            if draw(st.booleans()):
                body[name] = draw(values)
    headers = {"x-sim-output-tokens": str(draw(st.integers(0, 3000))),
               "x-sim-tool-calls": str(draw(st.integers(1, 3)))}
    return endpoint, body, headers


def price_of(model: str) -> ResolvedPrice:
    return ResolvedPrice(model, model, VERSIONS[model])


async def billed(client: TestClient, endpoint: str, body: dict, headers: dict) -> tuple[dict, int]:
    """The reply, and what the upstream bills for it (in micro-units of nothing: the usage priced)."""
    raw = orjson.dumps(body)
    async with client.post("/v1/" + endpoint.replace(".", "/"), data=raw,
                           headers={"Authorization": "Bearer sk-sim", **headers}) as reply:
        assert reply.status == 200, await reply.text()
        return await reply.json(), len(raw)


async def check(endpoint: str, body: dict, headers: dict, continue_it: bool) -> None:
    async with TestClient(TestServer(create_simulator(api_key="sk-sim"))) as client:
        price = price_of(body["model"])
        carried = 0
        if continue_it and endpoint == "responses":
            first, _ = await billed(client, endpoint, {"model": body["model"], "input": "earlier turn " * 50}, headers)
            usage = reply_usage(first)
            carried = usage.input_tokens + usage.output_tokens  # what the ledger keeps as the context
            body = {**body, "previous_response_id": first["id"]}
        reply, body_bytes = await billed(client, endpoint, body, headers)
        usage = reply_usage(reply)
        bill = price_usage(usage, price.version).total
        worst = estimate(body_bytes, request_bounds(body, endpoint, int(reply.get("created_at") or 0) or 0),
                         price, 1, LIMITS, carried)
        assert bill <= worst.charge, (body, usage, bill, worst)
        assert usage.input_tokens + usage.output_tokens <= worst.tokens, (body, usage, worst)


@settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(call=calls(), continue_it=st.booleans())
def test_the_estimate_bounds_what_the_simulator_bills(call, continue_it):
    asyncio.run(check(*call, continue_it))
