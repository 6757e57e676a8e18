"""HTTP handlers: authenticate, validate, price-check, forward, relay, record usage."""

import asyncio
import logging
import time
from datetime import datetime, timezone

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from sqlalchemy import text

from billing.db.quota import Admission
from billing.keys import DISPLAY_PREFIX_LENGTH, KeyGrant, KeyRefused, admit_key, hash_secret, model_allowed
from billing.ledger import CallContext, LedgerEntry, build_entry, call_record
from billing.usage import estimate_usage
from proxy.observability import metrics
from proxy.observability.access_log import CALLER, ENTRY, FIRST_BYTE_MS, REQUESTED_MODEL
from proxy.gateway.admission import admit_call, release_later, remaining_headers, settle_in_memory, settle_later
from proxy.gateway.background import queued_row
from proxy.gateway.capture import Capture
from proxy.errors import MODEL, REQUEST_ID, ApiError
from proxy.gateway.limits import Taken, end_limits, take_limits
from proxy.gateway.headers import bearer_token, client_response_headers, same_secret, upstream_request_headers
from billing.quota import worst_output_tokens, worst_usage
from billing.pricebook import ResolvedPrice
from billing.request_bounds import RequestBounds, request_bounds
from proxy.gateway.request_body import ClientRequest, check_prefix_caching, parse_request
from proxy.gateway.sse import SseParser
from proxy.gateway.state import STATE, ProxyState
from proxy.config.routing import Upstream
from proxy.gateway.upstream import call_upstream, chunks, read_body

log = logging.getLogger(__name__)

CLIENT_GONE = (ConnectionError, aiohttp.ClientConnectionResetError)  # writing to a client that left
PROGRESS_SECONDS = 1.0  # how often a stream's progress is spooled (for a crash mid-stream)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when the database answers; either way the spool's state is shown."""
    state = request.app[STATE]
    spool = {"ledger_backlog": state.writer.backlog, "spool_segments_to_replay":
             len(state.writer.spool.segments_needing_replay)}
    try:
        async with asyncio.timeout(2):
            async with state.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except Exception:
        return web.json_response({"status": "unavailable", "database": "unreachable",
                                  "admission": state.settings.outage_admission, **spool}, status=503)
    return web.json_response({"status": "ready", "database": "ok", **spool})


