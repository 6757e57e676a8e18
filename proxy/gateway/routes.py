"""The gateway's routes: every path a team's key calls."""

from aiohttp import web

from proxy.gateway import calls, passthrough
from proxy.gateway.models_list import list_models, retrieve_model
from proxy.gateway.run_budgets import add_run_budget_routes
from proxy.gateway.self_service import add_self_service_routes


def add_gateway_routes(app: web.Application) -> None:
    # Billed calls.
    app.router.add_post("/v1/responses", calls.create_response)
    app.router.add_get("/v1/responses", passthrough.refuse_websocket)
    app.router.add_post("/v1/chat/completions", calls.create_chat_completion)
    app.router.add_post("/v1/embeddings", calls.create_embedding)
    app.router.add_post("/v1/responses/compact", calls.compact_response)
    # Relayed for the owner, never billed (a background response's end settles its bill).
    app.router.add_post("/v1/responses/input_tokens", passthrough.count_input_tokens)
    app.router.add_get("/v1/responses/{response_id}", passthrough.owned_response)
    app.router.add_delete("/v1/responses/{response_id}", passthrough.owned_response)
    app.router.add_get("/v1/responses/{response_id}/input_items", passthrough.owned_response)
    app.router.add_post("/v1/responses/{response_id}/cancel", passthrough.owned_response)
    app.router.add_post("/v1/conversations", passthrough.create_conversation)
    for path in ("/v1/conversations/{conversation_id}", "/v1/conversations/{conversation_id}/items",
                 "/v1/conversations/{conversation_id}/items/{item_id}"):
        for method in ("GET", "POST", "DELETE"):
            app.router.add_route(method, path, passthrough.owned_conversation)
    # Answered here.
    app.router.add_get("/v1/models", list_models)
    add_self_service_routes(app)
    add_run_budget_routes(app)
    app.router.add_get("/v1/models/{model}", retrieve_model)
