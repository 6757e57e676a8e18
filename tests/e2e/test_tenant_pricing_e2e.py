"""Markups, tenant prices and default prices through the running proxy, and the prices CLI."""

import asyncio
import json
from datetime import datetime, timezone
from decimal import Decimal

import openai
import pytest
from sqlalchemy import select

from billing.db.keys import issue_key
from billing.db.prices import set_price
from billing.db.tables import ledger_entries
from billing.db.tenants import create_tenant
from billing.pricebook import DEFAULT_MODEL
from billing.pricing import PriceVersion, Tier
from proxy.cli import main

D = Decimal


async def wait_for_model(proxy, name: str) -> None:
    for _ in range(200):
        if proxy.state.mirror.pricebook.resolve_name(name) is not None:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{name} never became priced")


async def test_markup_tenant_price_and_default_price(proxy, engine):
    resale = await create_tenant(engine, "resale", price_multiplier=D("1.2"))
    key = await issue_key(engine, "resale")
    async with openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=key.secret, max_retries=0) as client:
        marked_up = await client.responses.create(model="gpt-4o-mini", input="x" * 400)

        own = await set_price(engine, PriceVersion("gpt-4o-mini", datetime.now(timezone.utc),
                                                   (Tier(D("0.10"), D("0.50")),), source="test",
                                                   tenant_id=resale.id))
        for _ in range(200):  # until the NOTIFY has brought the new version into the mirror
            if proxy.state.mirror.pricebook.versions("gpt-4o-mini", resale.id):
                break
            await asyncio.sleep(0.01)
        with_own_price = await client.responses.create(model="gpt-4o-mini", input="x" * 400)

        with pytest.raises(openai.BadRequestError) as error:
            await client.responses.create(model="brand-new-model", input="hi")
        assert error.value.body["code"] == "model_not_priced"
        await set_price(engine, PriceVersion(DEFAULT_MODEL, datetime(2020, 1, 1, tzinfo=timezone.utc),
                                             (Tier(D("7"), D("9")),), source="test"))
        await wait_for_model(proxy, "brand-new-model")
        defaulted = await client.responses.create(model="brand-new-model", input="hi")

    await proxy.state.writer.flush(timeout=5)
    async with engine.connect() as conn:
        rows = (await conn.execute(select(ledger_entries).order_by(ledger_entries.c.started_at))).all()
    assert len(rows) == 3
    first, second, third = rows
    # gpt-4o-mini: 0.15 in / 0.60 out per 1M; the tenant pays 1.2 x that
    cost = (marked_up.usage.input_tokens * D("0.15") + marked_up.usage.output_tokens * D("0.60")) / D(10**6)
    assert first.cost_total == cost and first.charge_total == cost * D("1.2")
    # its own price: 0.10 in / 0.50 out, no markup on top
    own_charge = (with_own_price.usage.input_tokens * D("0.10")
                  + with_own_price.usage.output_tokens * D("0.50")) / D(10**6)
    assert second.charge_total == own_charge and second.charge_price_version_id == own
    assert (third.model, third.requested_model) == (DEFAULT_MODEL, "brand-new-model")
    assert third.cost_total == (defaulted.usage.input_tokens * 7 + defaulted.usage.output_tokens * 9) / D(10**6)


def test_prices_cli_sets_versions_and_lists_history(database_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["prices", "set", "cli-model", "--input", "1.5", "--output", "6",
                 "--effective-from", "2026-01-01T00:00:00Z", "--format", "json"]) == 0
    assert main(["prices", "set", "cli-model", "--input", "2", "--output", "8", "--cached", "0.5",
                 "--effective-from", "2026-06-01T00:00:00Z"]) == 0
    capsys.readouterr()
    assert main(["prices", "list", "--model", "cli-model", "--at", "2026-03-01T00:00:00Z", "--format", "json"]) == 0
    then = json.loads(capsys.readouterr().out)
    assert [(r["input"], r["cached"], r["output"]) for r in then] == [("1.50", "0.15", "6.00")]
    assert main(["prices", "list", "--model", "cli-model", "--history", "--format", "json"]) == 0
    history = json.loads(capsys.readouterr().out)
    assert [r["input"] for r in history] == ["1.50", "2.00"]
    with pytest.raises(SystemExit) as refused:
        main(["prices", "set", "cli-model", "--input", "-1", "--output", "1"])
    assert refused.value.code == 2 and "must be a non-negative number" in capsys.readouterr().err


def test_prices_cli_sets_service_tier_tool_and_storage_prices(database_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["prices", "set", "tiered-cli", "--service-tier", "flex", "--input", "1", "--output", "2"]) == 1
    assert "no standard price yet" in capsys.readouterr().err
    assert main(["prices", "set", "tiered-cli", "--input", "1.25", "--output", "10", "--tool", "web_search=10.00",
                 "--effective-from", "2026-01-01T00:00:00Z"]) == 0
    assert main(["prices", "set", "tiered-cli", "--input", "0.625", "--output", "5", "--service-tier", "flex",
                 "--tool", "file_search=2.50", "--cache-storage", "0.0083",
                 "--effective-from", "2026-02-01T00:00:00Z"]) == 0
    capsys.readouterr()
    assert main(["prices", "list", "--model", "tiered-cli", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    # the flex price joined the standard one, which the new version kept; tools merged
    assert [(r["service_tier"], r["input"], r["output"]) for r in rows] == [("default", "1.25", "10.00"),
                                                                          ("flex", "0.625", "5.00")]
    assert {(r["tools"], r["cache_storage"]) for r in rows} == {("file_search=2.50 web_search=10.00", "0.0083")}
    with pytest.raises(SystemExit) as refused:
        main(["prices", "set", "tiered-cli", "--input", "1", "--output", "1", "--tool", "web search"])
    assert refused.value.code == 2 and "NAME=USD_PER_1000_CALLS" in capsys.readouterr().err
