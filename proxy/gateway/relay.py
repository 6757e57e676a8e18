"""Relaying one admitted call: send it upstream, pass the reply to the client as it comes
(JSON whole, SSE event by event), capture what the upstream bills, and record it exactly
once, whatever ends the exchange: the reply, the client leaving, a timeout, a crash."""

import asyncio
import logging
import time
from datetime import datetime, timezone
from dataclasses import replace

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from billing.db.quota import Admission
from billing.keys import KeyGrant
from billing.db.container_sessions import ContainerCall, claim_sessions
from billing.ledger import CallContext, LedgerEntry, build_entry
from billing.reply import in_sessions
from billing.tool_units import units_in_output
from billing.unreported import unreported_usage
from billing.usage import Usage
from proxy.errors import ApiError
from proxy.gateway.admission import release_later, settle_in_memory, settle_later
from proxy.gateway.background import queued_row
from proxy.gateway.capture import Capture
from proxy.gateway.headers import client_response_headers
from proxy.gateway.limits import Taken, end_limits
from proxy.config.routing import Upstream
from proxy.gateway.sse import SseParser
from proxy.gateway.state import ProxyState
from proxy.gateway.upstream import call_upstream, chunks, read_body
from proxy.observability import metrics
from proxy.observability.access_log import ENTRY, FIRST_BYTE_MS

log = logging.getLogger(__name__)

CLIENT_GONE = (ConnectionError, aiohttp.ClientConnectionResetError)  # writing to a client that left
PROGRESS_SECONDS = 1.0  # how often a stream's progress is spooled (for a crash mid-stream)
CONTAINER_CHECK_SECONDS = 2.0  # the most a reply with containers waits to learn which sessions it starts


