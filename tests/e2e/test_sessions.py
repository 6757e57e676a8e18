"""A tenant cannot continue, read or delete another tenant's response, whatever id it
guesses: the answer is the 404 of an unknown id, nothing is forwarded, nothing billed."""

import re
import time

import openai
import pytest
from sqlalchemy import func, select

from billing.db.keys import issue_key
from billing.db.tables import ledger_entries
from billing.db.tenants import create_tenant
from proxy.app import create_app
from proxy.gateway.sessions import NOT_FOUND_SECONDS


def same_shape(error_a, error_b, id_a, id_b) -> bool:
    body_a = {**error_a.body, "message": error_a.body["message"].replace(id_a, "ID")}
    body_b = {**error_b.body, "message": error_b.body["message"].replace(id_b, "ID")}
    return error_a.status_code == error_b.status_code == 404 and body_a == body_b


async def test_responses_belong_to_the_tenant_that_made_them(proxy, engine, simulator, tenant_key):
    await create_tenant(engine, "intruder")
    intruder_key = await issue_key(engine, "intruder")
    url = proxy.url + "/v1"
    async with openai.AsyncOpenAI(base_url=url, api_key=tenant_key.secret, max_retries=0) as owner, \
            openai.AsyncOpenAI(base_url=url, api_key=intruder_key.secret, max_retries=0) as intruder:
        made = await owner.responses.create(model="gpt-4o-mini", input="a secret conversation")
        forwarded = len(simulator.state.requests)
        await proxy.state.writer.flush(timeout=5)

        # the owner continues, reads and lists input items
        follow = await owner.responses.create(model="gpt-4o-mini", input="go on", previous_response_id=made.id)
        assert follow.previous_response_id == made.id
        assert (await owner.responses.retrieve(made.id)).id == made.id
        items = await owner.responses.input_items.list(made.id)
        assert items.data
        forwarded_after_owner = len(simulator.state.requests)

        # the intruder gets exactly what an unknown id gets, and nothing reaches the upstream
        guesses = {}
        for name, attempt in (
            ("continue", lambda rid: intruder.responses.create(model="gpt-4o-mini", input="x",
                                                               previous_response_id=rid)),
            ("read", lambda rid: intruder.responses.retrieve(rid)),
            ("delete", lambda rid: intruder.responses.delete(rid)),
            ("items", lambda rid: intruder.responses.input_items.list(rid)),
        ):
            for rid in (made.id, "resp_" + "0" * 48):
                with pytest.raises(openai.NotFoundError) as error:
                    await attempt(rid)
                guesses[(name, rid)] = error.value
            assert same_shape(guesses[(name, made.id)], guesses[(name, "resp_" + "0" * 48)], made.id,
                              "resp_" + "0" * 48), name
        assert len(simulator.state.requests) == forwarded_after_owner

        # the owner may delete it; reads and deletes are never billed
        await owner.responses.delete(made.id)
        with pytest.raises(openai.NotFoundError):
            await owner.responses.retrieve(made.id)
    await proxy.state.writer.flush(timeout=5)
    async with engine.connect() as conn:
        billed = (await conn.execute(select(func.count()).select_from(ledger_entries))).scalar_one()
    assert billed == 2 and forwarded == 1
    assert re.fullmatch(r"resp_[0-9a-f]{48}", made.id)


async def test_ownership_is_known_to_another_replica(aiohttp_server, proxy, engine, database_url, proxy_settings,
                                                     tenant_key):
    """Replica B never saw the response; it finds the owner in the database."""
    replica_b = await aiohttp_server(create_app(proxy_settings, database_url))
    async with openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=tenant_key.secret, max_retries=0) as a:
        made = await a.responses.create(model="gpt-4o-mini", input="hello")
    async with openai.AsyncOpenAI(base_url=str(replica_b.make_url("/v1")), api_key=tenant_key.secret,
                                  max_retries=0) as b:
        follow = await b.responses.create(model="gpt-4o-mini", input="again", previous_response_id=made.id)
    assert follow.previous_response_id == made.id


async def test_someone_elses_id_and_an_unknown_one_take_the_same_time(proxy, client, stranger):
    """Before, a foreign id was refused from memory in 0.5 ms and an unknown one after a
    database lookup and a pause (155 ms): the time told that the id existed."""
    made = await client.responses.create(model="gpt-4o-mini", input="mine")
    unknown = "resp_" + "1" * 48

    async def seconds_to_refuse(response_id: str) -> float:
        started = time.perf_counter()
        with pytest.raises(openai.NotFoundError):
            await stranger.responses.retrieve(response_id)
        return time.perf_counter() - started

    foreign = sorted([await seconds_to_refuse(made.id) for _ in range(5)])
    unknowns = sorted([await seconds_to_refuse(unknown) for _ in range(5)])
    assert abs(foreign[2] - unknowns[2]) < 0.05, (foreign, unknowns)  # medians
    assert min(foreign + unknowns) >= NOT_FOUND_SECONDS


async def test_every_endpoint_that_reads_previous_response_id_checks_its_owner(proxy, client, stranger, simulator):
    made = await client.responses.create(model="gpt-4o-mini", input="mine")
    forwarded = len(simulator.state.requests)
    attempts = {
        "chat": lambda: stranger.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}],
            extra_body={"previous_response_id": made.id}),
        "chat, literal extra_body": lambda: stranger.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}],
            extra_body={"extra_body": {"previous_response_id": made.id}}),
        "compact": lambda: stranger.post("/responses/compact", cast_to=object, body={
            "model": "gpt-4o-mini", "previous_response_id": made.id}),
        "input_tokens": lambda: stranger.post("/responses/input_tokens", cast_to=object, body={
            "model": "gpt-4o-mini", "input": "x", "previous_response_id": made.id}),
        "embeddings": lambda: stranger.embeddings.create(model="text-embedding-3-small", input="x",
                                                         extra_body={"previous_response_id": made.id}),
    }
    for name, attempt in attempts.items():
        with pytest.raises(openai.NotFoundError) as error:
            await attempt()
        assert error.value.body["param"] == "previous_response_id", name
    assert len(simulator.state.requests) == forwarded  # nothing of it reached the upstream
