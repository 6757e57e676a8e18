"""`billing-proxy simulate-upstream`: a local stand-in for an OpenAI / BytePlus ModelArk
Responses API, speaking the real wire format (JSON, and SSE with the real event sequence
and `sequence_number`s), modelled on the openai SDK's `types/responses` and the Ark SDK.

Plausible, deterministic behaviour:
- tokens are counted as ceil(UTF-8 bytes / 4) per text piece;
- BytePlus `caching: {type: enabled, prefix: true}` stores the input as a prefix cache
  when it has at least 256 tokens (and is refused with `max_output_tokens`, as upstream);
  `caching: {type: enabled}` caches the response's whole context for the session; a
  stored BytePlus response says when it expires (`expire_at`, 3 days by default) and is
  billed cache storage per started hour until then;
- `previous_response_id` and `conversation` continue stored context: it counts as input,
  and as cached input when that response was cached;
- `thinking: {type: enabled}` (the default for seed-* models) or `reasoning` (o-series,
  gpt-5) produces reasoning tokens; `max_output_tokens` ends the reply as `incomplete`;
- `service_tier` is served as asked (`fast` as `priority`, `auto` as `default`) and
  reported in the reply;
- built-in tools in `tools` (`web_search`, `file_search`, `code_interpreter`) are called
  (`x-sim-tool-calls` times each, default 1): `*_call` output items, and for BytePlus
  models `usage.tool_usage` as well;
- `background: true` answers `queued` at once and finishes after `x-sim-background-ms`
  (default 300); it can be read, cancelled (billed what it used: its input) and, when it
  was streamed, resumed with `GET /responses/{id}?stream=true&starting_after=N`.

Test knobs, as request headers (the proxy forwards them): `x-sim-output-tokens` (reply
length), `x-sim-delay-ms` (pause before each SSE event, or before a JSON reply),
`x-sim-status` (answer with that error status instead), `x-sim-reply-status` (a JSON
reply's success status, 200 by default), `x-sim-cut-after: N` (drop the
connection after N stream events), `x-sim-error-after: N` (send an error event after N
stream events and end there; a BytePlus model sends `data: {"error": ...}`),
`x-sim-stall-after: N` (go quiet after N stream events, never ending), `x-sim-malformed: 1`
(answer 200 with a body that is not JSON), `x-sim-framing: data-only` (SSE without
`event:` lines), `x-sim-service-tier` (the tier that serves, whatever was asked).
`GET /_sim/billed` lists the ids of the replies it billed (generated, whether or not the
client read them) and `GET /_sim/billed/usage` what each bills; `POST /_sim/forget/{id}`
makes it forget a response (finishing it first, as retention only drops ended ones).
"""

import asyncio
import math
import secrets
import time
from typing import Any

import orjson
from aiohttp import web

from proxy.simulator import chat as simulator_chat, resources as simulator_resources, usage as simulator_usage, wire as simulator_wire
from proxy.simulator.wire import (
    BYTEPLUS_CACHE_SECONDS, DEFAULT_OUTPUT_TOKENS, SIM_STATE, SimulatorState, StoredResponse, accept, authorized,
    count_tokens, error, header_int, is_byteplus, list_billed, list_requests, list_usage_records, reply_words,
    served_tier, sse_frame, texts,
)

__all__ = ["SIM_STATE", "create_simulator", "count_tokens"]

PREFIX_CACHE_MIN_TOKENS = 256
BACKGROUND_MS = 300
_TOOL_ITEMS = {"web_search": "web_search_call", "web_search_preview": "web_search_call",
               "file_search": "file_search_call", "code_interpreter": "code_interpreter_call"}
_TOOL_EVENTS = {"web_search_call": ("in_progress", "searching", "completed"),
                "file_search_call": ("in_progress", "searching", "completed"),
                "code_interpreter_call": ("in_progress", "interpreting", "completed")}


