"""The billed calls (`POST /v1/responses`, `/v1/chat/completions`, `/v1/embeddings`,
`/v1/responses/compact`): authenticate, parse and check the body, pick the upstream, take
rate limits and concurrency, reserve the worst case, then hand the exchange to the relay."""

import asyncio
import logging
import time
from dataclasses import replace
from datetime import datetime, timezone

from aiohttp import web

from billing.attribution import Attribution, AttributionError, attribution_of
from billing.keys import KeyGrant
from billing.ledger import CallContext, call_record
from billing.pricebook import ResolvedPrice
from billing.model_traits import reasoning_turned_off, reasons_by_default
from billing.quota import worst_output_tokens, worst_tools, worst_usage
from billing.request_bounds import RequestBounds, request_bounds
from billing.tokenizer import text_counter
from proxy.errors import MODEL, REQUEST_ID, ApiError
from proxy.gateway.admission import admit_call, remaining_headers
from proxy.gateway.auth import authenticate, check_model_allowed
from proxy.gateway.containers import owned_container_units
from proxy.gateway.headers import upstream_request_headers
from proxy.gateway.limits import Taken, end_limits, take_limits
from proxy.gateway.relay import Relay
from proxy.gateway.request_body import (PREFIX_UNFITTABLE, ClientRequest, check_prefix_caching, parse_request,
                                        prefix_cached, with_output_cap, with_tool_call_cap)
from proxy.config.routing import Upstream
from proxy.gateway.state import STATE, ProxyState
from proxy.gateway.unpriced import unpriced_error
from proxy.observability import metrics
from proxy.observability.access_log import OUTPUT_FIT, REQUESTED_MODEL

log = logging.getLogger(__name__)


async def create_response(request: web.Request) -> web.StreamResponse:
    return await _proxy_call(request, endpoint="responses", path="/responses")


async def create_chat_completion(request: web.Request) -> web.StreamResponse:
    return await _proxy_call(request, endpoint="chat.completions", path="/chat/completions")


async def create_embedding(request: web.Request) -> web.StreamResponse:
    return await _proxy_call(request, endpoint="embeddings", path="/embeddings")


async def compact_response(request: web.Request) -> web.StreamResponse:
    return await _proxy_call(request, endpoint="responses.compact", path="/responses/compact")


async def owned_upstream(state: ProxyState, grant: KeyGrant, payload: dict) -> tuple[Upstream | None, int | None]:
    """The upstream holding the response or conversation a call continues, once the tenant is
    known to own it (else the 404 of an unknown id), None when it continues nothing; and the
    tokens of context it carries over (None: of a size not known yet)."""
    owner, carried = None, 0
    conversation = conversation_id(payload)
    if conversation is not None:
        owner = await state.owners.require(conversation, grant.tenant_id, "conversation")
        carried = await state.owners.context_tokens(conversation, owner)
    previous = payload.get("previous_response_id")
    if previous is not None:
        owner = await state.owners.require(previous, grant.tenant_id, "previous_response_id")
        context = await state.owners.context_tokens(previous, owner)
        carried = None if carried is None or context is None else context
    return (state.router.named(owner.upstream) if owner is not None else None), carried


def attributed(state: ProxyState, client_request: ClientRequest, request: web.Request) -> Attribution:
    """Who inside the team the call is for; a bad value is a 400 naming it."""
    try:
        return attribution_of(client_request.payload, request.headers, state.attribution_rules)
    except AttributionError as error:
        raise ApiError(400, str(error), type="invalid_request_error", code="invalid_request_error",
                       param=error.param) from None


def conversation_id(payload: dict) -> object:
    conversation = payload.get("conversation")
    return conversation.get("id") if isinstance(conversation, dict) else conversation


async def _proxy_call(request: web.Request, *, endpoint: str, path: str) -> web.StreamResponse:
    state = request.app[STATE]
    started_at = datetime.now(timezone.utc)
    started = time.perf_counter()
    grant = await authenticate(request, state)
    try:
        return await _billed_call(request, state, grant, endpoint, path, started_at, started)
    except ApiError as error:
        if error.status == 429 or error.refusal:  # a limit said no: counted for the dashboard
            state.refusals.count(grant.tenant_id, grant.key_id, error)
        raise


