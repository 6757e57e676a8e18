"""The simulated upstream's Conversations API, `POST /responses/compact` (billed: it reads
the whole context) and `POST /responses/input_tokens` (free)."""

import secrets
import time
from typing import Any

import orjson
from aiohttp import web

from proxy.simulator.wire import SIM_STATE, accept, authorized, count_tokens, error, texts


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _context_tokens(state, body: dict[str, Any]) -> int | web.Response:
    tokens = sum(count_tokens(t) for t in texts(body.get("input")) + texts(body.get("instructions")))
    previous_id = body.get("previous_response_id")
    if previous_id is not None:
        previous = state.responses.get(previous_id)
        if previous is None:
            return error(404, f"Previous response with id '{previous_id}' not found.", "invalid_request_error",
                         param="previous_response_id")
        tokens += previous.context_tokens
    return tokens


async def compact(request: web.Request) -> web.Response:
    state = request.app[SIM_STATE]
    body = await accept(request)
    if isinstance(body, web.Response):
        return body
    tokens = _context_tokens(state, body)
    if isinstance(tokens, web.Response):
        return tokens
    output_tokens = max(1, tokens // 10)  # the compacted summary
    usage = {"input_tokens": tokens, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
             "output_tokens": output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
             "total_tokens": tokens + output_tokens}
    compaction_id = "cmp_" + secrets.token_hex(16)
    state.bill(compaction_id, "responses.compact", body["model"], usage)
    return web.json_response({
        "id": compaction_id, "object": "response.compaction", "created_at": int(time.time()),
        "output": [{"id": "cmpi_" + compaction_id[4:], "type": "compaction", "encrypted_content": "opaque"}],
        "usage": usage}, dumps=_dumps)


async def input_tokens(request: web.Request) -> web.Response:
    state = request.app[SIM_STATE]
    body = await accept(request, model_required=False)
    if isinstance(body, web.Response):
        return body
    tokens = _context_tokens(state, body)
    if isinstance(tokens, web.Response):
        return tokens
    return web.json_response({"object": "response.input_tokens", "input_tokens": tokens})


async def create_conversation(request: web.Request) -> web.Response:
    state = request.app[SIM_STATE]
    body = await accept(request, model_required=False)
    if isinstance(body, web.Response):
        return body
    conversation_id = "conv_" + secrets.token_hex(24)
    items = [dict(item, id=f"msg_{i}") for i, item in enumerate(body.get("items") or []) if isinstance(item, dict)]
    state.conversations[conversation_id] = {
        "id": conversation_id, "object": "conversation", "created_at": int(time.time()),
        "metadata": body.get("metadata") or {}, "items": items,
        "tokens": sum(count_tokens(t) for t in texts(items))}
    return web.json_response(_public(state.conversations[conversation_id]), dumps=_dumps)


def _public(conversation: dict[str, Any]) -> dict[str, Any]:
    return {k: conversation[k] for k in ("id", "object", "created_at", "metadata")}


async def conversation(request: web.Request) -> web.Response:
    """GET, POST (update metadata), DELETE a conversation; list, add, get and delete its items."""
    if refused := authorized(request):
        return refused
    state = request.app[SIM_STATE]
    conversation_id = request.match_info["conversation_id"]
    found = state.conversations.get(conversation_id)
    if found is None:
        return error(404, f"Conversation with id '{conversation_id}' not found.", "invalid_request_error")
    body = orjson.loads(await request.read() or b"{}") if request.method == "POST" else {}
    item_id = request.match_info.get("item_id")
    if not request.path.split("/")[-1 if item_id is None else -2] == "items":  # the conversation itself
        if request.method == "DELETE":
            del state.conversations[conversation_id]
            return web.json_response({"id": conversation_id, "object": "conversation.deleted", "deleted": True})
        if request.method == "POST":
            found["metadata"] = body.get("metadata") or {}
        return web.json_response(_public(found), dumps=_dumps)
    items = found["items"]
    if item_id is not None:
        item = next((i for i in items if i.get("id") == item_id), None)
        if item is None:
            return error(404, f"Item with id '{item_id}' not found.", "invalid_request_error")
        if request.method == "DELETE":
            items.remove(item)
            return web.json_response(_public(found), dumps=_dumps)
        return web.json_response(item, dumps=_dumps)
    if request.method == "POST":
        added = [dict(item, id=f"msg_{len(items) + i}") for i, item in enumerate(body.get("items") or [])]
        items.extend(added)
        found["tokens"] += sum(count_tokens(t) for t in texts(added))
        return web.json_response(_page(added), dumps=_dumps)
    return web.json_response(_page(items), dumps=_dumps)


def _page(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"object": "list", "data": items, "has_more": False,
            "first_id": items[0]["id"] if items else None, "last_id": items[-1]["id"] if items else None}


def add_conversation_routes(app: web.Application) -> None:
    app.router.add_post("/v1/conversations", create_conversation)
    for path in ("/v1/conversations/{conversation_id}", "/v1/conversations/{conversation_id}/items",
                 "/v1/conversations/{conversation_id}/items/{item_id}"):
        for method in ("GET", "POST", "DELETE"):
            app.router.add_route(method, path, conversation)