def _tool_calls(body: dict[str, Any], request: web.Request, response_id: str) -> tuple[list[dict], dict[str, int]]:
    """Output items for the built-in tools the request offers, and the calls per tool; at
    most `max_tool_calls` in all, as the real API honours it."""
    per_tool = header_int(request, "x-sim-tool-calls", 1)
    limit = body.get("max_tool_calls") if isinstance(body.get("max_tool_calls"), int) else None
    items, counts = [], {}
    container = "cntr_" + response_id[5:21]
    for tool in body.get("tools") or ():
        kind = _TOOL_ITEMS.get(tool.get("type")) if isinstance(tool, dict) else None
        if kind is None:
            continue
        name = "web_search" if kind == "web_search_call" else tool["type"]
        for n in range(per_tool if limit is None else max(0, min(per_tool, limit - len(items)))):
            item = {"id": f"{kind[:2]}_{response_id[5:17]}{len(items)}", "type": kind, "status": "completed"}
            if kind == "web_search_call":
                item["action"] = {"type": "search", "query": f"query {n}", "sources": []}
            elif kind == "file_search_call":
                item.update(queries=[f"query {n}"], results=None)
            else:
                item.update(container_id=container, code="print(1)", outputs=None)
            items.append(item)
        made = sum(1 for item in items if item["type"] == kind)
        if made:
            counts[name] = made if name != "code_interpreter" else 1
    return items, counts


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
    tool_items, tool_counts = _tool_calls(body, request, response_id)
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
        frames = _frames(response, text, reasoning if is_byteplus(model) else 0, data_only=request.headers.get(
            "x-sim-framing") == "data-only")
        if background:
            stored.frames = frames
            stored.body = {**response, "status": "in_progress", "output": [], "usage": None}
        else:
            finish()
        return await _stream(request, frames, delay, model, cut_after=header_int(request, "x-sim-cut-after"),
                             error_after=header_int(request, "x-sim-error-after"),
                             stall_after=header_int(request, "x-sim-stall-after"),
                             on_end=finish if background else None)
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
        "model": model, "output": output, "parallel_tool_calls": True,
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


def _frames(final: dict[str, Any], text: str, reasoning_words: int, *, data_only: bool) -> list[tuple[int, bytes]]:
    """The Responses API event sequence of one reply, as SSE frames numbered by sequence."""
    frames: list[tuple[int, bytes]] = []

    def add(event_type: str, payload: dict[str, Any]) -> None:
        data = {"type": event_type, "sequence_number": len(frames), **payload}
        frames.append((len(frames), sse_frame(None if data_only else event_type, data)))

    in_progress = {**final, "status": "in_progress", "output": [], "usage": None, "incomplete_details": None}
    add("response.created", {"response": in_progress})
    add("response.in_progress", {"response": in_progress})
    for index, item in enumerate(final["output"]):
        add("response.output_item.added", {"output_index": index, "item": {**item, "content": []}
                                          if item["type"] == "message" else item})
        if item["type"] in _TOOL_EVENTS:
            for phase in _TOOL_EVENTS[item["type"]]:
                add(f"response.{item['type']}.{phase}", {"output_index": index, "item_id": item["id"]})
        if item["type"] == "reasoning" and reasoning_words:  # BytePlus streams its thinking
            common = {"item_id": item["id"], "output_index": index, "summary_index": 0}
            for word in reply_words(reasoning_words, item["id"]):
                add("response.reasoning_summary_text.delta", {**common, "delta": word + " "})
        if item["type"] == "message":
            part = {"type": "output_text", "text": "", "annotations": []}
            common = {"item_id": item["id"], "output_index": index, "content_index": 0}
            add("response.content_part.added", {**common, "part": part})
            words = text.split(" ") if text else []
            for position, word in enumerate(words):
                add("response.output_text.delta", {**common, "delta": word if position == 0 else " " + word,
                                                   "logprobs": []})
            add("response.output_text.done", {**common, "text": text, "logprobs": []})
            add("response.content_part.done", {**common, "part": {**part, "text": text}})
        add("response.output_item.done", {"output_index": index, "item": item})
    add("response.completed" if final["status"] == "completed" else "response.incomplete", {"response": final})
    return frames


async def _stream(request: web.Request, frames: list[tuple[int, bytes]], delay: float, model: str, *,
                  cut_after: int | None = None, error_after: int | None = None, stall_after: int | None = None,
                  on_end=None) -> web.StreamResponse:
    """Send `frames`, cut, failed or stalled where the knobs say. A background response
    (`on_end`) finishes upstream however its stream ends."""
    stream = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await stream.prepare(request)
    try:
        for sequence, frame in frames:
            if sequence == cut_after:
                request.transport.close()  # mid-stream, no terminal event
                return stream
            if sequence == error_after:
                if is_byteplus(model):
                    payload = {"error": {"code": "InternalServiceError", "message": "The model failed mid-stream.",
                                         "param": "", "type": "InternalServiceError"}}
                    await stream.write(sse_frame(None, payload))
                else:
                    await stream.write(sse_frame("error", {
                        "type": "error", "sequence_number": sequence, "code": "server_error",
                        "message": "The model failed mid-stream.", "param": None}))
                break
            if sequence == stall_after:
                while request.transport is not None and not request.transport.is_closing():
                    await asyncio.sleep(0.05)  # quiet until the client gives up
                return stream
            if delay:
                await asyncio.sleep(delay)
            await stream.write(frame)
        await stream.write_eof()
        return stream
    finally:
        if on_end is not None:
            on_end()