async def _billed_call(request: web.Request, state: ProxyState, grant: KeyGrant, endpoint: str, path: str,
                       started_at: datetime, started: float) -> web.StreamResponse:
    client_request = parse_request(await read_request_body(request, state.settings.client_timeout),
                                   endpoint=endpoint)
    attribution = attributed(state, client_request, request)
    request[REQUESTED_MODEL] = client_request.model
    pricebook = state.mirror.pricebook
    check_model_allowed(state, grant, client_request.model)
    # a continuation goes to the upstream that made the response or conversation it continues
    continued, carried = await owned_upstream(state, grant, client_request.payload)
    upstream = continued or state.router.for_model(client_request.model)
    if endpoint == "responses" and upstream.refuse_prefix_with_max_output_tokens:
        check_prefix_caching(client_request.payload)
    price = pricebook.resolve(client_request.model, started_at, grant.tenant_id)
    if price is None:  # counted, so an operator sees the model the day clients start sending it
        metrics.count_unpriced(client_request.model)
        state.unpriced.count(grant.tenant_id, grant.key_id, client_request.model, started_at)
        raise unpriced_error(pricebook, grant, client_request.model)
    containers = await owned_container_units(state, grant.tenant_id, client_request.payload.get("tools")) \
        if endpoint == "responses" else {}
    bounds = await _bounds(state, grant, client_request, endpoint, started_at, containers)
    taken = NOTHING_TAKEN
    if grant.rate_limits or grant.max_concurrent is not None:
        tokens = 0
        if grant.tokens_per_minute is not None or grant.tenant_tokens_per_minute is not None:
            worst = worst_usage(len(client_request.body), bounds, price, state.limits, carried)
            tokens = worst.input_tokens + worst.output_tokens
        taken = await take_limits(state, grant, tokens)
    try:
        exchange = await _admitted_call(request, state, grant, client_request, endpoint, path, started_at, started,
                                        upstream, price, bounds, carried, taken, attribution)
    except BaseException as error:
        end_limits(state, taken, 0, ran=False)  # it never went upstream
        if isinstance(error, ApiError):
            error.headers = {**taken.headers, **error.headers}
        raise
    return await asyncio.shield(exchange)


NOTHING_TAKEN = Taken()
INLINE_COUNT_BYTES = 32 * 1024  # a larger body is counted in tokens off the event loop (3 to 5 ms per 40 KB)
COUNTED_BODY_BYTES = 8 * 1024 * 1024  # a larger one is bounded by its bytes (about a second to count)


async def _bounds(state: ProxyState, grant: KeyGrant, client_request: ClientRequest, endpoint: str,
                  started_at: datetime, containers: dict[str, str]) -> RequestBounds:
    """The request's bounds; its input counted in tokens where the model's tokenizer is known
    and a limit weighs the call (bytes are free to count, tokens are not)."""
    count = text_counter(client_request.model, state.settings.o200k_models) \
        if grant.weighs_calls and len(client_request.body) <= COUNTED_BODY_BYTES else None
    now = int(started_at.timestamp())
    if count is None or len(client_request.body) <= INLINE_COUNT_BYTES:
        return request_bounds(client_request.payload, endpoint, now, count, containers)
    return await asyncio.to_thread(request_bounds, client_request.payload, endpoint, now, count, containers)


