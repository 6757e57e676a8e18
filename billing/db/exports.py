"""The outbox of exports: which events each sink still needs, and what became of them.

Triggers (migration 0014) queue one row per event and enabled sink in the ledger's own
transaction. A delivery pass of one sink runs in one transaction that holds that sink's
advisory lock, so replicas never deliver a sink at once (and never out of order); rows are
marked delivered only after the receiver accepted them, so a crash means a redelivery,
never a loss. A tenant whose delivery failed is held with a doubling backoff, and its later
events wait behind the failed one: order is kept per tenant, other tenants go on."""

from dataclasses import dataclass
from datetime import datetime
from typing import Awaitable, Callable

from sqlalchemy import and_, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from billing.db.tables import api_keys, export_holds, export_outbox, export_sinks, ledger_adjustments, ledger_entries, \
    tenants
from billing.exports import ExportEvent

MAX_BACKOFF_SECONDS = 60  # a receiver back after an outage gets everything within a minute
RETENTION_DAYS = 7  # delivered rows are kept this long, for `exports status` and audits

# Send events in order; returns, per outbox id it tried, None (accepted) or the error.
Deliver = Callable[[list[ExportEvent]], Awaitable[dict[int, str | None]]]


async def register_sinks(engine: AsyncEngine, sinks: dict[str, str]) -> None:
    """Enable the configured sinks (name -> kind), disable the others: events are queued for
    a sink from its registration on."""
    async with engine.begin() as conn:
        for name, kind in sinks.items():
            await conn.execute(insert(export_sinks).values(name=name, kind=kind, enabled=True)
                               .on_conflict_do_update(index_elements=["name"], set_={"kind": kind, "enabled": True}))
        await conn.execute(update(export_sinks).where(export_sinks.c.name.notin_(list(sinks)))
                           .values(enabled=False))


def _pending(sink: str, limit: int):
    held = select(export_holds.c.tenant_id).where(export_holds.c.sink == sink, export_holds.c.until > func.now())
    entry = ledger_entries
    return (select(export_outbox.c.id, export_outbox.c.kind, export_outbox.c.event_id, export_outbox.c.tenant_id,
                   tenants.c.name.label("tenant_name"), api_keys.c.display_prefix.label("key"),
                   *[c.label(f"e_{c.name}") for c in entry.columns if c.name != "raw_usage"],
                   *[c.label(f"a_{c.name}") for c in ledger_adjustments.columns])
            .select_from(export_outbox.join(tenants, tenants.c.id == export_outbox.c.tenant_id)
                         .outerjoin(entry, and_(entry.c.request_id == export_outbox.c.event_id,
                                                entry.c.started_at == export_outbox.c.started_at))
                         .outerjoin(api_keys, api_keys.c.id == entry.c.key_id)
                         .outerjoin(ledger_adjustments, ledger_adjustments.c.event_id == export_outbox.c.event_id))
            .where(export_outbox.c.sink == sink, export_outbox.c.delivered_at.is_(None),
                   export_outbox.c.tenant_id.notin_(held))
            .order_by(export_outbox.c.id).limit(limit))


def _event(row) -> ExportEvent:
    values = row._asdict()
    prefix = "e_" if row.kind == "usage" else "a_"
    data = {name[2:]: value for name, value in values.items() if name.startswith(prefix)}
    if row.kind == "usage":
        data["key"] = row.key
    return ExportEvent(row.id, row.kind, str(row.event_id), row.tenant_id, row.tenant_name, data)


async def deliver_once(engine: AsyncEngine, sink: str, deliver: Deliver, *, limit: int = 100) -> tuple[int, int]:
    """One batch of one sink: returns (delivered, failed). Does nothing while another
    replica holds the sink."""
    async with engine.begin() as conn:
        locked = await conn.scalar(select(func.pg_try_advisory_xact_lock(func.hashtext("billing_proxy.export:" + sink))))
        if not locked:
            return 0, 0
        events = [_event(r) for r in await conn.execute(_pending(sink, limit))]
        if not events:
            return 0, 0
        outcome = await deliver(events)
        return await _record(conn, sink, events, outcome)


