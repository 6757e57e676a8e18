"""What the simulated upstream does with a response it stored: read it (or resume its
stream), list its input items, delete it (ending its cache storage), cancel it."""

import math
import time

import orjson
from aiohttp import web

from proxy.simulator.events import send
from proxy.simulator.wire import SIM_STATE, SimulatorState, StoredResponse, authorized, error, header_int


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
        return await send(request, rest, header_int(request, "x-sim-delay-ms", 0) / 1000, stored.body["model"])
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
