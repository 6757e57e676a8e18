"""The simulated upstream's `POST /responses`: counts tokens, continues stored context,
caches (BytePlus `caching`), thinks, calls built-in tools, serves service tiers, runs in
the background, and answers as JSON or as an event stream (see the package's docstring)."""

import asyncio
import math
import secrets
import time
from typing import Any

import orjson
from aiohttp import web

from proxy.simulator.events import event_frames, send
from proxy.simulator.tools import tool_calls
from proxy.simulator.wire import (
    BYTEPLUS_CACHE_SECONDS, DEFAULT_OUTPUT_TOKENS, SIM_STATE, StoredResponse, accept, count_tokens, error,
    header_int, is_byteplus, reply_words, served_tier, texts,
)

PREFIX_CACHE_MIN_TOKENS = 256
BACKGROUND_MS = 300
def _storage(model: str, caching: dict, prefix: bool, response: dict, input_tokens: int, visible: int) -> tuple[int, int]:
    """ModelArk's cache storage of a stored response: (tokens, started hours until expire_at)."""
    if not is_byteplus(model) or caching.get("type") != "enabled" or response.get("store") is False \
            or response["status"] not in ("completed", "incomplete"):
        return 0, 0
    tokens = (input_tokens if input_tokens >= PREFIX_CACHE_MIN_TOKENS else 0) if prefix else input_tokens + visible
    return (tokens, math.ceil((response["expire_at"] - response["created_at"]) / 3600)) if tokens else (0, 0)


async def create_response(request: web.Request) -> web.StreamResponse:
    state = request.app[SIM_STATE]
    body = await accept(request)
    if isinstance(body, web.Response):
        return body

    model = body["model"]
    caching = body.get("caching") if isinstance(body.get("caching"), dict) else {}
    thinking = body.get("thinking") if isinstance(body.get("thinking"), dict) else {}
    max_output = body.get("max_output_tokens")
    caching_on = caching.get("type") == "enabled"
    prefix = caching_on and caching.get("prefix") is True
    if prefix and max_output is not None:
        return error(400, "caching.prefix is not supported together with max_output_tokens.",
                     "invalid_request_error", param="max_output_tokens")

    new_tokens = sum(count_tokens(t) for t in texts(body.get("input")) + texts(body.get("instructions")))
    # what a file or a long document in the input would add (a body the proxy bounds by its bytes)
    new_tokens += header_int(request, "x-sim-extra-input-tokens", 0)
    carried = cached = 0
    previous_id = body.get("previous_response_id")
    if previous_id is not None:
        previous = state.responses.get(previous_id)
        if previous is None:
            return error(404, f"Previous response with id '{previous_id}' not found.",
                         "invalid_request_error", param="previous_response_id")
        carried = previous.context_tokens
        cached = carried if previous.cached and caching_on else 0
    conversation_id = body.get("conversation")
    if isinstance(conversation_id, dict):
        conversation_id = conversation_id.get("id")
    conversation = None
    if conversation_id is not None:
        conversation = state.conversations.get(conversation_id)
        if conversation is None:
            return error(404, f"Conversation with id '{conversation_id}' not found.", "invalid_request_error",
                         param="conversation")
        carried += conversation["tokens"]
    input_tokens = carried + new_tokens

    thinks = thinking.get("type") == "enabled" or (is_byteplus(model) and thinking.get("type") != "disabled") \
        or isinstance(body.get("reasoning"), dict)
    visible = header_int(request, "x-sim-output-tokens", DEFAULT_OUTPUT_TOKENS)
    reasoning = 2 * visible if thinks else 0
    status, incomplete = "completed", None
    if isinstance(max_output, int) and reasoning + visible > max_output:
        status, incomplete = "incomplete", {"reason": "max_output_tokens"}
        reasoning = min(reasoning, max_output)
        visible = max_output - reasoning
    if prefix:
        visible, reasoning = 0, 0  # creating a prefix cache generates nothing

    response_id = "resp_" + secrets.token_hex(24)
    tool_items, tool_counts = tool_calls(body, request, response_id, state.containers)
    cacheable = caching_on and (not prefix or input_tokens >= PREFIX_CACHE_MIN_TOKENS)
    stored = state.responses[response_id] = StoredResponse(
        context_tokens=input_tokens + (0 if prefix else visible), cached=cacheable, input_tokens=input_tokens)
    if conversation is not None:
        conversation["tokens"] = input_tokens + visible

    text = " ".join(reply_words(visible, response_id))
    usage: dict[str, Any] = {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": visible + reasoning,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input_tokens + visible + reasoning,
    }
    if is_byteplus(model):
        if tool_counts:
            usage["tool_usage"] = tool_counts
    else:
        usage["input_tokens_details"]["cache_write_tokens"] = 0
    tier = served_tier(request, body)
    response = _response_object(body, response_id, model, status, incomplete, text, reasoning > 0, usage,
                                tool_items, tier)
    storage = stored.storage = _storage(model, caching, prefix, response, input_tokens, visible)
    items = body.get("input")
    stored.input_items = items if isinstance(items, list) else [{"type": "message", "role": "user", "content": items}]
    background = body.get("background") is True

    def finish(final: dict[str, Any] = response) -> None:
        stored.body = final
        state.bill(response_id, "responses", model, final["usage"], status=final["status"], service_tier=tier,
                   tool_calls=tool_counts, storage=storage)

    delay = header_int(request, "x-sim-delay-ms", 0) / 1000
    if body.get("stream") is True:
        frames = event_frames(response, text, reasoning if is_byteplus(model) else 0, data_only=request.headers.get(
            "x-sim-framing") == "data-only")
        if background:
            stored.frames = frames
            stored.body = {**response, "status": "in_progress", "output": [], "usage": None}
        else:
            finish()
        return await send(request, frames, delay, model, cut_after=header_int(request, "x-sim-cut-after"),
                             error_after=header_int(request, "x-sim-error-after"),
                             stall_after=header_int(request, "x-sim-stall-after"),
                             on_end=finish if background else None,
                             data_only=request.headers.get("x-sim-framing") == "data-only")
    if background:
        stored.body = {**response, "status": "queued", "output": [], "usage": None}

        async def work() -> None:
            await asyncio.sleep(header_int(request, "x-sim-background-ms", BACKGROUND_MS) / 1000)
            finish()

        stored.finish, stored.complete = asyncio.create_task(work()), finish
        return web.json_response(stored.body, dumps=lambda o: orjson.dumps(o).decode())
    finish()
    await asyncio.sleep(delay)
    if request.headers.get("x-sim-malformed"):
        return web.Response(body=b'{"id": "' + response_id.encode() + b'", "usage": {"input_tok',
                            content_type="application/json")
    return web.Response(body=orjson.dumps(response), content_type="application/json",
                        status=header_int(request, "x-sim-reply-status", 200),
                        headers={"x-request-id": "req_" + secrets.token_hex(8)})


