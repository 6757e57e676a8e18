"""A tenant calls a model nobody priced: each call is a 400 `model_not_priced` that names the
nearest priced model, nothing goes upstream or into the ledger, and the model shows with
its calls on /metrics, the dashboard and the admin API. Hostile names stay out of both."""

import json
import re
import shlex
from datetime import datetime, timezone
from decimal import Decimal

import aiohttp
import openai
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from billing.db.keys import issue_key
from billing.db.prices import set_price
from billing.db.tables import ledger_entries
from billing.db.tenants import create_tenant
from billing.model_labels import OTHER
from billing.pricing import PriceVersion, Tier
from tests.conftest import METRICS_AUTH
from tests.e2e.test_admin_api import ADMIN_TOKEN
from tests.e2e.test_cli_admin_commands import run
from tests.e2e.test_tenant_pricing_e2e import wait_for_model

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def unpriced_calls(proxy_url: str) -> dict[str, float]:
    """billing_proxy_unpriced_calls_total by model, as /metrics shows it (parsed: the text
    must be valid exposition format)."""
    async with aiohttp.ClientSession() as http:
        async with http.get(proxy_url + "/metrics", headers=METRICS_AUTH) as reply:
            assert reply.status == 200
            text = await reply.text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    return {s.labels["model"]: s.value for s in families["billing_proxy_unpriced_calls"].samples
            if s.name == "billing_proxy_unpriced_calls_total"}


async def admin_get(proxy_url: str, path: str, **params) -> tuple[int, str]:
    async with aiohttp.ClientSession(headers=ADMIN) as http:
        async with http.get(proxy_url + path, params=params) as reply:
            return reply.status, await reply.text()


def unpriced_rows(html: str) -> str:
    return re.search(r"<h2>Models refused as unpriced</h2>(.*?)(?:</table>|</p>)", html, re.S).group(1)


async def test_an_unpriced_model_is_refused_counted_and_shown(dashboard_proxy, engine):
    await set_price(engine, PriceVersion("acme-6.1-sol", datetime(2026, 1, 1, tzinfo=timezone.utc),
                                         (Tier(Decimal("2"), Decimal("16")),), source="test"))
    await wait_for_model(dashboard_proxy, "acme-6.1-sol")
    await create_tenant(engine, "early-adopter")
    key = await issue_key(engine, "early-adopter")
    async with openai.AsyncOpenAI(base_url=dashboard_proxy.url + "/v1", api_key=key.secret, max_retries=0) as sdk:
        with pytest.raises(openai.BadRequestError) as first:
            await sdk.responses.create(model="acme-6.2-sol", input="Hello")
        with pytest.raises(openai.BadRequestError) as second:
            await sdk.chat.completions.create(model="acme-6.2-sol", messages=[{"role": "user", "content": "Hi"}])
    for refused in (first, second):
        assert refused.value.body["code"] == "model_not_priced" and refused.value.body["param"] == "model"
        assert refused.value.body["message"].endswith("The nearest priced model is 'acme-6.1-sol'.")
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(ledger_entries))).scalar() == 0

    assert (await unpriced_calls(dashboard_proxy.url))["acme-6.2-sol"] == 2
    await dashboard_proxy.state.unpriced.flush(engine)  # as its chore does every few seconds
    status, html = await admin_get(dashboard_proxy.url, "/admin/dashboard")
    assert status == 200
    row = unpriced_rows(html)
    assert ('<td class="">acme-6.2-sol</td><td class="n">2</td><td class="">early-adopter</td>' in row
            and re.search(r'<td class="">acme-6\.1-sol(, [^<]*)?</td><td class=""><code>billing-proxy prices resolve '
                          r'acme-6\.2-sol</code>', row))
    status, page = await admin_get(dashboard_proxy.url, "/admin/dashboard/tenant", tenant="early-adopter")
    assert status == 200 and '<td class="">acme-6.2-sol</td><td class="n">2</td>' in unpriced_rows(page)

    status, body = await admin_get(dashboard_proxy.url, "/admin/unpriced-models")
    listed = orjson.loads(body)
    assert status == 200 and listed["month"] == datetime.now(timezone.utc).strftime("%Y-%m")
    [model] = listed["data"]
    assert (model["model"], model["calls"], model["tenants"], model["priced_now"]) == (
        "acme-6.2-sol", 2, ["early-adopter"], False)
    assert model["nearest_priced"][0] == "acme-6.1-sol" and model["first_seen"] <= model["last_seen"]
    status, body = await admin_get(dashboard_proxy.url, "/admin/unpriced-models", month="2020-01")
    assert status == 200 and orjson.loads(body)["data"] == []
    status, body = await admin_get(dashboard_proxy.url, "/admin/unpriced-models", month="20-1")
    assert status == 400 and orjson.loads(body)["error"]["param"] == "month"


