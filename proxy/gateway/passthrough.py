"""Calls relayed for the tenant that owns what they name, never billed: reading, deleting
and cancelling a response, its input items and resumed streams; conversations and their
items; input-token counts. Another tenant's id gets the 404 of an unknown one and is never
forwarded.

Replies are relayed as they arrive (a resumed stream event by event). A reply that shows a
background response ended (a read, a cancel, a resumed stream) settles its bill at once
instead of waiting for the poller.
"""

import logging

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from proxy.gateway.background import settle_before_delete, settle_from_capture
from proxy.gateway.storage_credit import storage_credit
from proxy.gateway.capture import Capture
from proxy.errors import ApiError
from proxy.gateway.auth import authenticate, check_model_allowed
from proxy.gateway.calls import owned_upstream, read_request_body
from proxy.gateway.relay import CLIENT_GONE
from proxy.gateway.headers import client_response_headers, upstream_request_headers
from proxy.gateway.paths import query_suffix, upstream_path
from proxy.gateway.request_body import check_fields_acted_on, json_object
from proxy.config.routing import Upstream
from proxy.gateway.sse import SseParser
from proxy.gateway.state import STATE, ProxyState
from proxy.gateway.stored_reply import stored_reply
from proxy.gateway.upstream import call_upstream, chunks, read_body

log = logging.getLogger(__name__)


async def relay(request: web.Request, state: ProxyState, target: Upstream, path: str,
                body: bytes | None = None, capture: Capture | None = None) -> web.StreamResponse:
    """Forward the client's request to `target` and its reply back, watched by `capture`."""
    settings = state.settings
    url = target.base_url + path + query_suffix(request)
    headers = upstream_request_headers(request.headers.items(), target.api_key, state.header_rule)
    upstream = await call_upstream(state.http, request.method, url, headers, body,
                                   first_byte_timeout=settings.first_byte_timeout(target))
    try:
        reply_headers = CIMultiDict(client_response_headers(upstream.headers.items()))
        if upstream.content_type != "text/event-stream":
            data = await read_body(upstream, settings.max_upstream_body_bytes, settings.idle_timeout(target))
            if capture is not None and 200 <= upstream.status < 300:
                capture.observe_body(data)
            return web.Response(status=upstream.status, body=data, headers=reply_headers)
        response = web.StreamResponse(status=upstream.status, headers=reply_headers)
        await response.prepare(request)
        parser = SseParser()
        try:
            async for chunk in chunks(upstream, settings.idle_timeout(target)):
                if capture is not None:
                    for event in parser.feed(chunk):
                        capture.observe_event(event)
                await response.write(chunk)
            await response.write_eof()
        except (TimeoutError, aiohttp.ClientError, *CLIENT_GONE):
            log.info("relayed stream %s ended early", request.path)
        return response
    finally:
        upstream.release()


async def owned_response(request: web.Request) -> web.StreamResponse:
    """GET / DELETE a response, GET its input items, POST .../cancel: the owner's only. A
    read with `stream=true` resumes the response's stream. A delete that ends BytePlus
    cache storage early is credited the hours it will not be stored."""
    state = request.app[STATE]
    grant = await authenticate(request, state)
    path = upstream_path(request)  # checks the id before any lookup
    response_id = request.match_info["response_id"]
    target = state.router.named((await state.owners.require(response_id, grant.tenant_id, None)).upstream)
    credit = await _before_delete(state, grant, target, response_id) if request.method == "DELETE" else None
    capture = Capture()
    response = await relay(request, state, target, path, capture=capture)
    settle_from_capture(state, capture)
    if credit is not None and 200 <= response.status < 300:
        state.writer.submit(credit)
    return response


async def _before_delete(state: ProxyState, grant, target: Upstream, response_id: str):
    """Read the response first, with the operator's key: a background job still pending is
    billed from it (or cancelled and billed from that), and a stored cache is credited the
    hours it will not be kept. A read that fails blocks no deletion (logged)."""
    try:
        _, reply = await stored_reply(state, target, response_id)
    except ApiError as error:
        log.warning("could not read response %s before deleting it (%s)", response_id, error.code)
        reply = None
    try:
        await settle_before_delete(state, target, response_id, reply)
    except ApiError as error:
        log.warning("could not cancel background response %s before deleting it (%s)", response_id, error.code)
    return storage_credit(state, grant, target.name, response_id, reply)


async def refuse_websocket(request: web.Request) -> web.Response:
    """`GET /v1/responses` (the Responses API's WebSocket mode) is refused before any
    handshake, so clients fall back to HTTP streaming at once."""
    raise ApiError(426, "The Responses API WebSocket mode is not supported by this gateway; use POST "
                        "/v1/responses with stream=true (in Codex: supports_websockets = false).",
                   code="websocket_not_supported")


async def create_conversation(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    grant = await authenticate(request, state)
    body = await read_request_body(request, state.settings.client_timeout)
    json_object(body)  # what the upstream takes: an object (the SDK sends `{}` at least)
    target = state.router.default
    capture = Capture()
    response = await relay(request, state, target, "/conversations", body, capture)
    if 200 <= response.status < 300 and capture.response_id:
        await state.owners.record(capture.response_id, grant.tenant_id, target.name)
    return response


async def owned_conversation(request: web.Request) -> web.StreamResponse:
    """A conversation and its items, for the tenant that created it."""
    state = request.app[STATE]
    grant = await authenticate(request, state)
    path = upstream_path(request)  # checks the conversation's and the item's ids before any lookup
    upstream = (await state.owners.require(request.match_info["conversation_id"], grant.tenant_id, None)).upstream
    body = await read_request_body(request, state.settings.client_timeout) if request.method == "POST" else None
    return await relay(request, state, state.router.named(upstream), path, body)


async def count_input_tokens(request: web.Request) -> web.StreamResponse:
    """POST /v1/responses/input_tokens: relayed to the model's upstream, not billed."""
    state = request.app[STATE]
    grant = await authenticate(request, state)
    body = await read_request_body(request, state.settings.client_timeout)
    payload = json_object(body)
    check_fields_acted_on(payload)
    model = payload.get("model")
    target = state.router.for_model(model) if isinstance(model, str) else state.router.default
    if isinstance(model, str):
        check_model_allowed(state, grant, model)
    target = (await owned_upstream(state, grant, payload))[0] or target
    return await relay(request, state, target, "/responses/input_tokens", body)
