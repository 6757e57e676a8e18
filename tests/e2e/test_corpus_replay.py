"""Replays the request corpus (tests/corpus/<client>/<case>.json: bodies exactly as real client
libraries sent them, recorded with tests/corpus/record.py) through the proxy, in front of the
simulated upstream, with a tenant key: every body must be answered 200, read to its end
(JSON or SSE), and leave exactly one new ledger entry carrying the upstream's exact usage
(the simulator's own record of what it billed, `simulator.state.usage_records`).

Only the recorded files are read: nothing is fetched at run time.

What the replay changes, in memory only (the files stay as recorded):
- `previous_response_id`: the recorded id belonged to the recording session's simulator.
  A response is first created through the proxy with the same tenant key, model and vendor
  fields (`caching`, `thinking`), and its id replaces the recorded one, so the
  continuation is really replayed (and billed its carried-over context).
- `conversation`: likewise, a conversation is first created through the proxy and its id
  replaces the recorded one.
- models: every recorded model is priced by billing/catalog/prices.toml (directly or
  through an alias, e.g. `gpt-4o-2024-08-06`), so REPLAY_MODELS is empty; an unpriced
  model recorded later would be mapped to a priced one there.
- headers: the recorded identifying headers (user-agent, x-stainless-*, ...) are sent
  again, with the tenant's key as the only credential.
"""

import asyncio
import copy
import json
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select

from billing.db.tables import ledger_entries

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
CASES = sorted(CORPUS.glob("**/*.json"))
REPLAY_MODELS: dict[str, str] = {}  # recorded model -> priced model, for replay only


def case_id(path: Path) -> str:
    return str(path.relative_to(CORPUS).with_suffix(""))


def test_the_corpus_is_there():
    assert len(CASES) >= 15
    for path in CASES:
        case = json.loads(path.read_text())
        assert {"client", "case", "method", "path", "headers", "body"} <= case.keys(), path
        assert "authorization" not in {h.lower() for h in case["headers"]}, path


async def ledger_count(proxy, engine) -> int:
    await proxy.state.writer.flush(timeout=5)
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(ledger_entries))).scalar()


async def new_rows(proxy, engine, before: int, expected: int) -> list:
    """The ledger entries written after the first `before`, once `expected` of them are there
    (a stream's entry may be queued just after its last byte reached the client)."""
    for _ in range(100):
        await proxy.state.writer.flush(timeout=5)
        async with engine.connect() as conn:
            rows = (await conn.execute(select(ledger_entries).order_by(
                ledger_entries.c.recorded_at, ledger_entries.c.started_at))).all()
        if len(rows) >= before + expected:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)  # anything more would show up now
    await proxy.state.writer.flush(timeout=5)
    async with engine.connect() as conn:
        rows = (await conn.execute(select(ledger_entries).order_by(
            ledger_entries.c.recorded_at, ledger_entries.c.started_at))).all()
    return rows[before:]


async def post(http: aiohttp.ClientSession, url: str, body: dict, headers: dict) -> tuple[int, bytes, str]:
    async with http.post(url, data=json.dumps(body).encode(), headers=headers) as reply:
        return reply.status, await reply.read(), reply.headers.get("Content-Type", "")


async def prepare(body: dict, http: aiohttp.ClientSession, proxy, headers: dict) -> dict:
    """The recorded body with the ids of earlier calls replaced by ones made now (see the
    module's docstring)."""
    body = copy.deepcopy(body)
    if isinstance(body.get("model"), str):
        body["model"] = REPLAY_MODELS.get(body["model"], body["model"])
    if body.get("previous_response_id") is not None:
        prior = {"model": body["model"], "input": "An earlier turn of this conversation."}
        prior.update({k: body[k] for k in ("caching", "thinking") if k in body})
        status, raw, _ = await post(http, proxy.url + "/v1/responses", prior, headers)
        assert status == 200, raw
        body["previous_response_id"] = json.loads(raw)["id"]
    if body.get("conversation") is not None:
        status, raw, _ = await post(http, proxy.url + "/v1/conversations", {"items": [
            {"type": "message", "role": "user", "content": "An earlier turn of this conversation."}]}, headers)
        assert status == 200, raw
        conversation = json.loads(raw)["id"]
        if isinstance(body["conversation"], dict):
            body["conversation"] = {**body["conversation"], "id": conversation}
        else:
            body["conversation"] = conversation
    return body


def expected_usage(record: dict) -> dict[str, int]:
    """The simulator's usage, in the ledger's terms (Responses, Chat Completions, Embeddings)."""
    usage = record["usage"]
    if "input_tokens" in usage:
        return {"input_tokens": usage["input_tokens"], "output_tokens": usage["output_tokens"],
                "cached_tokens": usage["input_tokens_details"]["cached_tokens"],
                "reasoning_tokens": usage["output_tokens_details"]["reasoning_tokens"]}
    expected = {"input_tokens": usage["prompt_tokens"], "output_tokens": usage.get("completion_tokens", 0)}
    if "prompt_tokens_details" in usage:
        expected["cached_tokens"] = usage["prompt_tokens_details"]["cached_tokens"]
    if "completion_tokens_details" in usage:
        expected["reasoning_tokens"] = usage["completion_tokens_details"]["reasoning_tokens"]
    return expected


@pytest.mark.parametrize("path", CASES, ids=[case_id(p) for p in CASES])
async def test_recorded_body_is_served_and_billed_exactly(path, proxy, tenant_key, engine, simulator):
    case = json.loads(path.read_text())
    assert case["method"] == "POST"
    headers = {name: value for name, value in case["headers"].items() if name.lower() != "authorization"}
    headers.setdefault("content-type", "application/json")
    headers["Authorization"] = f"Bearer {tenant_key.secret}"
    async with aiohttp.ClientSession() as http:
        body = await prepare(case["body"], http, proxy, headers)
        before_rows = await ledger_count(proxy, engine)
        before_billed = len(simulator.state.usage_records)

        status, raw, content_type = await post(http, proxy.url + case["path"], body, headers)

    assert status == 200, raw.decode(errors="replace")[:2000]
    if body.get("stream") is True:
        assert content_type.startswith("text/event-stream"), content_type
        text = raw.decode()
        if case["path"] == "/v1/chat/completions":
            assert text.rstrip().endswith("data: [DONE]")
        else:
            assert "response.completed" in text
    else:
        assert content_type.startswith("application/json"), content_type
        json.loads(raw)

    records = simulator.state.usage_records[before_billed:]
    assert len(records) == 1, records
    [record] = records
    rows = await new_rows(proxy, engine, before_rows, 1)
    assert len(rows) == 1, [(r.endpoint, r.upstream_response_id, r.status) for r in rows]
    [row] = rows
    assert row.tenant_id == tenant_key.tenant_id and row.key_id == tenant_key.key_id
    assert row.endpoint == record["endpoint"]
    assert row.requested_model == body["model"]
    assert row.stream is (body.get("stream") is True)
    assert row.estimated is False and row.status == record["status"]
    if record["endpoint"] != "embeddings":  # an embeddings reply carries no id of its own
        assert row.upstream_response_id == record["id"]
    for column, value in expected_usage(record).items():
        assert getattr(row, column) == value, (column, getattr(row, column), value)
    assert row.cost_total > 0