def _response_object(body: dict, response_id: str, model: str, status: str, incomplete: dict | None,
                     text: str, with_reasoning: bool, usage: dict, tool_items: list[dict],
                     service_tier: str) -> dict[str, Any]:
    output: list[dict[str, Any]] = []
    if with_reasoning:
        output.append({"id": "rs_" + response_id[5:], "type": "reasoning", "summary": []})
    output += tool_items
    if text or not with_reasoning:
        output.append({
            "id": "msg_" + response_id[5:], "type": "message", "status": status, "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        })
    created = int(time.time())
    response = {
        "id": response_id, "object": "response", "created_at": created, "status": status,
        "background": body.get("background") is True, "error": None, "incomplete_details": incomplete,
        "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"), "model": model, "output": output, "parallel_tool_calls": True,
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None}, "service_tier": service_tier, "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0), "text": {"format": {"type": "text"}},
        "tool_choice": "auto", "tools": body.get("tools") or [], "top_p": body.get("top_p", 1.0),
        "truncation": "disabled", "usage": usage, "metadata": body.get("metadata") or {},
    }
    if body.get("conversation") is not None:
        conversation = body["conversation"]
        response["conversation"] = {"id": conversation["id"] if isinstance(conversation, dict) else conversation}
    for vendor_field in ("caching", "thinking"):
        if vendor_field in body:
            response[vendor_field] = body[vendor_field]
    if is_byteplus(model):
        expire_at = body.get("expire_at")
        response["expire_at"] = expire_at if isinstance(expire_at, int) else created + BYTEPLUS_CACHE_SECONDS
    return response
