"""HTTP handlers: authenticate, validate, price-check, forward, relay, record usage."""

import asyncio
import logging
import time
from datetime import datetime, timezone
from uuid import uuid4

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from sqlalchemy import text

from billing.keys import KeyGrant, KeyRefused, admit_key, hash_secret, model_allowed
from billing.ledger import CallContext, build_entry
from billing.usage import estimate_usage
from proxy.admission import admit_call, release_later, remaining_headers
from proxy.capture import Capture
from proxy.errors import ApiError
from proxy.headers import bearer_token, client_response_headers, upstream_request_headers
from proxy.request_body import check_prefix_caching, parse_request
from proxy.sse import SseParser
from proxy.state import STATE, ProxyState
from proxy.routing import Upstream
from proxy.upstream import call_upstream, read_body

log = logging.getLogger(__name__)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        async with asyncio.timeout(2):
            async with state.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except Exception:
        return web.json_response({"status": "unavailable", "database": "unreachable"}, status=503)
    return web.json_response({"status": "ready", "database": "ok", "ledger_backlog": state.writer.backlog})


async def authenticate(request: web.Request, state: ProxyState) -> KeyGrant:
    secret = bearer_token(request.headers)
    if secret is None:
        raise ApiError(401, "You didn't provide an API key. Send it as `Authorization: Bearer <key>`.",
                       code="invalid_api_key")
    secret_hash = hash_secret(secret)
    grant = state.mirror.grant(secret_hash) or await state.mirror.grant_after_sync(secret_hash)
    try:
        return admit_key(grant, datetime.now(timezone.utc))
    except KeyRefused as refused:
        raise ApiError(refused.status, refused.message, code=refused.code) from None


async def create_response(request: web.Request) -> web.StreamResponse:
    return await _proxy_call(request, endpoint="responses", path="/responses")


async def create_chat_completion(request: web.Request) -> web.StreamResponse:
    return await _proxy_call(request, endpoint="chat.completions", path="/chat/completions")


async def response_passthrough(request: web.Request) -> web.Response:
    """GET / DELETE a response, GET its input items: the owner's only, never billed."""
    state = request.app[STATE]
    grant = await authenticate(request, state)
    response_id = request.match_info["response_id"]
    target = state.router.named(await state.owners.require(response_id, grant.tenant_id, None))
    path = request.path.removeprefix("/v1")
    url = target.base_url + path + (f"?{request.query_string}" if request.query_string else "")
    headers = upstream_request_headers(request.headers.items(), target.api_key)
    upstream = await call_upstream(state.http, request.method, url, headers, read_timeout=target.read_timeout)
    try:
        body = await read_body(upstream, state.settings.max_upstream_body_bytes)
    finally:
        upstream.release()
    return web.Response(status=upstream.status, body=body,
                        headers=CIMultiDict(client_response_headers(upstream.headers.items())))


async def _proxy_call(request: web.Request, *, endpoint: str, path: str) -> web.StreamResponse:
    state = request.app[STATE]
    request_id = uuid4()
    started_at = datetime.now(timezone.utc)
    started = time.perf_counter()
    grant = await authenticate(request, state)
    client_request = parse_request(await request.read(), endpoint=endpoint)
    pricebook = state.mirror.pricebook
    if not model_allowed(grant, client_request.model, pricebook.resolve_name(client_request.model)):
        raise ApiError(403, f"This API key may not use the model {client_request.model!r}.",
                       code="model_not_allowed", param="model")
    upstream = state.router.for_model(client_request.model)
    if endpoint == "responses" and client_request.payload.get("previous_response_id") is not None:
        # a continuation goes to the upstream that made the response it continues
        upstream = state.router.named(await state.owners.require(
            client_request.payload["previous_response_id"], grant.tenant_id, "previous_response_id"))
    if endpoint == "responses" and upstream.refuse_prefix_with_max_output_tokens:
        check_prefix_caching(client_request.payload)
    price = pricebook.resolve(client_request.model, started_at, grant.tenant_id)
    if price is None:
        raise ApiError(400, f"The model {client_request.model!r} has no price configured, so it cannot be "
                            "billed; ask an operator to add one.", code="model_not_priced", param="model")
    period, admission = await admit_call(state, grant, request_id, started_at, client_request, price)
    call = CallContext(request_id=request_id, tenant_id=grant.tenant_id, key_id=grant.key_id, endpoint=endpoint,
                       stream=client_request.stream, started_at=started_at, price=price,
                       price_multiplier=grant.price_multiplier, quota_period=period, reserved=admission is not None,
                       request_bytes=len(client_request.body), upstream=upstream.name)
    headers = upstream_request_headers(request.headers.items(), upstream.api_key)
    # Once the call goes upstream it must be seen through and recorded even if the client
    # hangs up and the server cancels this handler: the upstream bills it either way.
    exchange = state.spawn(_exchange(request, state, call, client_request.body, headers, upstream, path, started,
                                     remaining_headers(admission), client_request.hide_usage_chunk))
    exchange.add_done_callback(_log_failure)
    return await asyncio.shield(exchange)


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None and not isinstance(task.exception(), ApiError):
        log.error("upstream exchange failed", exc_info=task.exception())