async def _record(conn: AsyncConnection, sink: str, events: list[ExportEvent],
                  outcome: dict[int, str | None]) -> tuple[int, int]:
    delivered = [e.outbox_id for e in events if e.outbox_id in outcome and outcome[e.outbox_id] is None]
    failed = {e.outbox_id: e.tenant_id for e in events if outcome.get(e.outbox_id) is not None}
    if delivered:
        await conn.execute(update(export_outbox).where(export_outbox.c.id.in_(delivered))
                           .values(delivered_at=func.now(), attempts=export_outbox.c.attempts + 1, last_error=None))
        succeeded = {e.tenant_id for e in events if e.outbox_id in delivered} - set(failed.values())
        await conn.execute(delete(export_holds).where(export_holds.c.sink == sink,
                                                      export_holds.c.tenant_id.in_(succeeded)))
    errors: dict[int, str] = {}  # tenant -> its first error in this batch
    for outbox_id, tenant_id in failed.items():
        error = (outcome[outbox_id] or "failed")[:500]
        errors.setdefault(tenant_id, error)
        await conn.execute(update(export_outbox).where(export_outbox.c.id == outbox_id)
                           .values(attempts=export_outbox.c.attempts + 1, last_error=error))
    for tenant_id, error in errors.items():  # one failure per tenant and batch, however many events it had
        await conn.execute(text("""
            INSERT INTO export_holds AS h (sink, tenant_id, until, failures, last_error)
            VALUES (:sink, :tenant, now() + interval '2 seconds', 1, :error)
            ON CONFLICT (sink, tenant_id) DO UPDATE SET failures = h.failures + 1, last_error = EXCLUDED.last_error,
                until = now() + make_interval(secs => least(power(2, h.failures + 1), :cap))
        """), {"sink": sink, "tenant": tenant_id, "error": error, "cap": MAX_BACKOFF_SECONDS})
    return len(delivered), len(failed)


async def prune_delivered(engine: AsyncEngine) -> int:
    async with engine.begin() as conn:
        result = await conn.execute(delete(export_outbox).where(
            export_outbox.c.delivered_at < func.now() - func.make_interval(0, 0, 0, RETENTION_DAYS)))
    return result.rowcount


@dataclass(frozen=True)
class SinkStatus:
    sink: str
    kind: str
    enabled: bool
    pending: int
    oldest_pending: datetime | None
    lag_seconds: int
    delivered_recently: int  # within the retention window
    held_tenants: int
    last_error: str | None


async def export_status(engine: AsyncEngine) -> list[SinkStatus]:
    async with engine.connect() as conn:
        rows = (await conn.execute(text("""
            SELECT s.name, s.kind, s.enabled,
                   (SELECT count(*) FROM export_outbox o WHERE o.sink = s.name AND o.delivered_at IS NULL) AS pending,
                   (SELECT min(queued_at) FROM export_outbox o WHERE o.sink = s.name AND o.delivered_at IS NULL)
                       AS oldest,
                   (SELECT count(*) FROM export_outbox o WHERE o.sink = s.name AND o.delivered_at IS NOT NULL)
                       AS delivered,
                   (SELECT count(*) FROM export_holds h WHERE h.sink = s.name AND h.until > now()) AS held,
                   (SELECT last_error FROM export_holds h WHERE h.sink = s.name ORDER BY h.until DESC LIMIT 1)
                       AS last_error,
                   now() AS now
            FROM export_sinks s ORDER BY s.name
        """))).all()
    return [SinkStatus(r.name, r.kind, r.enabled, r.pending, r.oldest,
                       int((r.now - r.oldest).total_seconds()) if r.oldest else 0, r.delivered, r.held, r.last_error)
            for r in rows]


async def pending_by_sink(engine: AsyncEngine) -> dict[str, tuple[int, int]]:
    """Per sink: events not yet delivered, and the age in seconds of the oldest (for /metrics)."""
    async with engine.connect() as conn:
        rows = await conn.execute(text(
            "SELECT sink, count(*) AS pending, extract(epoch FROM now() - min(queued_at))::bigint AS lag "
            "FROM export_outbox WHERE delivered_at IS NULL GROUP BY sink"))
        return {r.sink: (r.pending, r.lag) for r in rows}


async def release_holds(engine: AsyncEngine, sink: str | None = None) -> int:
    """Retry now: the receiver is back, no need to wait out the backoff."""
    async with engine.begin() as conn:
        query = update(export_holds).values(until=func.now())
        if sink is not None:
            query = query.where(export_holds.c.sink == sink)
        return (await conn.execute(query)).rowcount
