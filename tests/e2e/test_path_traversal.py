"""No path trick reaches the upstream: every forwarded route, with `..`, encoded and
double-encoded dots and slashes in each of its ids, is refused before anything is
forwarded, and the upstream receives only the paths the routes allow."""

import re

import aiohttp
import openai
import pytest
from sqlalchemy import func, select
from yarl import URL

from billing.db.tables import ledger_entries

ROUTES = [  # (method, template) of every route relayed for an owner
    ("GET", "/v1/responses/{response}"),
    ("DELETE", "/v1/responses/{response}"),
    ("GET", "/v1/responses/{response}/input_items"),
    ("POST", "/v1/responses/{response}/cancel"),
    *[(method, path) for method in ("GET", "POST", "DELETE") for path in (
        "/v1/conversations/{conversation}", "/v1/conversations/{conversation}/items",
        "/v1/conversations/{conversation}/items/{item}")],
]


def hostile_ids(other: str) -> list[str]:
    """Each as it goes on the wire (already percent-encoded where it says so)."""
    return [
        f"..%2F..%2F..%2Fresponses%2F{other}", f"%2E%2E%2F%2E%2E%2F%2E%2E%2Fresponses%2F{other}",
        f"%2e%2e%2f%2e%2e%2fresponses%2f{other}", "..%2F..%2F..%2Ffiles", "..%252F..%252F..%252Ffiles",
        "%252E%252E%252Ffiles", f"..%5C..%5Cresponses%5C{other}", "..", "%2E%2E", ".", "a%00b", "a%0Ab",
        "a%20b", "x" * 200, "%C3%A9", f"{other}%3Fx%3D1", f"{other}%23frag", f"{other}%2F..%2F..%2Fchat%2Fcompletions",
    ]


async def test_no_id_in_any_route_reaches_another_path(proxy, engine, simulator, client, stranger):
    own = await client.responses.create(model="gpt-4o-mini", input="mine")
    other = await stranger.responses.create(model="gpt-4o-mini", input="another tenant's")
    conversation = await client.conversations.create(items=[{"type": "message", "role": "user", "content": "hi"}])
    item = (await client.conversations.items.list(conversation.id)).data[0]
    await proxy.state.writer.flush(timeout=5)
    own_ids = {"response": own.id, "conversation": conversation.id, "item": item.id}
    async with engine.connect() as conn:
        entries_before = (await conn.execute(select(func.count()).select_from(ledger_entries))).scalar_one()
    received_before = len(simulator.state.paths)

    answers = []
    headers = {"Authorization": f"Bearer {client.api_key}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as session:
        for method, template in ROUTES:
            for slot in re.findall(r"\{(\w+)\}", template):
                for hostile in hostile_ids(other.id):
                    path = template.format_map({**own_ids, slot: hostile})
                    url = URL(proxy.url + path, encoded=True)  # sent exactly as written
                    async with session.request(method, url, headers=headers, data=b"{}") as reply:
                        answers.append((method, path, reply.status, await reply.read()))

    slots = sum(len(re.findall(r"\{\w+\}", template)) for _, template in ROUTES)
    assert len(answers) == slots * len(hostile_ids(other.id)) == 16 * 18  # every slot of every route, every trick
    wrong = [(m, p, s) for m, p, s, _ in answers if s not in (400, 404, 405)]
    assert wrong == []
    assert all(b'"error"' in body for *_, body in answers)
    assert simulator.state.paths[received_before:] == []  # not one of them was forwarded
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(ledger_entries))).scalar_one() == entries_before
    # the other tenant's response is untouched, and the owner's routes still work
    assert (await stranger.responses.retrieve(other.id)).id == other.id
    assert (await client.conversations.items.retrieve(item.id, conversation_id=conversation.id)).id == item.id
    assert simulator.state.paths[-1] == ("GET", f"/v1/conversations/{conversation.id}/items/{item.id}")


@pytest.mark.parametrize("field, value", [
    ("previous_response_id", "../../files"), ("previous_response_id", "resp_a\u0000"), ("previous_response_id", 7),
    ("conversation", {"id": "conv_../x"}), ("conversation", ["conv_1"]),
])
async def test_ids_in_bodies_are_checked_before_any_lookup(proxy, simulator, client, field, value):
    received_before = len(simulator.state.paths)
    with pytest.raises(openai.BadRequestError) as error:
        await client.responses.create(model="gpt-4o-mini", input="x", extra_body={field: value})
    assert error.value.body["param"] == field
    with pytest.raises(openai.BadRequestError):
        await client.responses.input_tokens.count(model="gpt-4o-mini", input="x", extra_body={field: value})
    assert simulator.state.paths[received_before:] == []