async def metrics_endpoint(request: web.Request) -> web.Response:
    """Prometheus text, for a scraper holding the metrics token (or the admin token): the
    series name every tenant and its spend."""
    state = request.app[STATE]
    tokens = [t for t in (state.settings.metrics_token, state.settings.admin_token) if t]
    if not tokens:
        raise ApiError(404, "Metrics are off: set BILLING_PROXY_METRICS_TOKEN and scrape with "
                            "`Authorization: Bearer <metrics token>`.", code="unknown_url")
    state.admin_guard.check(request.remote)
    given = bearer_token(request.headers)
    if not any(same_secret(given, token) for token in tokens):
        state.admin_guard.failed(request.remote, request.path)
        raise ApiError(401, "/metrics needs `Authorization: Bearer <metrics token>`.", code="invalid_metrics_token")

    def refresh() -> None:
        metrics.LEDGER_BACKLOG.set(state.writer.backlog)
        metrics.SPOOL_DEPTH.set(state.writer.backlog if not state.writer.database_up else 0)
        metrics.DATABASE_UP.set(1 if state.writer.database_up else 0)

    return web.Response(body=metrics.render(refresh),
                        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


async def authenticate(request: web.Request, state: ProxyState) -> KeyGrant:
    if len(request.headers.getall("Authorization", ())) > 1:
        raise ApiError(401, "Send exactly one Authorization header.", code="invalid_api_key")
    secret = bearer_token(request.headers)
    if secret is None:
        raise ApiError(401, "You didn't provide an API key. Send it as `Authorization: Bearer <key>`.",
                       code="invalid_api_key")
    secret_hash = hash_secret(secret)
    grant = state.mirror.grant(secret_hash) or await state.mirror.grant_after_sync(secret_hash)
    if grant is not None:
        request[CALLER] = (grant.tenant_name, grant.key_id, secret[:DISPLAY_PREFIX_LENGTH])
    try:
        return admit_key(grant, datetime.now(timezone.utc))
    except KeyRefused as refused:
        raise ApiError(refused.status, refused.message, code=refused.code) from None


async def create_response(request: web.Request) -> web.StreamResponse:
    return await _proxy_call(request, endpoint="responses", path="/responses")


async def create_chat_completion(request: web.Request) -> web.StreamResponse:
    return await _proxy_call(request, endpoint="chat.completions", path="/chat/completions")


async def create_embedding(request: web.Request) -> web.StreamResponse:
    return await _proxy_call(request, endpoint="embeddings", path="/embeddings")


async def compact_response(request: web.Request) -> web.StreamResponse:
    return await _proxy_call(request, endpoint="responses.compact", path="/responses/compact")


def check_model_allowed(state: ProxyState, grant: KeyGrant, model: str) -> None:
    if not model_allowed(grant, model, state.mirror.pricebook.resolve_name(model)):
        raise ApiError(403, f"This API key may not use the model {model!r}.", code="model_not_allowed",
                       param="model")


async def owned_upstream(state: ProxyState, grant: KeyGrant, payload: dict) -> tuple[Upstream | None, int | None]:
    """The upstream holding the response or conversation a call continues, once the tenant is
    known to own it (else the 404 of an unknown id), None when it continues nothing; and the
    tokens of context it carries over (None: of unknown size, as a conversation's)."""
    owner, carried = None, 0
    conversation = payload.get("conversation")
    if isinstance(conversation, dict):
        conversation = conversation.get("id")
    if conversation is not None:
        owner = await state.owners.require(conversation, grant.tenant_id, "conversation")
        carried = None
    previous = payload.get("previous_response_id")
    if previous is not None:
        owner = await state.owners.require(previous, grant.tenant_id, "previous_response_id")
        context = await state.owners.context_tokens(previous, owner)
        carried = None if carried is None or context is None else context
    return (state.router.named(owner.upstream) if owner is not None else None), carried


async def _proxy_call(request: web.Request, *, endpoint: str, path: str) -> web.StreamResponse:
    state = request.app[STATE]
    started_at = datetime.now(timezone.utc)
    started = time.perf_counter()
    grant = await authenticate(request, state)
    try:
        return await _billed_call(request, state, grant, endpoint, path, started_at, started)
    except ApiError as error:
        if error.status == 429:  # a limit said no: counted for the dashboard
            state.refusals.count(grant.tenant_id, grant.key_id, error)
        raise


async def _billed_call(request: web.Request, state: ProxyState, grant: KeyGrant, endpoint: str, path: str,
                       started_at: datetime, started: float) -> web.StreamResponse:
    client_request = parse_request(await read_request_body(request, state.settings.client_timeout),
                                   endpoint=endpoint)
    request[REQUESTED_MODEL] = client_request.model
    pricebook = state.mirror.pricebook
    check_model_allowed(state, grant, client_request.model)
    # a continuation goes to the upstream that made the response or conversation it continues
    continued, carried = await owned_upstream(state, grant, client_request.payload)
    upstream = continued or state.router.for_model(client_request.model)
    if endpoint == "responses" and upstream.refuse_prefix_with_max_output_tokens:
        check_prefix_caching(client_request.payload)
    price = pricebook.resolve(client_request.model, started_at, grant.tenant_id)
    if price is None:
        raise ApiError(400, f"The model {client_request.model!r} has no price configured, so it cannot be "
                            "billed; ask an operator to add one.", code="model_not_priced", param="model")
    bounds = request_bounds(client_request.payload, endpoint, int(started_at.timestamp()))
    taken = NOTHING_TAKEN
    if grant.rate_limits or grant.max_concurrent is not None:
        tokens = 0
        if grant.tokens_per_minute is not None or grant.tenant_tokens_per_minute is not None:
            worst = worst_usage(len(client_request.body), bounds, price, state.limits, carried)
            tokens = worst.input_tokens + worst.output_tokens
        taken = await take_limits(state, grant, tokens)
    try:
        exchange = await _admitted_call(request, state, grant, client_request, endpoint, path, started_at, started,
                                        upstream, price, bounds, carried, taken)
    except BaseException as error:
        end_limits(state, taken, 0, ran=False)  # it never went upstream
        if isinstance(error, ApiError):
            error.headers = {**taken.headers, **error.headers}
        raise
    return await asyncio.shield(exchange)


NOTHING_TAKEN = Taken()


async def _admitted_call(request: web.Request, state: ProxyState, grant: KeyGrant, client_request: ClientRequest,
                         endpoint: str, path: str, started_at: datetime, started: float, upstream: Upstream,
                         price: ResolvedPrice, bounds: RequestBounds, carried: int | None,
                         taken: Taken) -> asyncio.Task:
    """Reserve the call's budget and start its exchange with the upstream."""
    request_id = request[REQUEST_ID]
    period, admission = await admit_call(state, grant, request_id, started_at, client_request, price, bounds,
                                         carried)
    call = CallContext(request_id=request_id, tenant_id=grant.tenant_id, key_id=grant.key_id, endpoint=endpoint,
                       stream=client_request.stream, started_at=started_at, price=price,
                       price_multiplier=grant.price_multiplier, quota_period=period,
                       reserved=admission is not None and not admission.offline and admission.lease is None,
                       request_bytes=len(client_request.body), upstream=upstream.name, carried_tokens=carried or 0,
                       output_cap=worst_output_tokens(bounds, price, state.limits), reasoning=bounds.reasoning)
    # From here the call may be billed: the spool knows of it before the upstream does, so
    # even a crash mid-call leaves an (estimated) entry behind (unless the disk fails: logged).
    state.writer.spool.begin(str(request_id), call_record(call))
    headers = upstream_request_headers(request.headers.items(), upstream.api_key, state.header_rule)
    request[MODEL] = price.model  # the priced model: a bounded set of metric labels, whatever clients send
    # Once the call goes upstream it must be seen through and recorded even if the client
    # hangs up and the server cancels this handler: the upstream bills it either way.
    relay = _Relay(state, call, started, {**remaining_headers(admission), **taken.headers}, grant, admission,
                   taken, client_request.background)
    exchange = state.spawn(relay.exchange(request, client_request.body, headers, upstream, path,
                                          client_request.hide_usage_chunk))
    exchange.add_done_callback(_log_failure)
    return exchange


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


class _Relay:
    """Relays one upstream reply to the client and records its usage exactly once."""

    def __init__(self, state: ProxyState, call: CallContext, started: float, billing_headers: dict[str, str],
                 grant: KeyGrant, admission: Admission | None, taken: Taken, background: bool = False):
        self.state, self.call, self.started = state, call, started
        self.background = background  # `background: true`: may end after the reply, billed then
        self.settings = state.settings
        self.billing_headers = billing_headers
        self.grant, self.admission, self.taken = grant, admission, taken
        self.capture = Capture()
        self.first_byte_ms: int | None = None
        self.entry: LedgerEntry | None = None  # what the call was billed with, once it is
        self.answered = False  # the upstream took the call (200, or it timed out working on it): it bills it

    async def exchange(self, request: web.Request, body: bytes, headers: dict[str, str], target: Upstream,
                       path: str, hide_usage_chunk: bool) -> web.StreamResponse:
        try:
            try:
                upstream = await call_upstream(self.state.http, "POST", target.base_url + path, headers, body,
                                               first_byte_timeout=self.settings.first_byte_timeout(target))
            except ApiError as error:
                # Timed out waiting: the upstream has the request and goes on with it, so it bills it.
                self.answered = error.code == "upstream_timeout"
                raise
            # Any 2xx is a call the upstream took, so it bills it (not only a 200).
            self.answered = 200 <= upstream.status < 300
            self._first_byte()
            if upstream.status >= 400:
                metrics.UPSTREAM_ERRORS.labels(f"status_{upstream.status // 100}xx").inc()
            try:
                idle = self.settings.idle_timeout(target)
                if self.call.stream and self.answered and upstream.content_type == "text/event-stream":
                    return await self.stream(request, upstream, idle, hide_usage_chunk)
                return await self.whole(upstream, idle)
            finally:
                upstream.release()
        finally:
            self.record()
            if self.entry is not None:
                request[ENTRY] = self.entry
            if self.first_byte_ms is not None:
                request[FIRST_BYTE_MS] = self.first_byte_ms

    def _headers(self, upstream: aiohttp.ClientResponse) -> CIMultiDict:
        headers = CIMultiDict(client_response_headers(upstream.headers.items()))
        headers["x-request-id"] = str(self.call.request_id)
        headers.update(self.billing_headers)
        return headers

    def _first_byte(self) -> None:
        if self.first_byte_ms is None:
            elapsed = time.perf_counter() - self.started
            self.first_byte_ms = round(elapsed * 1000)
            metrics.first_byte(self.call.endpoint, elapsed)

    async def whole(self, upstream: aiohttp.ClientResponse, idle_timeout: float) -> web.Response:
        body = await read_body(upstream, self.settings.max_upstream_body_bytes, idle_timeout)
        if 200 <= upstream.status < 300:
            self.capture.observe_body(body)
            if self.capture.status is None:
                metrics.UPSTREAM_ERRORS.labels("malformed").inc()
                raise ApiError(502, "The upstream API answered with a body that is not a JSON object.",
                               type="upstream_error", code="upstream_bad_response")
        return web.Response(status=upstream.status, body=body, headers=self._headers(upstream))

    async def stream(self, request: web.Request, upstream: aiohttp.ClientResponse, idle_timeout: float,
                     hide_usage_chunk: bool) -> web.StreamResponse:
        """Relay the upstream's bytes as they come. Only when a usage chunk the client did not
        ask for must be hidden are events re-framed one by one (`data: ...` and a blank line,
        the framing Chat Completions streams use).

        If the client leaves, the upstream is read on to its end (at most
        `disconnect_drain_timeout` more) so that its true usage is billed, or, with
        `on_client_disconnect = cancel`, dropped at once and billed from an estimate."""
        response = web.StreamResponse(status=upstream.status, headers=self._headers(upstream))
        parser = SseParser()
        chat = self.call.endpoint == "chat.completions"
        deadline: float | None = None  # once the client left: when to stop reading the upstream
        progress_due = 0.0
        try:
            await response.prepare(request)
        except CLIENT_GONE:
            deadline = self._client_left()
        try:
            async for chunk in chunks(upstream, idle_timeout):
                outgoing = [] if hide_usage_chunk else [chunk]
                for event in parser.feed(chunk):
                    if not chat:
                        self.capture.observe_event(event)
                    elif not self.capture.observe_chat_chunk(event) and hide_usage_chunk:
                        outgoing.append(b"data: " + event.data.encode() + b"\n\n")
                if self.capture.response_id and time.monotonic() >= progress_due:
                    self.state.writer.spool.progress(str(self.call.request_id), self.capture.response_id,
                                                     self.capture.output_text_bytes)
                    progress_due = time.monotonic() + PROGRESS_SECONDS
                if deadline is None and outgoing:
                    try:
                        for piece in outgoing:
                            await response.write(piece)
                    except CLIENT_GONE:
                        deadline = self._client_left()
                if deadline is not None and time.monotonic() >= deadline:
                    break
        except asyncio.TimeoutError:
            metrics.UPSTREAM_ERRORS.labels("idle_timeout").inc()
            log.warning("upstream stream %s went quiet for %gs: cut", self.call.request_id, idle_timeout)
        except aiohttp.ClientError as exc:
            metrics.UPSTREAM_ERRORS.labels("stream_cut").inc()
            log.warning("upstream stream %s broke off: %s", self.call.request_id, type(exc).__name__)
        if deadline is None:
            try:
                await response.write_eof()
            except CLIENT_GONE:
                pass
        elif self.capture.usage is None:
            log.warning("client left stream %s; the upstream was not read to its end (%s): billed from an "
                        "estimate", self.call.request_id, self.settings.on_client_disconnect)
        return response

    def _client_left(self) -> float:
        """When to stop reading the upstream now that the client is gone: at once (cancel), or
        after the drain timeout (finish), hoping for the terminal event before."""
        if self.settings.on_client_disconnect == "cancel":
            return time.monotonic()
        return time.monotonic() + self.settings.disconnect_drain_timeout

    def record(self) -> None:
        call, capture, state = self.call, self.capture, self.state
        if call.endpoint == "responses" and capture.response_id:
            known = capture.usage
            state.owners.remember(capture.response_id, call.tenant_id, call.upstream,
                                  known.input_tokens + known.output_tokens if known else None)
        if self.background and capture.usage is None and capture.response_id and self.answered:
            # Queued (or its stream left early): the upstream works on; bill it when it ends.
            state.writer.submit_background(queued_row(call, capture.response_id, self.first_byte_ms))
            settle_in_memory(state, self.grant, self.admission, call.quota_period, None)
            end_limits(state, self.taken, None)  # its tokens are not known yet: it keeps what it took
            return
        usage, status, estimated = capture.usage, capture.status or "completed", False
        if usage is None and self.answered:
            # The upstream took the call (200) but its usage never came: an `error` event, a
            # stream cut or abandoned, a broken body. It may still bill it, so it is recorded
            # from an estimate, flagged, never as zero.
            usage = estimate_usage(call.request_bytes, capture.output_text_bytes, capture.running_usage,
                                   carried_tokens=call.carried_tokens,
                                   reasoning_cap=call.output_cap if call.reasoning or capture.reasoning_seen else 0)
            status, estimated = "usage_missing", True
            log.warning("call %s ended without usage (%s); recorded from an estimate", call.request_id,
                        "error event" if capture.error_event else "no reply in time" if self.first_byte_ms is None
                        else "cut off")
        if usage is None:
            state.writer.spool.close_call(str(call.request_id))
            if call.reserved:
                release_later(state, call.request_id)
            settle_in_memory(state, self.grant, self.admission, call.quota_period, None)
            end_limits(state, self.taken, 0)
            return
        entry = build_entry(
            call, usage, status=status, upstream_response_id=capture.response_id,
            finished_at=datetime.now(timezone.utc), first_byte_ms=self.first_byte_ms, estimated=estimated,
        )
        state.writer.submit(entry)
        self.entry = entry
        metrics.add_spend(self.grant.tenant_name, entry.charge)
        tokens = usage.input_tokens + usage.output_tokens
        if call.reserved:
            settle_later(state, call.request_id, entry.charge, tokens)
        settle_in_memory(state, self.grant, self.admission, call.quota_period, entry)
        end_limits(state, self.taken, tokens)