async def test_hostile_model_names_stay_out_of_metrics_and_pages(dashboard_proxy, engine):
    await create_tenant(engine, "hostile")
    key = await issue_key(engine, "hostile")
    before = (await unpriced_calls(dashboard_proxy.url)).get(OTHER, 0)
    headers = {"Authorization": f"Bearer {key.secret}", "Content-Type": "application/json"}
    injected = 'gpt-6"} 1e9\n# TYPE'
    bodies = [
        ({"model": "m" * 10_000, "input": "x"}, "invalid_request_error"),  # longer than any model name
        ({"model": "gpt-6\nbilling_proxy_unpriced_calls_total 1e9", "input": "x"}, "invalid_request_error"),
        ({"model": "gpt-6\x00", "input": "x"}, "invalid_request_error"),
        ({"model": ["gpt-6"], "input": "x"}, "invalid_request_error"),
        ({"model": 6, "input": "x"}, "invalid_request_error"),
        ({"model": 'gpt-6"} 1e9 #', "input": "x"}, "model_not_priced"),  # printable: refused as unpriced
        ({"model": "<script>alert(1)</script>", "input": "x"}, "model_not_priced"),
        ({"model": "g" * 200, "input": "x"}, "model_not_priced"),  # a name the proxy takes, too long for a label
    ]
    async with aiohttp.ClientSession(headers=headers) as http:
        for body, code in bodies:
            async with http.post(dashboard_proxy.url + "/v1/responses", data=orjson.dumps(body)) as reply:
                error = (await reply.json())["error"]
                assert reply.status == 400 and (error["code"] or error["type"]) == code, body
                assert error["param"] == "model" and set(error) == {"message", "type", "param", "code"}

    counted = await unpriced_calls(dashboard_proxy.url)  # parses: no line was injected
    assert counted[OTHER] == before + 2 and "<script>alert(1)</script>" in counted
    assert not any(injected in name or "\n" in name or len(name) > 128 for name in counted)
    await dashboard_proxy.state.unpriced.flush(engine)
    status, html = await admin_get(dashboard_proxy.url, "/admin/dashboard")
    rows = unpriced_rows(html)
    assert status == 200 and "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in rows
    assert f'<td class="">{OTHER}</td><td class="n">2</td><td class="">hostile</td>' in rows
    assert "g" * 129 not in html and "1e9" not in html


def test_prices_resolve_suggests_the_nearest_priced_family(database_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert run(capsys, "prices", "set", "acme-6.1-sol", "--input", "2", "--output", "16", "--cached", "0.2",
               "--tool", "web_search=10")[0] == 0
    code, out, err = run(capsys, "prices", "resolve", "acme-6.2-sol")
    assert code == 1 and err.startswith("billing-proxy: acme-6.2-sol is not priced: no priced model")
    command = ("billing-proxy prices set acme-6.2-sol --input 2.00 --output 16.00 --cached 0.20 --cache-write 2.00 "
               "--reasoning 16.00 --tool web_search=10.00")
    table = out.splitlines()
    assert table[0].split() == ["nearest", "model", "input", "output", "cached", "cache_write", "reasoning"]
    assert table[2].split() == ["acme-6.1-sol", "acme-6.1-sol", "2.00", "16.00", "0.20", "2.00", "16.00"]
    assert f"To price acme-6.2-sol like acme-6.1-sol:\n  {command}\n" in out

    code, out, _ = run(capsys, "prices", "resolve", "acme-6.2-sol", "--format", "json")
    resolved = json.loads(out)
    assert code == 1 and (resolved["name"], resolved["model"], resolved["matched_by"]) == (
        "acme-6.2-sol", None, "none")
    nearest = resolved["nearest_priced"][0]
    assert (nearest["nearest"], nearest["input"], nearest["command"]) == ("acme-6.1-sol", "2.00", command)
    code, out, _ = run(capsys, "prices", "resolve", "acme-6.2-sol", "--format", "csv")
    assert code == 1 and out.splitlines()[1].startswith("acme-6.1-sol,acme-6.1-sol,2.00,16.00,")

    assert run(capsys, *shlex.split(command)[1:])[0] == 0  # the command works as printed
    code, out, _ = run(capsys, "prices", "resolve", "acme-6.2-sol", "--format", "json")
    assert code == 0 and json.loads(out)["model"] == "acme-6.2-sol"
    code, out, err = run(capsys, "prices", "resolve", "zz-unheard-of-1", "--format", "json")
    assert code == 1 and json.loads(out)["nearest_priced"] == [] and "is not priced" in err
