"""The simulated upstream as an aiohttp app: its routes, and the knob that makes it forget a
response."""

from aiohttp import web

from proxy.simulator import chat, resources, usage, wire
from proxy.simulator.responses import create_response
from proxy.simulator.stored import stored_response
from proxy.simulator.wire import SIM_STATE, SimulatorState, list_billed, list_requests, list_usage_records


async def forget(request: web.Request) -> web.Response:
    """Test knob: the upstream's retention ran out for this response."""
    state = request.app[SIM_STATE]
    stored = state.responses.pop(request.match_info["response_id"], None)
    if stored is not None and stored.finish is not None and not stored.finish.done():
        stored.finish.cancel()
        stored.complete()
    return web.json_response({"forgotten": stored is not None})


def create_simulator(api_key: str | None = None, admin_key: str | None = None) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[wire.log_paths])
    app[SIM_STATE] = SimulatorState(api_key=api_key)
    if admin_key:
        app[usage.ADMIN_KEY] = admin_key
    app.on_response_prepare.append(wire.account_headers)
    app.router.add_post("/v1/responses", create_response)
    app.router.add_post("/v1/responses/compact", resources.compact)
    app.router.add_post("/v1/responses/input_tokens", resources.input_tokens)
    app.router.add_get("/v1/responses/{response_id}", stored_response)
    app.router.add_delete("/v1/responses/{response_id}", stored_response)
    app.router.add_get("/v1/responses/{response_id}/input_items", stored_response)
    app.router.add_post("/v1/responses/{response_id}/cancel", stored_response)
    app.router.add_post("/v1/chat/completions", chat.create_chat_completion)
    app.router.add_post("/v1/embeddings", chat.create_embedding)
    resources.add_conversation_routes(app)
    app.router.add_get("/_sim/requests", list_requests)
    app.router.add_get("/_sim/billed", list_billed)
    app.router.add_get("/_sim/billed/usage", list_usage_records)
    app.router.add_post("/_sim/forget/{response_id}", forget)
    usage.add_usage_routes(app)
    return app
