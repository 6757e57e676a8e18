"""Background responses (`background: true`): billed once, with their true usage, when they end.

The upstream answers a background call at once (`status: queued`, no usage) and works on
it for minutes. The call is then handed to the ledger writer as a queued background
response (spooled first, then a row of `background_responses`), keeping its quota
reservation. Every replica polls due rows with the operator's key, with backoff, claiming
each so that one replica polls it at a time. A read, a cancel or a resumed stream that
shows the response ended settles it at once. Settling writes the call's ledger entry under
its own request id, so a second settlement (two replicas, a crash between writing the
entry and marking the row) is a no-op.

A stored response whose stream the proxy stopped reading before its end (the client left,
the stream broke) is handed over the same way: the upstream keeps it, so its true usage can
be read back.

A response the upstream no longer knows (404) is billed from an estimate, at what its
admission reserved (`billing.unreported`), and flagged, as is one still unfinished after
`BACKGROUND_GIVE_UP`.
"""

import logging
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

from billing.db.background import claim_due, mark_settled, pending_by_response, reschedule
from billing.ledger import CallContext, build_entry, call_from_record, call_record
from billing.db.container_sessions import ContainerCall, claim_sessions
from billing.reply import in_sessions, reply_usage
from billing.unreported import unreported_usage
from billing.usage import Usage
from proxy.config.routing import Upstream
from proxy.gateway.capture import Capture
from proxy.gateway.state import ProxyState
from proxy.gateway.stored_reply import stored_reply, upstream_reply

log = logging.getLogger(__name__)

ENDED = frozenset({"completed", "incomplete", "failed", "cancelled"})
CLAIM_SECONDS = 60.0  # one replica polls a row at a time; a claim lapses if that replica dies
POLLS_PER_ROUND = 50
BACKGROUND_GIVE_UP = timedelta(days=1)


def queued_row(call: CallContext, response_id: str, first_byte_ms: int | None) -> dict[str, Any]:
    return {"request_id": str(call.request_id), "response_id": response_id, "tenant_id": call.tenant_id,
            "upstream": call.upstream, "call": call_record(call), "first_byte_ms": first_byte_ms}


def poll_delay(polls: int, cap: float) -> float:
    """Seconds to the next poll after the `polls`-th: 1, 2, 4, ... up to `cap` (well inside
    the upstream's retention)."""
    return min(2.0 ** min(max(polls - 1, 0), 16), cap)


async def settle(state: ProxyState, row: dict[str, Any], reply: dict[str, Any] | None) -> str:
    """Bill a background call from the reply that shows it ended (None: the upstream forgot
    it, so from an estimate), its containers' sessions claimed first (as a relayed reply's
    are). Returns the status billed."""
    versions = {v.id: v for v in state.mirror.pricebook.all_versions()}
    record = row["call"] if isinstance(row["call"], dict) else orjson.loads(row["call"])
    call = call_from_record(record, versions)
    if reply is None:
        # the upstream's end was never seen: the most the call may have billed
        usage = unreported_usage(call, state.reasoning, saw_all=False).with_flags("background_forgotten")
        status, estimated = "usage_missing", True
    else:  # no usage in the reply (cancelled before it started): nothing was generated
        usage = reply_usage(reply) or Usage(flags=("usage_not_reported",))
        status, estimated = str(reply.get("status"))[:32], False
        if usage.containers:
            usage = await _in_sessions(state, call, usage)
    entry = build_entry(call, usage, status=status, upstream_response_id=row["response_id"],
                        finished_at=datetime.now(timezone.utc), first_byte_ms=row.get("first_byte_ms"),
                        estimated=estimated)
    state.writer.submit(entry)
    return status


async def _in_sessions(state: ProxyState, call: CallContext, usage: Usage) -> Usage:
    try:
        known = await claim_sessions(state.engine, ContainerCall(call.tenant_id, call.request_id, call.started_at,
                                                                 datetime.now(timezone.utc)), usage.containers)
    except Exception as error:  # noqa: BLE001 - whatever failed, the containers are billed
        log.warning("container sessions of background call %s unchecked (%s): billed as new", call.request_id,
                    type(error).__name__)
        return usage.with_flags("container_session_unchecked")
    return in_sessions(usage, known)


def settle_from_capture(state: ProxyState, capture: Capture) -> None:
    """A relayed read, cancel or resumed stream showed a background response ended: bill it
    now rather than at the next poll."""
    if not capture.background or capture.status not in ENDED or not capture.response_id:
        return
    reply = capture.reply

    async def settle_now() -> None:
        row = await pending_by_response(state.engine, capture.response_id)
        if row is not None and reply is not None:
            status = await settle(state, row, reply)
            await mark_settled(state.engine, row["request_id"], status)

    state.spawn(settle_now())


async def poll_due(state: ProxyState) -> None:
    """One round of polls (run every second or so by each replica)."""
    for row in await claim_due(state.engine, POLLS_PER_ROUND, CLAIM_SECONDS):
        try:
            await _poll(state, row)
        except Exception:
            log.warning("polling background response %s failed; retried later", row["response_id"],
                        exc_info=True)
            await reschedule(state.engine, row["request_id"], None,
                             poll_delay(row["polls"], state.settings.background_poll_seconds))


async def settle_before_delete(state: ProxyState, target: Upstream, response_id: str, reply: dict | None) -> None:
    """A background response (or a stream left early, billed by the poller) about to be
    deleted is billed first, from `reply` (read just before) if it ended, else from the
    reply of cancelling it: once deleted, the poller would find nothing to bill from."""
    row = await pending_by_response(state.engine, response_id)
    if row is None:
        return
    if reply is None or reply.get("status") not in ENDED:
        _, reply = await upstream_reply(state, target, "POST", f"/responses/{response_id}/cancel")
    if reply is not None and reply.get("status") in ENDED:
        await mark_settled(state.engine, row["request_id"], await settle(state, row, reply))
    else:
        log.warning("background response %s deleted before it ended and could not be cancelled: the poller "
                    "bills it", response_id)


async def _poll(state: ProxyState, row: dict[str, Any]) -> None:
    target = state.router.named(row["upstream"])
    settings = state.settings
    status_code, reply = await stored_reply(state, target, row["response_id"])
    if status_code == 404:
        log.warning("the upstream forgot background response %s: billed from an estimate", row["response_id"])
        await mark_settled(state.engine, row["request_id"], await settle(state, row, None))
        return
    status = reply.get("status") if reply is not None else None
    if status in ENDED:
        await mark_settled(state.engine, row["request_id"], await settle(state, row, reply))
    elif datetime.now(timezone.utc) - row["queued_at"] > BACKGROUND_GIVE_UP:
        log.warning("background response %s still %s after %s: billed from an estimate", row["response_id"],
                    status, BACKGROUND_GIVE_UP)
        await mark_settled(state.engine, row["request_id"], await settle(state, row, None))
    else:
        await reschedule(state.engine, row["request_id"], status if isinstance(status, str) else None,
                         poll_delay(row["polls"], settings.background_poll_seconds))