async def _admitted_call(request: web.Request, state: ProxyState, grant: KeyGrant, client_request: ClientRequest,
                         endpoint: str, path: str, started_at: datetime, started: float, upstream: Upstream,
                         price: ResolvedPrice, bounds: RequestBounds, carried: int | None,
                         taken: Taken, attribution: Attribution) -> asyncio.Task:
    """Reserve the call's budget and start its exchange with the upstream."""
    request_id = request[REQUEST_ID]
    unfittable = PREFIX_UNFITTABLE if endpoint == "responses" and upstream.refuse_prefix_with_max_output_tokens \
        and prefix_cached(client_request.payload) else None
    period, admission, fitted = await admit_call(state, grant, request_id, started_at, client_request, price,
                                                 bounds, carried, endpoint, unfittable, upstream.price_uplift,
                                                 attribution)
    billing_headers = {**remaining_headers(admission), **taken.headers}
    if fitted is not None:
        # forwarded with the cap the budget pays for; the reply may end `incomplete` there
        client_request = with_output_cap(client_request, endpoint, fitted.cap)
        bounds = replace(bounds, output_cap=fitted.cap)
        billing_headers |= {"x-billing-output-cap": str(fitted.cap), "x-billing-output-cap-limit": fitted.limit}
        request[OUTPUT_FIT] = (fitted.cap, fitted.limit)
    if endpoint == "responses" and bounds.tool_units and bounds.max_tool_calls is None:
        # what the worst case assumed, made a bound the upstream honours
        client_request = with_tool_call_cap(client_request, state.limits.tool_calls)
    call = CallContext(request_id=request_id, tenant_id=grant.tenant_id, key_id=grant.key_id, endpoint=endpoint,
                       stream=client_request.stream, started_at=started_at, price=price,
                       price_multiplier=grant.price_multiplier, quota_period=period,
                       reserved=admission is not None and not admission.offline and admission.lease is None,
                       request_bytes=len(client_request.body), upstream=upstream.name, carried_tokens=carried or 0,
                       output_cap=worst_output_tokens(bounds, price, state.limits),
                       reasoning=bounds.reasoning or (reasons_by_default(price.model)
                                                      and not reasoning_turned_off(client_request.payload)),
                       cost_uplift=upstream.price_uplift,
                       unseen_input_tokens=unseen_input_tokens(state, bounds, carried),
                       worst_tools=worst_tools(bounds, price, state.limits),
                       end_user=attribution.user, tags=attribution.tags,
                       run_budget=attribution.run)
    # From here the call may be billed: the spool knows of it before the upstream does, so
    # even a crash mid-call leaves an (estimated) entry behind (unless the disk fails: logged).
    state.writer.spool.begin(str(request_id), call_record(call))
    headers = upstream_request_headers(request.headers.items(), upstream.api_key, state.header_rule)
    request[MODEL] = price.model  # the priced model: a bounded set of metric labels, whatever clients send
    # Once the call goes upstream it must be seen through and recorded even if the client
    # hangs up and the server cancels this handler: the upstream bills it either way.
    conversation = conversation_id(client_request.payload) if endpoint == "responses" else None
    relay = Relay(state, call, started, billing_headers, grant, admission, taken, client_request.background,
                  conversation=conversation if isinstance(conversation, str) else None)
    exchange = state.spawn(relay.exchange(request, client_request.body, headers, upstream, path,
                                          client_request.hide_usage_chunk))
    exchange.add_done_callback(_log_failure)
    return exchange


def unseen_input_tokens(state: ProxyState, bounds: RequestBounds, carried: int | None) -> int:
    """Input the body does not show, for an estimate should usage never come: its images,
    and the context window when a part (a file, a stored prompt) or the context carried over
    is of a size the proxy cannot know."""
    images = bounds.images * state.limits.image_tokens
    return max(images, state.limits.context_window) if bounds.unsized_parts or carried is None else images


async def read_request_body(request: web.Request, timeout: float) -> bytes:
    """The client's body; a client too slow to send it (slowloris) gets 408."""
    if request.content.is_eof():  # it came whole with the headers: no timer needed
        return await request.read()
    try:
        async with asyncio.timeout(timeout):
            return await request.read()
    except asyncio.TimeoutError:
        raise ApiError(408, f"The request body did not arrive within {timeout:g} seconds.",
                       code="request_timeout") from None


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None and not isinstance(task.exception(), ApiError):
        log.error("upstream exchange failed", exc_info=task.exception())
