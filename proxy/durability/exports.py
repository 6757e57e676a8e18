"""Delivering the outbox to billing systems over HTTP, off the request path.

Each sink gets its events in outbox order: a webhook and OpenMeter a CloudEvents batch per
request (all or nothing), Stripe one meter event per request (a tenant stops at its first
failure, so its later events never overtake it)."""

import asyncio
import logging
import time
from datetime import datetime, timezone

import aiohttp
import orjson

from billing.db.exports import deliver_once, pending_by_sink
from billing.exports import ExportEvent, SinkConfig, cloud_event, stripe_meter_event, webhook_signature
from proxy.observability.metrics import EXPORT_DELIVERED, EXPORT_FAILURES, EXPORT_LAG, EXPORT_PENDING

log = logging.getLogger(__name__)

TIMEOUT = aiohttp.ClientTimeout(total=15)
BATCHES_PER_PASS = 20  # then other chores get the connection back for a moment
BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"


def _failure(status: int, body: bytes) -> str:
    return f"receiver answered {status}: {body[:200].decode('utf-8', 'replace')}"


async def _post_batch(http: aiohttp.ClientSession, sink: SinkConfig, events: list[ExportEvent]) -> str | None:
    body = orjson.dumps([cloud_event(e, sink.source) for e in events])
    headers = {"Content-Type": BATCH_CONTENT_TYPE}
    if sink.kind == "openmeter":
        url = sink.url.rstrip("/") + "/api/v1/events"
        if sink.secret:
            headers["Authorization"] = f"Bearer {sink.secret}"
    else:
        url = sink.url
        message_id = f"msg_{events[0].event_id}_{len(events)}"  # the same batch keeps its id on a retry
        timestamp = int(time.time())
        headers.update({"webhook-id": message_id, "webhook-timestamp": str(timestamp)})
        if sink.secret:
            headers["webhook-signature"] = webhook_signature(sink.secret, message_id, timestamp, body)
    try:
        async with http.post(url, data=body, headers=headers, timeout=TIMEOUT) as reply:
            if reply.status >= 300:
                return _failure(reply.status, await reply.read())
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        return f"receiver unreachable: {type(exc).__name__}: {exc}"
    return None


async def _post_stripe(http: aiohttp.ClientSession, sink: SinkConfig, event: ExportEvent) -> str | None:
    form = stripe_meter_event(event, sink, datetime.now(timezone.utc))
    headers = {"Authorization": f"Bearer {sink.secret}", "Idempotency-Key": event.event_id}
    try:
        async with http.post(sink.url.rstrip("/") + "/v1/billing/meter_events", data=form, headers=headers,
                             timeout=TIMEOUT) as reply:
            body = await reply.read()
            if reply.status < 300:
                return None
            # A retry of an event Stripe already has: it is delivered.
            if reply.status == 400 and b"already exists" in body:
                return None
            return _failure(reply.status, body)
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        return f"Stripe unreachable: {type(exc).__name__}: {exc}"


def sender(http: aiohttp.ClientSession, sink: SinkConfig):
    async def send(events: list[ExportEvent]) -> dict[int, str | None]:
        if sink.kind != "stripe":
            error = await _post_batch(http, sink, events)
            return {e.outbox_id: error for e in events}
        outcome: dict[int, str | None] = {}
        stopped: set[int] = set()  # tenants whose earlier event failed in this batch
        for event in events:
            if event.tenant_id in stopped:
                continue
            outcome[event.outbox_id] = await _post_stripe(http, sink, event)
            if outcome[event.outbox_id] is not None:
                stopped.add(event.tenant_id)
        return outcome
    return send


async def deliver_exports(engine, http: aiohttp.ClientSession, sinks: tuple[SinkConfig, ...]) -> int:
    """One pass over every sink; returns how many events were delivered."""
    total = 0
    for sink in sinks:
        send = sender(http, sink)
        for _ in range(BATCHES_PER_PASS):
            delivered, failed = await deliver_once(engine, sink.name, send, limit=sink.batch_size)
            EXPORT_DELIVERED.labels(sink.name).inc(delivered)
            total += delivered
            if failed:
                EXPORT_FAILURES.labels(sink.name).inc(failed)
                log.warning("export to %s: %d event(s) not delivered; retrying with backoff", sink.name, failed)
            if not delivered:
                break
    if sinks:
        await update_gauges(engine, sinks)
    return total


async def update_gauges(engine, sinks: tuple[SinkConfig, ...]) -> None:
    pending = await pending_by_sink(engine)
    for sink in sinks:
        count, lag = pending.get(sink.name, (0, 0))
        EXPORT_PENDING.labels(sink.name).set(count)
        EXPORT_LAG.labels(sink.name).set(lag)