async def _exchange(request: web.Request, state: ProxyState, call: CallContext, body: bytes,
                    headers: dict[str, str], target: Upstream, path: str, started: float,
                    billing_headers: dict[str, str], hide_usage_chunk: bool) -> web.StreamResponse:
    try:
        upstream = await call_upstream(state.http, "POST", target.base_url + path, headers, body,
                                       target.read_timeout)
    except ApiError:
        if call.reserved:
            release_later(state, call.request_id)
        raise
    relay = _Relay(state, call, started, billing_headers)
    try:
        if call.stream and upstream.status == 200 and upstream.content_type == "text/event-stream":
            return await relay.stream(request, upstream, hide_usage_chunk)
        return await relay.whole(upstream)
    finally:
        upstream.release()
        relay.record()


class _Relay:
    """Relays one upstream reply to the client and records its usage exactly once."""

    def __init__(self, state: ProxyState, call: CallContext, started: float, billing_headers: dict[str, str]):
        self.state, self.call, self.started = state, call, started
        self.billing_headers = billing_headers
        self.capture = Capture()
        self.first_byte_ms: int | None = None
        self.streamed = False  # an SSE reply with status 200 began to flow

    def _headers(self, upstream: aiohttp.ClientResponse) -> CIMultiDict:
        headers = CIMultiDict(client_response_headers(upstream.headers.items()))
        headers["x-request-id"] = str(self.call.request_id)
        headers.update(self.billing_headers)
        return headers

    def _first_byte(self) -> None:
        if self.first_byte_ms is None:
            self.first_byte_ms = round((time.perf_counter() - self.started) * 1000)

    async def whole(self, upstream: aiohttp.ClientResponse) -> web.Response:
        body = await read_body(upstream, self.state.settings.max_upstream_body_bytes)
        self._first_byte()
        if upstream.status == 200:
            self.capture.observe_body(body)
        return web.Response(status=upstream.status, body=body, headers=self._headers(upstream))

    async def stream(self, request: web.Request, upstream: aiohttp.ClientResponse,
                     hide_usage_chunk: bool = False) -> web.StreamResponse:
        """Relay the upstream's bytes as they come. Only when a usage chunk the client did not
        ask for must be hidden are events re-framed one by one (`data: ...` and a blank line,
        the framing Chat Completions streams use)."""
        response = web.StreamResponse(status=upstream.status, headers=self._headers(upstream))
        await response.prepare(request)
        self.streamed = True
        parser = SseParser()
        chat = self.call.endpoint == "chat.completions"
        client_connected = True
        try:
            async for chunk in upstream.content.iter_any():
                self._first_byte()
                outgoing = [] if hide_usage_chunk else [chunk]
                for event in parser.feed(chunk):
                    if not chat:
                        self.capture.observe_event(event)
                    elif not self.capture.observe_chat_chunk(event) and hide_usage_chunk:
                        outgoing.append(b"data: " + event.data.encode() + b"\n\n")
                if client_connected and outgoing:
                    try:
                        for piece in outgoing:
                            await response.write(piece)
                    except (ConnectionError, aiohttp.ClientConnectionResetError):
                        # Keep reading: the upstream bills the whole reply, so must we.
                        client_connected = False
        except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
            log.warning("upstream stream %s broke off: %s", self.call.request_id, type(exc).__name__)
        if client_connected:
            try:
                await response.write_eof()
            except (ConnectionError, aiohttp.ClientConnectionResetError):
                pass
        return response

    def record(self) -> None:
        if self.call.endpoint == "responses" and self.capture.response_id:
            self.state.owners.remember(self.capture.response_id, self.call.tenant_id, self.call.upstream)
        usage, status, estimated = self.capture.usage, self.capture.status or "completed", False
        if usage is None and self.streamed:
            # An `error` event, or a stream cut before its terminal event: the upstream may
            # still bill it, so it is recorded from an estimate, flagged, never as zero.
            usage = estimate_usage(self.call.request_bytes, self.capture.output_text_bytes)
            status, estimated = "usage_missing", True
            log.warning("stream %s ended without usage (%s); recorded from an estimate", self.call.request_id,
                        "error event" if self.capture.error_event else "cut off")
        if usage is None:
            if self.call.reserved:
                release_later(self.state, self.call.request_id)
            return
        entry = build_entry(
            self.call, usage, status=status, upstream_response_id=self.capture.response_id,
            finished_at=datetime.now(timezone.utc), first_byte_ms=self.first_byte_ms, estimated=estimated,
        )
        self.state.writer.submit(entry)
