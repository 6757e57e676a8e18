"""A ledger entry: one upstream call that produced usage, priced once, never changed. Pure."""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Mapping
from uuid import UUID

from billing.pricebook import ResolvedPrice
from billing.pricing import Cost, price_usage
from billing.usage import Usage


@dataclass(frozen=True)
class CallContext:
    """What the proxy knows about a call before the upstream answers."""

    request_id: UUID  # minted before the upstream call: the idempotency key
    tenant_id: int
    key_id: int
    endpoint: str  # "responses" | "chat.completions"
    stream: bool
    started_at: datetime
    price: ResolvedPrice


@dataclass(frozen=True)
class LedgerEntry:
    request_id: UUID
    tenant_id: int
    key_id: int
    endpoint: str
    requested_model: str
    model: str
    price_version_id: int | None
    upstream_response_id: str | None
    status: str  # completed | incomplete | failed | ...
    stream: bool
    started_at: datetime
    finished_at: datetime
    first_byte_ms: int | None
    usage: Usage
    cost: Cost
    raw_usage: Mapping[str, Any] = field(default_factory=dict)

    @property
    def cost_total(self) -> Decimal:
        return self.cost.total


def build_entry(
    call: CallContext,
    usage: Usage,
    *,
    status: str,
    upstream_response_id: str | None,
    finished_at: datetime,
    first_byte_ms: int | None,
) -> LedgerEntry:
    return LedgerEntry(
        request_id=call.request_id,
        tenant_id=call.tenant_id,
        key_id=call.key_id,
        endpoint=call.endpoint,
        requested_model=call.price.requested_model,
        model=call.price.model,
        price_version_id=call.price.version.id,
        upstream_response_id=upstream_response_id,
        status=status,
        stream=call.stream,
        started_at=call.started_at,
        finished_at=finished_at,
        first_byte_ms=first_byte_ms,
        usage=usage,
        cost=price_usage(usage, call.price.version),
        raw_usage=usage.raw,
    )
