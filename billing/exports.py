"""What the ledger tells billing systems: sink configuration and the events themselves. Pure.

Every ledger entry and adjustment becomes one event whose id never changes (the ledger's
request id, or the adjustment's event id), so a receiver that drops duplicates counts each
exactly once however often it is delivered:
- CloudEvents 1.0 (JSON) for a generic webhook and for OpenMeter;
- a Stripe meter event (`identifier` = that id) for Stripe.
Money travels as decimal strings, never as floats."""

import base64
import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN
from typing import Any, Mapping

from billing.report import money

KINDS = ("webhook", "stripe", "openmeter")
DEFAULT_URLS = {"stripe": "https://api.stripe.com", "openmeter": "https://openmeter.cloud"}
STRIPE_VALUES = ("total_tokens", "input_tokens", "output_tokens", "charge_micro_usd")
STRIPE_MAX_AGE = timedelta(days=35)  # Stripe refuses meter events older than this
EVENT_TYPES = {"usage": "io.billing-proxy.usage", "adjustment": "io.billing-proxy.adjustment"}


@dataclass(frozen=True)
class SinkConfig:
    name: str
    kind: str  # webhook | stripe | openmeter
    url: str
    secret: str | None = None  # webhook: the HMAC key; stripe, openmeter: the API key
    source: str = "billing-proxy"  # CloudEvents `source`
    event_name: str = "llm_usage"  # stripe: the meter's event name
    value: str = "total_tokens"  # stripe: which figure is the meter's value (one of STRIPE_VALUES)
    customers: Mapping[str, str] = field(default_factory=dict)  # stripe: tenant name -> customer id
    batch_size: int = 100

    def __repr__(self) -> str:  # never print credentials
        return f"SinkConfig(name={self.name!r}, kind={self.kind!r}, url={self.url!r})"


@dataclass(frozen=True)
class ExportEvent:
    """One outbox row with what it refers to: a ledger entry's columns, or an adjustment's."""
    outbox_id: int
    kind: str  # usage | adjustment
    event_id: str
    tenant_id: int
    tenant: str
    data: Mapping[str, Any]  # the ledger row (with `key`), or the adjustment row


def event_time(event: ExportEvent) -> datetime:
    return event.data["finished_at"] if event.kind == "usage" else event.data["created_at"]


def event_data(event: ExportEvent) -> dict[str, Any]:
    row = event.data
    if event.kind == "adjustment":
        return {"tenant": event.tenant, "adjustment_id": row["id"], "month": f"{row['month']:%Y-%m}",
                "amount_usd": money(row["amount_usd"]), "reason": row["reason"], "actor": row["actor"]}
    booked = row["booked_on"] or row["started_at"].date()
    return {
        "tenant": event.tenant, "key_id": row["key_id"], "key": row["key"], "request_id": event.event_id,
        "endpoint": row["endpoint"], "model": row["model"], "requested_model": row["requested_model"],
        "upstream": row["upstream"], "upstream_response_id": row["upstream_response_id"], "status": row["status"],
        "service_tier": row["service_tier"], "stream": row["stream"],
        "started_at": row["started_at"].isoformat(), "finished_at": row["finished_at"].isoformat(),
        "input_tokens": row["input_tokens"], "cached_tokens": row["cached_tokens"],
        "cache_write_tokens": row["cache_write_tokens"], "output_tokens": row["output_tokens"],
        "reasoning_tokens": row["reasoning_tokens"], "total_tokens": row["input_tokens"] + row["output_tokens"],
        "tool_calls": dict(row["tool_calls"]), "cache_storage_tokens": row["cache_storage_tokens"],
        "cost_usd": money(row["cost_total"]), "charge_usd": money(row["charge_total"]),
        "estimated": row["estimated"], "late": row["booked_on"] is not None, "booked_month": f"{booked:%Y-%m}",
        "end_user": row.get("end_user"), "tags": dict(row.get("tags") or {}),
        "run_budget": row.get("run_budget"),
    }


def cloud_event(event: ExportEvent, source: str) -> dict[str, Any]:
    return {"specversion": "1.0", "id": event.event_id, "source": source, "type": EVENT_TYPES[event.kind],
            "subject": event.tenant, "time": event_time(event).isoformat(), "datacontenttype": "application/json",
            "data": event_data(event)}


def webhook_signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks: `v1,` and the base64 HMAC-SHA256 of `id.timestamp.body`; a `whsec_`
    secret is base64 after its prefix, any other is used as its UTF-8 bytes."""
    key = base64.b64decode(secret[6:]) if secret.startswith("whsec_") else secret.encode()
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def stripe_value(event: ExportEvent, measure: str) -> str:
    row = event.data
    if measure == "charge_micro_usd":  # Stripe's meter values are whole numbers
        return str(int((row["charge_total"] * 1_000_000).to_integral_value(ROUND_HALF_EVEN)))
    if measure == "total_tokens":
        return str(row["input_tokens"] + row["output_tokens"])
    return str(row[measure])


def stripe_meter_event(event: ExportEvent, config: SinkConfig, now: datetime) -> dict[str, str]:
    """The form fields of `POST /v1/billing/meter_events`. An entry older than Stripe accepts
    (a late one) is dated now, so it still reaches the open invoice."""
    at = event_time(event)
    if at < now - STRIPE_MAX_AGE + timedelta(hours=1):
        at = now
    return {"event_name": config.event_name, "identifier": event.event_id, "timestamp": str(int(at.timestamp())),
            "payload[stripe_customer_id]": config.customers.get(event.tenant, event.tenant),
            "payload[value]": stripe_value(event, config.value)}


def exported_kinds(kind: str) -> tuple[str, ...]:
    """Stripe meters count usage; a credit or charge is made on the Stripe invoice itself."""
    return ("usage",) if kind == "stripe" else ("usage", "adjustment")