class Relay:
    """Relays one upstream reply to the client and records its usage exactly once."""

    def __init__(self, state: ProxyState, call: CallContext, started: float, billing_headers: dict[str, str],
                 grant: KeyGrant, admission: Admission | None, taken: Taken, background: bool = False,
                 conversation: str | None = None):
        self.state, self.call, self.started = state, call, started
        self.background = background  # `background: true`: may end after the reply, billed then
        self.settings = state.settings
        self.billing_headers = billing_headers
        self.grant, self.admission, self.taken = grant, admission, taken
        self.conversation = conversation  # the conversation the call continues: its context grows
        self.capture = Capture()
        self.first_byte_ms: int | None = None
        self.entry: LedgerEntry | None = None  # what the call was billed with, once it is
        self.answered = False  # the upstream took the call (200, or it timed out working on it): it bills it
        self.read_to_its_end = False  # a stream read until the upstream itself stopped sending
        self.recorded = False

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
            await self.record()
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
                if self.capture.status is not None and self.capture.usage is not None and not self.recorded:
                    # The final usage (a terminal event's, not an earlier one's) is spooled before
                    # the event carrying it reaches the client: once the client has its answer, a
                    # crash cannot leave the call to an estimate.
                    await self.record()
                if self.capture.response_id and not self.recorded and time.monotonic() >= progress_due:
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
            else:
                self.read_to_its_end = True
        except asyncio.TimeoutError:
            metrics.UPSTREAM_ERRORS.labels("idle_timeout").inc()
            log.warning("upstream stream %s went quiet for %gs: cut", self.call.request_id, idle_timeout)
        except aiohttp.ClientError as exc:  # a reset on the way: the upstream may go on
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

    async def record(self) -> None:
        """Bill the call from what was captured; once (the first call does it, later ones are
        no-ops). Its containers' sessions are claimed first, on every path, so that a
        container is billed once a session however its replies came."""
        if self.recorded:
            return
        self.recorded = True
        call, capture, state = self.call, self.capture, self.state
        if call.endpoint == "responses" and capture.response_id:
            known = capture.usage
            state.owners.remember(capture.response_id, call.tenant_id, call.upstream,
                                  known.input_tokens + known.output_tokens if known else None)
        later = self.background or self._left_early()
        if later and capture.usage is None and capture.response_id and self.answered:
            # Queued, or its stream left early while the upstream works on: the poller reads the
            # stored response until it ends, and bills it then, with its true usage.
            state.writer.submit_background(queued_row(call, capture.response_id, self.first_byte_ms))
            settle_in_memory(state, self.grant, self.admission, call.quota_period, None, hold_worst=True)
            end_limits(state, self.taken, None)  # its tokens are not known yet: it keeps what it took
            return
        usage, status, estimated = capture.usage, capture.status or "completed", False
        if usage is None and self.answered:
            usage, status, estimated = self._estimate(), "usage_missing", True
        if usage is None:
            state.writer.spool.close_call(str(call.request_id))
            if call.reserved:
                release_later(state, call.request_id)
            settle_in_memory(state, self.grant, self.admission, call.quota_period, None)
            end_limits(state, self.taken, 0)
            return
        try:
            usage = await self._in_sessions(usage)
        except asyncio.CancelledError:  # shutting down: billed as new rather than lost
            self._write(usage.with_flags("container_session_unchecked"), status, estimated)
            raise
        self._write(usage, status, estimated)

    def _left_early(self) -> bool:
        """A stored response's stream the proxy stopped reading (or that broke) before its end:
        the upstream keeps the response, so its true usage can be read later."""
        capture = self.capture
        return self.call.endpoint == "responses" and self.call.stream and not self.read_to_its_end \
            and not capture.error_event and capture.status is None and capture.stored

    def _estimate(self) -> Usage:
        """The usage of a call the upstream took whose usage never came (`billing.unreported`).
        The proxy saw all the upstream did when the upstream said it stopped (an `error`
        event, a whole reply) or the stream was read to its clean end; not when the proxy
        stopped reading, the stream broke, or the JSON reply (made whole before it is sent)
        never arrived whole."""
        capture = self.capture
        saw_all = capture.error_event or capture.status is not None or self.read_to_its_end
        log.warning("call %s ended without usage (%s); recorded from an estimate", self.call.request_id,
                    "error event" if capture.error_event else "no reply in time" if self.first_byte_ms is None
                    else "cut off")
        return unreported_usage(self.call, self.state.reasoning, saw_all=saw_all,
                                output_text_bytes=capture.output_text_bytes, reasoned=capture.reasoning_seen,
                                floor=capture.running_usage, seen=units_in_output(capture.output_items, capture.tools))

    async def _in_sessions(self, usage: Usage) -> Usage:
        """Bill none of the containers whose 20-minute session an earlier reply paid for, and
        those named by id at what they were made as. If the database cannot say in time, they
        are all billed as they are (flagged): never one unbilled."""
        if not usage.containers:
            return usage
        call = ContainerCall(self.call.tenant_id, self.call.request_id, self.call.started_at,
                             datetime.now(timezone.utc))
        try:
            known = await asyncio.wait_for(claim_sessions(self.state.engine, call, usage.containers),
                                           CONTAINER_CHECK_SECONDS)
        except Exception as error:  # noqa: BLE001 - whatever failed, the containers are billed
            log.warning("container sessions of call %s unchecked (%s): billed as new", self.call.request_id,
                        type(error).__name__)
            return usage.with_flags("container_session_unchecked")
        return in_sessions(usage, known)

    def _write(self, usage: Usage, status: str, estimated: bool) -> None:
        call, state = self.call, self.state
        entry = build_entry(
            call, usage, status=status, upstream_response_id=self.capture.response_id,
            finished_at=datetime.now(timezone.utc), first_byte_ms=self.first_byte_ms, estimated=estimated,
        )
        state.writer.submit(entry)
        self.entry = entry
        if not estimated and self.conversation is not None:  # what its next turn carries over
            context = usage.input_tokens + usage.output_tokens
            state.owners.remember(self.conversation, call.tenant_id, call.upstream, context)
            state.spawn(state.owners.record_context(self.conversation, context))
        if not estimated and usage.reasoning_tokens:
            state.reasoning.observe(call.price.model, usage.output_tokens, usage.reasoning_tokens,
                                    tenant_id=call.tenant_id)
        metrics.add_spend(self.grant.tenant_name, entry.charge)
        tokens = usage.input_tokens + usage.output_tokens
        if call.reserved:
            settle_later(state, call.request_id, entry.charge, tokens)
        settle_in_memory(state, self.grant, self.admission, call.quota_period, entry)
        end_limits(state, self.taken, tokens)
