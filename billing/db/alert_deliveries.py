"""Delivery of alerts, one row per alert, channel and destination.

`plan` gives each new alert its delivery rows (the operator's channels and the tenant's
own), once: the alert row is locked with SKIP LOCKED and marked planned in the same
transaction, and the rows are unique per alert, channel and destination. `claim` leases
due rows (SKIP LOCKED again, so replicas never send the same row at once); the caller
sends outside any transaction, then marks each delivered or failed. A failed row backs
off on its own: the other channels of its alert are not sent again."""

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from billing.alert_text import AlertFacts

MAX_BACKOFF_SECONDS = 3600
STALE_AFTER_SECONDS = 86400  # an alert that had nowhere to go for a day is not sent any more
STALE_REASON = "not sent: it had no destination for a day after it was recorded"
OPERATOR, TENANT = "operator", "tenant"  # whose URL a webhook or Slack row is sent to


@dataclass(frozen=True)
class Channels:
    """What this replica can send: the operator's destinations, and whether it has an SMTP
    server (which tenants' email recipients need too)."""
    webhook: bool = False
    slack: bool = False
    emails: tuple[str, ...] = ()
    smtp: bool = False

    def operator_targets(self) -> list[tuple[str, str]]:
        targets = [("webhook", OPERATOR)] if self.webhook else []
        targets += [("slack", OPERATOR)] if self.slack else []
        return targets + ([("email", address) for address in self.emails] if self.smtp else [])

    def operator_channels(self) -> list[str]:
        return sorted({channel for channel, _ in self.operator_targets()})

    def sendable(self) -> list[str]:
        return ["webhook", "slack", *(["email"] if self.smtp else [])]


@dataclass(frozen=True)
class Delivery:
    id: int
    channel: str
    destination: str  # OPERATOR, TENANT, or an email address
    attempts: int
    facts: AlertFacts
    tenant_slack_url: str | None  # the tenant's own hook, for a TENANT Slack row


def _targets(channels: Channels, slack_url: str | None, emails: list[str] | None) -> list[tuple[str, str]]:
    targets = channels.operator_targets() + ([("slack", TENANT)] if slack_url else [])
    if channels.smtp:
        targets += [("email", address) for address in emails or ()]
    seen, unique = set(), []
    for channel, destination in targets:  # one email to an address both name
        if (channel, destination.casefold()) not in seen:
            seen.add((channel, destination.casefold()))
            unique.append((channel, destination))
    return unique


async def plan(engine: AsyncEngine, channels: Channels, limit: int = 100) -> int:
    """Delivery rows for alerts not yet planned; returns how many alerts were planned. An
    alert with nowhere to go waits (unplanned) until a destination is configured, for a day:
    older ones stay recorded, never sent, so that a channel set up today does not bring
    last quarter's alerts to people."""
    pick = text("""
        SELECT a.id, d.slack_url, d.emails FROM alerts a LEFT JOIN alert_destinations d ON d.tenant_id = a.tenant_id
        WHERE a.planned_at IS NULL
          AND (:any_operator OR d.slack_url IS NOT NULL OR (:smtp AND cardinality(d.emails) > 0))
        ORDER BY a.id LIMIT :limit FOR UPDATE OF a SKIP LOCKED
    """)
    async with engine.begin() as conn:
        await conn.execute(text("""
            UPDATE alerts SET planned_at = now(), last_error = :why
            WHERE planned_at IS NULL AND created_at < now() - make_interval(secs => :age)"""),
                           {"why": STALE_REASON, "age": STALE_AFTER_SECONDS})
        rows = (await conn.execute(pick, {"any_operator": bool(channels.operator_targets()),
                                          "smtp": channels.smtp, "limit": limit})).all()
        values = [{"alert_id": row.id, "channel": channel, "destination": destination}
                  for row in rows for channel, destination in _targets(channels, row.slack_url, row.emails)]
        if values:
            await conn.execute(text("""
                INSERT INTO alert_deliveries (alert_id, channel, destination)
                VALUES (:alert_id, :channel, :destination)
                ON CONFLICT ON CONSTRAINT alert_deliveries_once DO NOTHING"""), values)
        if rows:
            await conn.execute(text("UPDATE alerts SET planned_at = now() WHERE id = ANY(:ids)"),
                               {"ids": [row.id for row in rows]})
    return len(rows)


_DETAILS = text("""
    SELECT dl.id, dl.channel, dl.destination, dl.attempts, a.id AS alert_id, t.name AS tenant, a.scope,
           a.limit_kind, a.threshold, a.limit_value, a.spent, a.period_start, t.time_zone,
           CASE WHEN a.scope = 'key' THEN coalesce(k.label, k.display_prefix) ELSE s.name END AS subject,
           run.label AS run_label, a.forecast_usd, a.scope_id, ds.slack_url
    FROM alert_deliveries dl
    JOIN alerts a ON a.id = dl.alert_id
    JOIN tenants t ON t.id = a.tenant_id
    LEFT JOIN api_keys k ON a.scope = 'key' AND k.id = a.scope_id
    LEFT JOIN spend_subjects s ON a.scope IN ('user', 'tag', 'run') AND s.id = a.scope_id
    LEFT JOIN spend_limits run ON a.scope = 'run' AND run.kind = 'run' AND run.subject = s.name
    LEFT JOIN alert_destinations ds ON ds.tenant_id = a.tenant_id
    WHERE dl.id = ANY(:ids) ORDER BY dl.id
""")


