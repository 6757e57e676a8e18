"""The access log: one line per call, written when the reply is done, with its status,
timings, caller, models, tokens and charge; never a body or a secret."""

import dataclasses
import logging

import aiohttp
import openai
import orjson
import pytest

from sqlalchemy import text
from proxy.app import create_app
from proxy.observability.logs import JsonFormatter

PROMPT = "an-access-log-must-never-show-this-prompt"


def access_lines(caplog) -> list[dict]:
    return [orjson.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "billing_proxy.access"]


async def test_one_line_per_call_with_what_an_operator_asks_first(proxy, engine, client, tenant_key, caplog):
    caplog.set_level(logging.INFO, logger="billing_proxy.access")
    reply = await client.responses.create(model="seed-1-6-250915", input=PROMPT)
    streamed = [event async for event in await client.responses.create(model="gpt-4o-mini", input=PROMPT,
                                                                        stream=True)]
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve("resp_unknown")
    async with aiohttp.ClientSession() as http:
        async with http.delete(proxy.url + "/v1/responses") as refused:
            assert refused.status == 405
        async with http.get(proxy.url + "/healthz") as probe:
            assert probe.status == 200
        async with http.get(proxy.url + "/v1/" + tenant_key.secret) as pasted:  # a key pasted into a URL
            assert pasted.status == 404
    await proxy.state.writer.flush()

    json_call, stream_call, not_found, not_allowed, pasted = lines = access_lines(caplog)  # none for /healthz
    assert [(line["method"], line["path"], line["status"]) for line in lines] == [
        ("POST", "/v1/responses", 200), ("POST", "/v1/responses", 200),
        ("GET", "/v1/responses/resp_unknown", 404), ("DELETE", "/v1/responses", 405),
        ("GET", "/v1/bpk_[redacted]", 404)]
    for line, usage, requested, priced in ((json_call, reply.usage, "seed-1-6-250915", "seed-1-6"),
                                           (stream_call, streamed[-1].response.usage, "gpt-4o-mini", "gpt-4o-mini")):
        assert line["tenant"] == "team-a" and line["key_id"] == tenant_key.key_id
        assert line["key_prefix"] == tenant_key.secret[:12]
        assert (line["model"], line["priced_model"]) == (requested, priced)
        assert (line["input_tokens"], line["cached_tokens"], line["output_tokens"], line["reasoning_tokens"]) == (
            usage.input_tokens, usage.input_tokens_details.cached_tokens, usage.output_tokens,
            usage.output_tokens_details.reasoning_tokens)
        assert line["estimated"] is False and len(line["request_id"]) == 36
        assert 0 <= line["ttfb_ms"] <= line["latency_ms"] + 0.5  # ttfb_ms is whole (as in the ledger), rounded
    async with engine.connect() as conn:
        charges = dict((await conn.execute(text("SELECT request_id::text, charge_total FROM ledger_entries"))).all())
    assert {json_call["request_id"]: json_call["charge"], stream_call["request_id"]: stream_call["charge"]} == {
        request_id: str(charge) for request_id, charge in charges.items()}
    assert not_found["error"] == "invalid_request_error" and not_found["tenant"] == "team-a"
    assert not_allowed["error"] == "method_not_allowed" and "tenant" not in not_allowed

    logged = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert PROMPT not in logged and tenant_key.secret not in logged


async def test_access_log_off_writes_no_line(aiohttp_server, database_url, proxy_settings, tenant_key, caplog):
    caplog.set_level(logging.INFO, logger="billing_proxy.access")
    quiet = dataclasses.replace(proxy_settings, access_log="off")
    try:
        server = await aiohttp_server(create_app(quiet, database_url))
        async with openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key=tenant_key.secret,
                                      max_retries=0) as sdk:
            await sdk.responses.create(model="gpt-4o-mini", input="Hello")
        assert access_lines(caplog) == []
    finally:
        create_app(proxy_settings, database_url)  # "on" again for the tests after this one
