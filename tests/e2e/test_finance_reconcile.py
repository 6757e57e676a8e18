"""reconcile-upstream: the ledger against the upstream's own records (the simulator's Usage
and Costs API, and its BytePlus bill export), end to end through the official SDK."""

import asyncio
import json
from datetime import datetime, timezone

import aiohttp
import openai
import pytest
from sqlalchemy import text

from proxy.cli import main
from proxy.simulator import create_simulator
from proxy.simulator.wire import SIM_STATE
from tests.conftest import UPSTREAM_KEY

ADMIN_KEY = "sk-admin-" + "a" * 24


@pytest.fixture
async def simulator(aiohttp_server):
    """The shared simulator, with an admin key on its Usage and Costs API."""
    app = create_simulator(api_key=UPSTREAM_KEY, admin_key=ADMIN_KEY)
    server = await aiohttp_server(app)
    server.state = app[SIM_STATE]
    return server


def month_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m")


async def cli(*argv: str) -> int:
    return await asyncio.get_running_loop().run_in_executor(None, main, list(argv))


async def traffic(proxy_url: str, secret: str) -> None:
    async with openai.AsyncOpenAI(base_url=proxy_url + "/v1", api_key=secret, max_retries=0) as sdk:
        cache = {"caching": {"type": "enabled"}}
        first = await sdk.responses.create(model="gpt-4o-mini", input="a question " * 400, extra_body=cache)
        await sdk.responses.create(model="gpt-4o-mini", input="and another", previous_response_id=first.id,
                                   extra_body=cache)
        async with sdk.responses.stream(model="gpt-4o-mini", input="streamed") as stream:
            await stream.get_final_response()
        await sdk.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "chat"}])
        await sdk.embeddings.create(model="text-embedding-3-small", input=["one", "two"])


async def test_openai_usage_api_agrees_then_flags_direct_calls_and_a_deleted_entry(
        proxy, tenant_key, simulator, engine, database_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("UPSTREAM_BASE_URL", str(simulator.make_url("/v1")))
    monkeypatch.setenv("UPSTREAM_ADMIN_KEY", ADMIN_KEY)
    await traffic(proxy.url, tenant_key.secret)
    await proxy.state.writer.flush(timeout=5)

    # Clean traffic: every day × model agrees, cost included (the cached continuation too).
    assert await cli("reconcile-upstream", "--month", month_now(), "--format", "json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["source"] == "openai-usage-api" and result["drifted"] == 0
    rows = {row["model"]: row for row in result["rows"]}
    assert set(rows) == {"gpt-4o-mini", "text-embedding-3-small"}
    mini = rows["gpt-4o-mini"]
    assert mini["status"] == "ok" and mini["upstream_requests"] == mini["ledger_requests"] == "4"
    assert int(mini["upstream_cached_tokens"]) > 0 and mini["upstream_cost"] == mini["ledger_cost"]
    assert mini["upstream_reasoning_tokens"] is None  # the Usage API does not report it: not compared
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    assert await cli("reconcile-upstream", "--from", today, "--to", today, "--format", "csv") == 0
    assert len(capsys.readouterr().out.splitlines()) == 3  # a header and today's two models

    # Someone uses the upstream key directly, past the proxy: two calls the ledger never saw.
    async with openai.AsyncOpenAI(base_url=str(simulator.make_url("/v1")), api_key=UPSTREAM_KEY) as direct:
        off_the_books = {(await direct.responses.create(model="gpt-4o-mini", input="off the books")).id,
                         (await direct.responses.create(model="gpt-4.1-mini", input="another model")).id}
    assert await cli("reconcile-upstream", "--month", month_now()) == 1
    captured = capsys.readouterr()
    table = {line.split()[1]: line.split()[2] for line in captured.out.splitlines()[3:]}
    assert table == {"gpt-4.1-mini": "not_in_ledger", "gpt-4o-mini": "drift", "text-embedding-3-small": "ok"}
    assert "gpt-4.1-mini not_in_ledger" in captured.err and "drift past the tolerance" in captured.err

    # A ledger entry deleted by hand (past the append-only trigger) shows as well.
    simulator.state.usage_records[:] = [r for r in simulator.state.usage_records if r["id"] not in off_the_books]
    assert await cli("reconcile-upstream", "--month", month_now()) == 0
    capsys.readouterr()
    async with engine.begin() as conn:
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
        await conn.execute(text("DELETE FROM ledger_entries WHERE ctid = (SELECT ctid FROM ledger_entries "
                                "WHERE endpoint = 'embeddings' LIMIT 1)"))
    assert await cli("reconcile-upstream", "--month", month_now(), "--format", "csv") == 1
    lines = capsys.readouterr().out.splitlines()
    header, embedding = lines[0].split(","), next(line for line in lines if "text-embedding-3-small" in line)
    row = dict(zip(header, embedding.split(",")))
    assert (row["status"], row["ledger_requests"], row["upstream_requests"]) == ("not_in_ledger", "0", "1")


async def test_a_byteplus_bill_file_agrees_then_flags_a_deleted_entry(
        proxy, tenant_key, simulator, engine, database_url, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("DATABASE_URL", database_url)
    async with openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=tenant_key.secret, max_retries=0) as sdk:
        for n in range(3):
            await sdk.responses.create(model="seed-1-6-250915", input=f"seed call {n} " * 50,
                                       extra_body={"thinking": {"type": "enabled"}})
        async with sdk.responses.stream(model="seed-1-6-250915", input="streamed seed") as stream:
            await stream.get_final_response()
    await proxy.state.writer.flush(timeout=5)
    async with aiohttp.ClientSession() as http:
        async with http.get(str(simulator.make_url("/_sim/billed/bill.csv")), params={"month": month_now()}) as reply:
            bill = tmp_path / "modelark-bill.csv"
            bill.write_text(await reply.text(), encoding="utf-8")

    assert await cli("reconcile-upstream", "--month", month_now(), "--file", str(bill), "--cost-tolerance", "0",
                     "--format", "json") == 0
    result = json.loads(capsys.readouterr().out)
    [row] = result["rows"]
    assert result["source"] == "byteplus-bill" and row["status"] == "ok"
    assert row["upstream_requests"] is None  # a bill counts tokens, not requests
    assert row["upstream_output_tokens"] == row["ledger_output_tokens"] and row["upstream_cost"] == row["ledger_cost"]

    async with engine.begin() as conn:
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
        await conn.execute(text("DELETE FROM ledger_entries WHERE ctid = (SELECT ctid FROM ledger_entries LIMIT 1)"))
    # One small call is within the default cost tolerance (a cent a row); not with none.
    assert await cli("reconcile-upstream", "--month", month_now(), "--file", str(bill), "--cost-tolerance", "0") == 1
    assert "drift (input_tokens, output_tokens, cost)" in capsys.readouterr().err


async def test_no_admin_key_is_a_clear_error(proxy, database_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("UPSTREAM_ADMIN_KEY", raising=False)
    assert await cli("reconcile-upstream", "--month", month_now()) == 1
    assert "set UPSTREAM_ADMIN_KEY" in capsys.readouterr().err
