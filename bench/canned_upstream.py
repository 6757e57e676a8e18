"""A fast stand-in for the upstream, for benchmarks: canned Responses API replies in the
real wire format (JSON, or SSE with the real event sequence and a usage-bearing
`response.completed`), so that the upstream is never what limits a measurement.

    python bench/canned_upstream.py --port 9100

`x-sim-delay-ms` pauses between SSE events (slow streams); `GET /_count` says how many
replies it generated (what a real upstream would bill).
"""

import argparse
import asyncio
import itertools

import orjson
from aiohttp import web

USAGE = {"input_tokens": 12, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 24,
         "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 36}
WORDS = ["Hello", " there", ",", " this", " is", " a", " canned", " reply", "."]
COUNT = web.AppKey("count", list)


def response_object(response_id: str, model: str, status: str, request: dict) -> dict:
    """The Response object as the API returns it; a request with a `web_search` tool gets a
    `web_search_call` output item before its message, and a `service_tier` is echoed back
    (as the API reports the tier it served)."""
    text = "".join(WORDS)
    output = [{"type": "web_search_call", "id": "ws_" + response_id[5:], "status": "completed",
               "action": {"type": "search", "query": "hello"}}] if _searches(request) else []
    output.append({"type": "message", "id": "msg_" + response_id[5:], "status": "completed", "role": "assistant",
                   "content": [{"type": "output_text", "text": text, "annotations": []}]})
    return {"id": response_id, "object": "response", "created_at": 1764000000, "status": status, "model": model,
            "service_tier": request.get("service_tier") or "default",
            "output": output if status == "completed" else [], "usage": USAGE if status == "completed" else None}


def _searches(request: dict) -> bool:
    return any(isinstance(t, dict) and t.get("type") in ("web_search", "web_search_preview")
               for t in request.get("tools") or ())


def sse(event_type: str, sequence: int, payload: dict) -> bytes:
    data = orjson.dumps({"type": event_type, "sequence_number": sequence, **payload})
    return b"event: " + event_type.encode() + b"\ndata: " + data + b"\n\n"


async def create_response(request: web.Request) -> web.StreamResponse:
    body = orjson.loads(await request.read())
    counter = request.app[COUNT]
    counter[0] += 1
    response_id = f"resp_{next(counter[1]):024x}"
    model = body.get("model", "gpt-4o-mini")
    if not body.get("stream"):
        return web.Response(body=orjson.dumps(response_object(response_id, model, "completed", body)),
                            content_type="application/json")
    delay = int(request.headers.get("x-sim-delay-ms", "0")) / 1000
    stream = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await stream.prepare(request)
    in_progress = response_object(response_id, model, "in_progress", body)
    completed = response_object(response_id, model, "completed", body)
    events = [("response.created", {"response": in_progress}), ("response.in_progress", {"response": in_progress})]
    if _searches(body):
        search = completed["output"][0]
        events += [("response.output_item.added", {"output_index": 0, "item": {**search, "status": "in_progress"}}),
                   ("response.web_search_call.in_progress", {"output_index": 0, "item_id": search["id"]}),
                   ("response.web_search_call.searching", {"output_index": 0, "item_id": search["id"]}),
                   ("response.web_search_call.completed", {"output_index": 0, "item_id": search["id"]}),
                   ("response.output_item.done", {"output_index": 0, "item": search})]
    message = completed["output"][-1]
    events += [("response.output_text.delta", {"item_id": message["id"], "output_index": len(completed["output"]) - 1,
                                               "content_index": 0,
                                               "delta": word}) for word in WORDS]
    events.append(("response.completed", {"response": completed}))
    for sequence, (event_type, payload) in enumerate(events):
        if delay and sequence:
            await asyncio.sleep(delay)
        await stream.write(sse(event_type, sequence, payload))
    await stream.write_eof()
    return stream


async def count(request: web.Request) -> web.Response:
    return web.json_response({"generated": request.app[COUNT][0]})


def create_app() -> web.Application:
    app = web.Application()
    app[COUNT] = [0, itertools.count(1)]
    app.router.add_post("/v1/responses", create_response)
    app.router.add_get("/_count", count)
    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=9100)
    args = parser.parse_args()
    try:
        import uvloop
        loop = uvloop.new_event_loop()
    except ImportError:
        loop = None
    web.run_app(create_app(), host="127.0.0.1", port=args.port, print=None, access_log=None, loop=loop)
