"""The simulated upstream's Chat Completions and Embeddings endpoints.

Chat streams end in `data: [DONE]`. With `stream_options.include_usage` a usage-only chunk
comes last (and `"usage": null` on the others); with BytePlus'
`stream_options.chunk_include_usage` every chunk carries the running total. The knobs
`x-sim-cut-after`, `x-sim-error-after` (a `data: {"error": ...}` frame) and
`x-sim-output-tokens` work as on the Responses endpoint. `n` choices are billed, each up to
the chat output cap (a stream carries the first choice only).
"""

import base64
import secrets
import struct
import time
from typing import Any

import orjson
from aiohttp import web

from proxy.simulator.wire import (
    DEFAULT_OUTPUT_TOKENS, SIM_STATE, accept, count_tokens, error, header_int, reply_words, served_tier, sse_frame,
    texts,
)

EMBEDDING_DIMENSIONS = 8


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


async def create_chat_completion(request: web.Request) -> web.StreamResponse:
    state = request.app[SIM_STATE]
    body = await accept(request)
    if isinstance(body, web.Response):
        return body
    prompt = sum(count_tokens(t) for t in texts(body.get("messages")))
    visible = header_int(request, "x-sim-output-tokens", DEFAULT_OUTPUT_TOKENS)
    reasoning = 2 * visible if isinstance(body.get("reasoning_effort"), str) else 0
    # Each of the `n` choices generates up to the cap Chat Completions honours (the larger of
    # max_completion_tokens and max_tokens; max_output_tokens is not a chat field).
    caps = [c for c in (body.get("max_completion_tokens"), body.get("max_tokens")) if isinstance(c, int)]
    finish = "stop"
    if caps and reasoning + visible > max(caps):
        reasoning = min(reasoning, max(caps))
        visible, finish = max(caps) - reasoning, "length"
    choices_count = body["n"] if isinstance(body.get("n"), int) and body["n"] >= 1 else 1
    completion_id = "chatcmpl-" + secrets.token_hex(12)
    tier = served_tier(request, body)
    words = reply_words(visible, completion_id)

    def usage(generated: int) -> dict[str, Any]:
        generated *= choices_count
        return {"prompt_tokens": prompt, "completion_tokens": generated, "total_tokens": prompt + generated,
                "prompt_tokens_details": {"cached_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": min(generated, reasoning * choices_count)}}

    final = usage(visible + reasoning)
    state.bill(completion_id, "chat.completions", body["model"], final, service_tier=tier)
    common = {"id": completion_id, "created": int(time.time()), "model": body["model"], "service_tier": tier}
    if body.get("stream") is not True:
        return web.json_response({**common, "object": "chat.completion", "choices": [{
            "index": index, "message": {"role": "assistant", "content": " ".join(words)}, "logprobs": None,
            "finish_reason": finish} for index in range(choices_count)], "usage": final}, dumps=_dumps)
    options = body.get("stream_options") or {}
    include_usage, running = bool(options.get("include_usage")), bool(options.get("chunk_include_usage"))
    chunks: list[tuple[list, dict | None]] = [([{"index": 0, "delta": {"role": "assistant", "content": ""},
                                                 "finish_reason": None}], usage(reasoning))]
    for position, word in enumerate(words):
        chunks.append(([{"index": 0, "delta": {"content": word if position == 0 else " " + word},
                         "finish_reason": None}], usage(reasoning + position + 1)))
    chunks.append(([{"index": 0, "delta": {}, "finish_reason": finish}], final))
    if include_usage:
        chunks.append(([], final))
    cut_after, error_after = header_int(request, "x-sim-cut-after"), header_int(request, "x-sim-error-after")
    stream = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await stream.prepare(request)
    for sequence, (choices, running_usage) in enumerate(chunks):
        if sequence == cut_after:
            request.transport.close()
            return stream
        if sequence == error_after:
            await stream.write(sse_frame(None, {"error": {"code": "InternalServiceError", "message": "failed",
                                                          "param": "", "type": "InternalServiceError"}}))
            await stream.write_eof()
            return stream
        chunk = {**common, "object": "chat.completion.chunk", "choices": choices}
        if running:
            chunk["usage"] = running_usage
        elif include_usage:
            chunk["usage"] = running_usage if not choices else None
        await stream.write(sse_frame(None, chunk))
    await stream.write(b"data: [DONE]\n\n")
    await stream.write_eof()
    return stream


def _vector(seed: int, encoding: str) -> list[float] | str:
    values = [((seed * 31 + i * 17) % 200 - 100) / 100 for i in range(EMBEDDING_DIMENSIONS)]
    if encoding == "base64":  # what the openai SDK asks for by default
        return base64.b64encode(struct.pack(f"<{EMBEDDING_DIMENSIONS}f", *values)).decode()
    return values


async def create_embedding(request: web.Request) -> web.Response:
    state = request.app[SIM_STATE]
    body = await accept(request)
    if isinstance(body, web.Response):
        return body
    items = body.get("input")
    if isinstance(items, str) or (isinstance(items, list) and items and isinstance(items[0], int)):
        items = [items]
    if not isinstance(items, list) or not items:
        return error(400, "'input' is required.", "invalid_request_error", param="input")
    tokens = sum(len(item) if isinstance(item, list) else count_tokens(str(item)) for item in items)
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    reply_id = "emb_" + secrets.token_hex(12)
    state.bill(reply_id, "embeddings", body["model"], usage)
    encoding = body.get("encoding_format", "float")
    data = [{"object": "embedding", "index": i, "embedding": _vector(i + tokens, encoding)} for i in range(len(items))]
    return web.json_response({"object": "list", "data": data, "model": body["model"], "usage": usage},
                             dumps=_dumps)
