"""`billing-proxy simulate-upstream`: a local stand-in for an OpenAI / BytePlus ModelArk
Responses API, speaking the real wire format (JSON, and SSE with the real event sequence
and `sequence_number`s).

Plausible, deterministic behaviour:
- tokens are counted as ceil(UTF-8 bytes / 4) per text piece;
- BytePlus `caching: {type: enabled, prefix: true}` stores the input as a prefix cache
  when it has at least 256 tokens (and is refused with `max_output_tokens`, as upstream);
  `caching: {type: enabled}` caches the response's whole context for the session;
- `previous_response_id` continues a stored response: its context counts as input, and
  as cached input when that response was cached;
- `thinking: {type: enabled}` (the default for seed-* models) or `reasoning` (o-series,
  gpt-5) produces reasoning tokens; `max_output_tokens` ends the reply as `incomplete`.

Test knobs, as request headers (the proxy forwards them): `x-sim-output-tokens` (reply
length), `x-sim-delay-ms` (pause before each SSE event, or before a JSON reply), `x-sim-status` (answer with that
error status instead), `x-sim-cut-after: N` (drop the connection after N stream events),
`x-sim-error-after: N` (send an `error` event after N stream events and end there),
`x-sim-stall-after: N` (go quiet after N stream events, never ending), `x-sim-malformed: 1`
(answer 200 with a body that is not JSON). `GET /_sim/billed` lists the ids of the replies
it generated (what a real upstream bills, whether or not the client read them).
"""

import asyncio
import hashlib
import math
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

PREFIX_CACHE_MIN_TOKENS = 256
DEFAULT_OUTPUT_TOKENS = 24
WORDS = ("the", "proxy", "counts", "every", "token", "and", "bills", "it", "exactly", "once")


def count_tokens(text: str) -> int:
    return math.ceil(len(text.encode("utf-8")) / 4)