async def stored_response(request: web.Request) -> web.StreamResponse:
    """GET /responses/{id} (`stream=true&starting_after=N` resumes its stream), DELETE it,
    GET its input items, POST .../cancel."""
    if refused := authorized(request):
        return refused
    state = request.app[SIM_STATE]
    response_id = request.match_info["response_id"]
    stored = state.responses.get(response_id)
    if stored is None:
        return error(404, f"Response with id '{response_id}' not found.", "invalid_request_error")
    if request.method == "DELETE":
        del state.responses[response_id]
        tokens, hours = stored.storage
        if tokens:  # storage ends now: the started hours still to come are not billed
            body = stored.body
            used = max(1, math.ceil((int(time.time()) - body["created_at"]) / 3600))  # the hour under way stays
            state.bill(response_id + ":deleted", "responses.delete", body["model"], {}, status="credit",
                       storage=(tokens, -(hours - used)))
        return web.json_response({"id": response_id, "object": "response", "deleted": True})
    if request.path.endswith("/cancel"):
        return _cancel(state, response_id, stored)
    if request.path.endswith("/input_items"):
        data = [{"id": f"msg_{i}", **item} if isinstance(item, dict) else item
                for i, item in enumerate(stored.input_items)]
        return web.json_response({"object": "list", "data": data, "has_more": False,
                                  "first_id": data[0]["id"] if data else None,
                                  "last_id": data[-1]["id"] if data else None})
    if request.query.get("stream") == "true":
        if not stored.frames:
            return error(400, "This response cannot be streamed: it was not created with stream=true.",
                         "invalid_request_error", param="stream")
        after = int(request.query.get("starting_after", "-1"))
        rest = [(n, frame) for n, frame in stored.frames if n > after]
        return await _stream(request, rest, header_int(request, "x-sim-delay-ms", 0) / 1000, stored.body["model"])
    return web.json_response(stored.body, dumps=lambda o: orjson.dumps(o).decode())


def _cancel(state: SimulatorState, response_id: str, stored: StoredResponse) -> web.Response:
    """A background response still queued or running stops and is billed what it used so far
    (its input); one that already ended is returned as it is."""
    if not stored.body.get("background"):
        return error(400, "Only responses created with background=true can be cancelled.", "invalid_request_error")
    if stored.finish is not None and not stored.finish.done():
        stored.finish.cancel()
        used = stored.input_tokens
        usage = {"input_tokens": used, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                 "output_tokens": 0, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": used}
        stored.body = {**stored.body, "status": "cancelled", "usage": usage}
        state.bill(response_id, "responses", stored.body["model"], usage, status="cancelled",
                   service_tier=stored.body.get("service_tier"))
    return web.json_response(stored.body, dumps=lambda o: orjson.dumps(o).decode())


async def forget(request: web.Request) -> web.Response:
    """Test knob: the upstream's retention ran out for this response."""
    state = request.app[SIM_STATE]
    stored = state.responses.pop(request.match_info["response_id"], None)
    if stored is not None and stored.finish is not None and not stored.finish.done():
        stored.finish.cancel()
        stored.complete()
    return web.json_response({"forgotten": stored is not None})


def create_simulator(api_key: str | None = None, admin_key: str | None = None) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[SIM_STATE] = SimulatorState(api_key=api_key)
    if admin_key:
        app[simulator_usage.ADMIN_KEY] = admin_key
    app.on_response_prepare.append(simulator_wire.account_headers)
    app.router.add_post("/v1/responses", create_response)
    app.router.add_post("/v1/responses/compact", simulator_resources.compact)
    app.router.add_post("/v1/responses/input_tokens", simulator_resources.input_tokens)
    app.router.add_get("/v1/responses/{response_id}", stored_response)
    app.router.add_delete("/v1/responses/{response_id}", stored_response)
    app.router.add_get("/v1/responses/{response_id}/input_items", stored_response)
    app.router.add_post("/v1/responses/{response_id}/cancel", stored_response)
    app.router.add_post("/v1/chat/completions", simulator_chat.create_chat_completion)
    app.router.add_post("/v1/embeddings", simulator_chat.create_embedding)
    simulator_resources.add_conversation_routes(app)
    app.router.add_get("/_sim/requests", list_requests)
    app.router.add_get("/_sim/billed", list_billed)
    app.router.add_get("/_sim/billed/usage", list_usage_records)
    app.router.add_post("/_sim/forget/{response_id}", forget)
    simulator_usage.add_usage_routes(app)
    return app
