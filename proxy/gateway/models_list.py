"""GET /v1/models: the models a key may use, in the OpenAI list shape. Many clients call it
first; it answers from the price book in memory, never from the upstream (whose list names
models the operator has not priced, and would need the operator's key)."""

from aiohttp import web

from billing.keys import KeyGrant, model_allowed
from proxy.errors import ApiError
from proxy.gateway.auth import authenticate
from proxy.gateway.state import STATE, ProxyState


def _models(state: ProxyState, grant: KeyGrant) -> list[dict]:
    book = state.mirror.pricebook
    return [{"id": name, "object": "model", "created": 0, "owned_by": state.router.for_model(name).name}
            for name in book.names if model_allowed(grant, name, book.resolve_name(name))]


async def list_models(request: web.Request) -> web.Response:
    state = request.app[STATE]
    grant = await authenticate(request, state)
    return web.json_response({"object": "list", "data": _models(state, grant)})


async def retrieve_model(request: web.Request) -> web.Response:
    state = request.app[STATE]
    grant = await authenticate(request, state)
    name = request.match_info["model"]
    found = next((m for m in _models(state, grant) if m["id"] == name), None)
    if found is None:
        raise ApiError(404, f"The model '{name}' does not exist or you do not have access to it.",
                       code="model_not_found", param="model")
    return web.json_response(found)