def _delivery(row) -> Delivery:
    facts = AlertFacts(id=row.alert_id, tenant=row.tenant, scope=row.scope, limit_kind=row.limit_kind,
                       threshold=row.threshold, limit_value=Decimal(row.limit_value), spent=Decimal(row.spent),
                       period_start=row.period_start, time_zone=row.time_zone, subject=row.subject,
                       run_label=row.run_label, forecast_usd=row.forecast_usd,
                       key_id=row.scope_id if row.scope == "key" else None)
    return Delivery(row.id, row.channel, row.destination, row.attempts, facts, row.slack_url)


async def claim(engine: AsyncEngine, channels: Channels, *, lease_seconds: int = 60, limit: int = 20
                ) -> list[Delivery]:
    """Lease the due rows this replica can send. The lease must outlast a send (the
    channels' timeouts are well under it), or another replica could send the row too."""
    lease = text("""
        UPDATE alert_deliveries SET next_attempt_at = now() + make_interval(secs => :lease)
        WHERE id IN (SELECT id FROM alert_deliveries
                     WHERE delivered_at IS NULL AND next_attempt_at <= now() AND channel = ANY(:sendable)
                       AND (destination <> 'operator' OR channel = ANY(:operator))
                     ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED)
        RETURNING id
    """)
    async with engine.begin() as conn:
        ids = (await conn.execute(lease, {"lease": lease_seconds, "limit": limit, "sendable": channels.sendable(),
                                          "operator": channels.operator_channels()})).scalars().all()
        if not ids:
            return []
        return [_delivery(row) for row in (await conn.execute(_DETAILS, {"ids": list(ids)})).all()]


async def _settle_alert(conn: AsyncConnection, alert_id: int, error: str | None, attempted: bool = True) -> None:
    # The alert's row is locked first, so that of two deliveries ending at once the later
    # sees the earlier's and marks the alert delivered when both are.
    await conn.execute(text("UPDATE alerts SET attempts = attempts + :n, last_error = :error WHERE id = :id"),
                       {"n": int(attempted), "error": error, "id": alert_id})


async def _finish_if_done(conn: AsyncConnection, alert_id: int) -> None:
    await conn.execute(text("""
        UPDATE alerts SET delivered_at = now() WHERE id = :id AND delivered_at IS NULL
          AND NOT EXISTS (SELECT 1 FROM alert_deliveries WHERE alert_id = :id AND delivered_at IS NULL)"""),
                       {"id": alert_id})


async def mark_delivered(engine: AsyncEngine, delivery: Delivery) -> None:
    async with engine.begin() as conn:
        await _settle_alert(conn, delivery.facts.id, None)
        await conn.execute(text("UPDATE alert_deliveries SET delivered_at = now(), attempts = attempts + 1, "
                                "last_error = NULL WHERE id = :id"), {"id": delivery.id})
        await _finish_if_done(conn, delivery.facts.id)


async def mark_failed(engine: AsyncEngine, delivery: Delivery, error: str) -> None:
    error = f"{delivery.channel}: {error}"[:500]
    async with engine.begin() as conn:
        await _settle_alert(conn, delivery.facts.id, error)
        await conn.execute(text("""
            UPDATE alert_deliveries SET attempts = attempts + 1, last_error = :error,
                next_attempt_at = now() + make_interval(secs => least(power(2, attempts + 1), :cap))
            WHERE id = :id"""), {"error": error, "cap": MAX_BACKOFF_SECONDS, "id": delivery.id})


async def drop(engine: AsyncEngine, delivery: Delivery, why: str) -> None:
    """A row whose destination is gone (the tenant removed its Slack hook): nothing to send."""
    async with engine.begin() as conn:
        await _settle_alert(conn, delivery.facts.id, f"{delivery.channel}: {why}"[:500], attempted=False)
        await conn.execute(text("DELETE FROM alert_deliveries WHERE id = :id"), {"id": delivery.id})
        await _finish_if_done(conn, delivery.facts.id)


@dataclass(frozen=True)
class DeliveryState:
    channel: str
    destination: str
    attempts: int
    delivered_at: object
    last_error: str | None


async def deliveries_of(engine: AsyncEngine, alert_ids: list[int]) -> dict[int, list[DeliveryState]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT alert_id, channel, destination, attempts, delivered_at, last_error FROM alert_deliveries "
            "WHERE alert_id = ANY(:ids) ORDER BY id"), {"ids": alert_ids})).all()
    found: dict[int, list[DeliveryState]] = {}
    for row in rows:
        found.setdefault(row.alert_id, []).append(DeliveryState(*row[1:]))
    return found