def _texts(value: Any) -> list[str]:
    """Every text piece of an `input` (string, message list, content parts)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [t for item in value for t in _texts(item)]
    if isinstance(value, dict):
        texts = []
        for key in ("content", "text", "output"):
            if key in value:
                texts += _texts(value[key])
        return texts
    return []


@dataclass
class StoredResponse:
    context_tokens: int  # what a continuation carries over as input
    cached: bool
    body: dict[str, Any] = field(default_factory=dict)  # the response object, for GET
    input_items: list[Any] = field(default_factory=list)


@dataclass
class SimulatorState:
    api_key: str | None
    responses: dict[str, StoredResponse] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    billed: list[str] = field(default_factory=list)  # ids of the replies generated, as the upstream bills


SIM_STATE = web.AppKey("simulator", SimulatorState)


def _error(status: int, message: str, type_: str, code: str | None = None, param: str | None = None) -> web.Response:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return web.json_response(body, status=status, dumps=lambda o: orjson.dumps(o).decode())


def _reply_words(count: int, seed: str) -> list[str]:
    offset = int(hashlib.sha256(seed.encode()).hexdigest(), 16) % len(WORDS)
    return [WORDS[(offset + i) % len(WORDS)] for i in range(count)]


async def _accept(request: web.Request) -> dict[str, Any] | web.Response:
    """The JSON body of a creation request, logged; or the error the real API would give."""
    state = request.app[SIM_STATE]
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return _error(400, "We could not parse the JSON body of your request.", "invalid_request_error")
    state.requests.append({"path": request.path, "authorization": request.headers.get("Authorization"),
                           "headers": {str(k): v for k, v in request.headers.items()}, "body": body})
    if state.api_key and request.headers.get("Authorization") != f"Bearer {state.api_key}":
        return _error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
    if forced := request.headers.get("x-sim-status"):
        return _error(int(forced), "Simulated upstream failure.", "server_error" if int(forced) >= 500 else
                      "invalid_request_error")
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        return _error(400, "Missing required parameter: 'model'.", "invalid_request_error", param="model")
    return body


async def create_response(request: web.Request) -> web.StreamResponse:
    state = request.app[SIM_STATE]
    body = await _accept(request)
    if isinstance(body, web.Response):
        return body

    model = body["model"]
    caching = body.get("caching") if isinstance(body.get("caching"), dict) else {}
    thinking = body.get("thinking") if isinstance(body.get("thinking"), dict) else {}
    max_output = body.get("max_output_tokens")
    caching_on = caching.get("type") == "enabled"
    prefix = caching_on and caching.get("prefix") is True
    if prefix and max_output is not None:
        return _error(400, "caching.prefix is not supported together with max_output_tokens.",
                      "invalid_request_error", param="max_output_tokens")

    new_tokens = sum(count_tokens(t) for t in _texts(body.get("input")) + _texts(body.get("instructions")))
    carried = cached = 0
    previous_id = body.get("previous_response_id")
    if previous_id is not None:
        previous = state.responses.get(previous_id)
        if previous is None:
            return _error(404, f"Previous response with id '{previous_id}' not found.",
                          "invalid_request_error", param="previous_response_id")
        carried = previous.context_tokens
        cached = carried if previous.cached and caching_on else 0
    input_tokens = carried + new_tokens

    thinks = thinking.get("type") == "enabled" or (model.startswith("seed-") and thinking.get("type") != "disabled") \
        or isinstance(body.get("reasoning"), dict)
    visible = int(request.headers.get("x-sim-output-tokens", DEFAULT_OUTPUT_TOKENS))
    reasoning = 2 * visible if thinks else 0
    status, incomplete = "completed", None
    if isinstance(max_output, int) and reasoning + visible > max_output:
        status, incomplete = "incomplete", {"reason": "max_output_tokens"}
        reasoning = min(reasoning, max_output)
        visible = max_output - reasoning
    if prefix:
        visible, reasoning = 0, 0  # creating a prefix cache generates nothing

    response_id = "resp_" + secrets.token_hex(24)
    cacheable = caching_on and (not prefix or input_tokens >= PREFIX_CACHE_MIN_TOKENS)
    state.responses[response_id] = StoredResponse(
        context_tokens=input_tokens + (0 if prefix else visible), cached=cacheable)

    text = " ".join(_reply_words(visible, response_id))
    usage = {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": visible + reasoning,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input_tokens + visible + reasoning,
    }
    response = _response_object(body, response_id, model, status, incomplete, text, reasoning > 0, usage)
    state.responses[response_id].body = response
    state.billed.append(response_id)
    items = body.get("input")
    state.responses[response_id].input_items = items if isinstance(items, list) else [
        {"type": "message", "role": "user", "content": items}]
    delay = int(request.headers.get("x-sim-delay-ms", "0")) / 1000
    if body.get("stream") is True:
        return await _stream(request, response, text, delay, _event_limit(request, "x-sim-cut-after"),
                             _event_limit(request, "x-sim-error-after"), _event_limit(request, "x-sim-stall-after"))
    await asyncio.sleep(delay)
    if request.headers.get("x-sim-malformed"):
        return web.Response(body=b'{"id": "' + response_id.encode() + b'", "usage": {"input_tok',
                            content_type="application/json")
    return web.Response(body=orjson.dumps(response), content_type="application/json",
                        headers={"x-request-id": "req_" + secrets.token_hex(8)})


def _response_object(body: dict, response_id: str, model: str, status: str, incomplete: dict | None,
                     text: str, with_reasoning: bool, usage: dict) -> dict[str, Any]:
    output: list[dict[str, Any]] = []
    if with_reasoning:
        output.append({"id": "rs_" + response_id[5:], "type": "reasoning", "summary": []})
    if text or not with_reasoning:
        output.append({
            "id": "msg_" + response_id[5:], "type": "message", "status": status, "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        })
    response = {
        "id": response_id, "object": "response", "created_at": int(time.time()), "status": status,
        "error": None, "incomplete_details": incomplete, "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"), "model": model, "output": output,
        "parallel_tool_calls": True, "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None}, "store": True,
        "temperature": body.get("temperature", 1.0), "text": {"format": {"type": "text"}},
        "tool_choice": "auto", "tools": [], "top_p": body.get("top_p", 1.0), "truncation": "disabled",
        "usage": usage, "metadata": body.get("metadata") or {},
    }
    for vendor_field in ("caching", "thinking"):
        if vendor_field in body:
            response[vendor_field] = body[vendor_field]
    return response


def _event_limit(request: web.Request, header: str) -> int | None:
    value = request.headers.get(header)
    return int(value) if value is not None else None


class _StreamEnds(Exception):
    """The simulated stream stops early (cut, or after an error event)."""


async def _stream(request: web.Request, final: dict[str, Any], text: str, delay: float,
                  cut_after: int | None = None, error_after: int | None = None,
                  stall_after: int | None = None) -> web.StreamResponse:
    stream = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await stream.prepare(request)
    sequence = 0

    async def send(event_type: str, payload: dict[str, Any]) -> None:
        nonlocal sequence
        if sequence == cut_after:
            request.transport.close()  # mid-stream, no terminal event
            raise _StreamEnds
        if sequence == error_after:
            error = {"type": "error", "sequence_number": sequence, "code": "server_error",
                     "message": "The model failed mid-stream.", "param": None}
            await stream.write(b"event: error\ndata: " + orjson.dumps(error) + b"\n\n")
            raise _StreamEnds
        if sequence == stall_after:
            while request.transport is not None and not request.transport.is_closing():
                await asyncio.sleep(0.05)  # quiet until the client gives up
            raise _StreamEnds
        if delay:
            await asyncio.sleep(delay)
        data = orjson.dumps({"type": event_type, "sequence_number": sequence, **payload})
        await stream.write(b"event: " + event_type.encode() + b"\ndata: " + data + b"\n\n")
        sequence += 1

    try:
        await _send_events(send, final, text)
    except _StreamEnds:
        if cut_after is not None or stall_after is not None:
            return stream
    await stream.write_eof()
    return stream


async def _send_events(send, final: dict[str, Any], text: str) -> None:
    """The Responses API event sequence of one reply."""
    in_progress = {**final, "status": "in_progress", "output": [], "usage": None, "incomplete_details": None}
    await send("response.created", {"response": in_progress})
    await send("response.in_progress", {"response": in_progress})
    for index, item in enumerate(final["output"]):
        await send("response.output_item.added", {"output_index": index, "item": {**item, "content": []}
                                                  if item["type"] == "message" else item})
        if item["type"] == "message":
            part = {"type": "output_text", "text": "", "annotations": []}
            common = {"item_id": item["id"], "output_index": index, "content_index": 0}
            await send("response.content_part.added", {**common, "part": part})
            words = text.split(" ") if text else []
            for position, word in enumerate(words):
                delta = word if position == 0 else " " + word
                await send("response.output_text.delta", {**common, "delta": delta, "logprobs": []})
            await send("response.output_text.done", {**common, "text": text, "logprobs": []})
            await send("response.content_part.done", {**common, "part": {**part, "text": text}})
        await send("response.output_item.done", {"output_index": index, "item": item})
    terminal = "response.completed" if final["status"] == "completed" else "response.incomplete"
    await send(terminal, {"response": final})


async def create_chat_completion(request: web.Request) -> web.StreamResponse:
    """Chat Completions: JSON, or SSE chunks ending in `data: [DONE]`, with a usage-only
    chunk (and `"usage": null` on the others) when `stream_options.include_usage` is set."""
    body = await _accept(request)
    if isinstance(body, web.Response):
        return body
    prompt = sum(count_tokens(t) for t in _texts(body.get("messages")))
    visible = int(request.headers.get("x-sim-output-tokens", DEFAULT_OUTPUT_TOKENS))
    reasoning = 2 * visible if isinstance(body.get("reasoning_effort"), str) else 0
    completion_id = "chatcmpl-" + secrets.token_hex(12)
    request.app[SIM_STATE].billed.append(completion_id)
    words = _reply_words(visible, completion_id)
    usage = {"prompt_tokens": prompt, "completion_tokens": visible + reasoning,
             "total_tokens": prompt + visible + reasoning, "prompt_tokens_details": {"cached_tokens": 0},
             "completion_tokens_details": {"reasoning_tokens": reasoning}}
    common = {"id": completion_id, "created": int(time.time()), "model": body["model"]}
    if body.get("stream") is not True:
        return web.json_response({**common, "object": "chat.completion", "choices": [{
            "index": 0, "message": {"role": "assistant", "content": " ".join(words)}, "logprobs": None,
            "finish_reason": "stop"}], "usage": usage}, dumps=lambda o: orjson.dumps(o).decode())
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    stream = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await stream.prepare(request)

    async def send(choices: list, usage_value=None) -> None:
        chunk = {**common, "object": "chat.completion.chunk", "choices": choices}
        if include_usage:
            chunk["usage"] = usage_value
        await stream.write(b"data: " + orjson.dumps(chunk) + b"\n\n")

    await send([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
    for position, word in enumerate(words):
        await send([{"index": 0, "delta": {"content": word if position == 0 else " " + word}, "finish_reason": None}])
    await send([{"index": 0, "delta": {}, "finish_reason": "stop"}])
    if include_usage:
        await send([], usage)
    await stream.write(b"data: [DONE]\n\n")
    await stream.write_eof()
    return stream


async def stored_response(request: web.Request) -> web.Response:
    """GET /responses/{id}, DELETE /responses/{id}, GET /responses/{id}/input_items."""
    state = request.app[SIM_STATE]
    response_id = request.match_info["response_id"]
    stored = state.responses.get(response_id)
    if stored is None:
        return _error(404, f"Response with id '{response_id}' not found.", "invalid_request_error")
    if request.method == "DELETE":
        del state.responses[response_id]
        return web.json_response({"id": response_id, "object": "response", "deleted": True})
    if request.path.endswith("/input_items"):
        data = [{"id": f"msg_{i}", **item} if isinstance(item, dict) else item
                for i, item in enumerate(stored.input_items)]
        return web.json_response({"object": "list", "data": data, "has_more": False,
                                  "first_id": data[0]["id"] if data else None,
                                  "last_id": data[-1]["id"] if data else None})
    return web.json_response(stored.body)


async def list_requests(request: web.Request) -> web.Response:
    return web.json_response(request.app[SIM_STATE].requests)


async def list_billed(request: web.Request) -> web.Response:
    return web.json_response(request.app[SIM_STATE].billed)


def create_simulator(api_key: str | None = None) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[SIM_STATE] = SimulatorState(api_key=api_key)
    app.router.add_post("/v1/responses", create_response)
    app.router.add_post("/v1/chat/completions", create_chat_completion)
    app.router.add_get("/v1/responses/{response_id}", stored_response)
    app.router.add_delete("/v1/responses/{response_id}", stored_response)
    app.router.add_get("/v1/responses/{response_id}/input_items", stored_response)
    app.router.add_get("/_sim/requests", list_requests)
    app.router.add_get("/_sim/billed", list_billed)
    return app
