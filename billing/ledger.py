"""A ledger entry: one upstream call that produced usage, priced once, never changed. Pure."""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Mapping
from uuid import UUID

from billing.pricebook import ResolvedPrice
from billing.pricing import Cost, PriceVersion, cache_savings, charge_of, exact_sum, price_usage, unpriced
from billing.usage import Usage


@dataclass(frozen=True)
class CallContext:
    """What the proxy knows about a call before the upstream answers."""

    request_id: UUID  # minted before the upstream call: the idempotency key
    tenant_id: int
    key_id: int
    endpoint: str  # "responses" | "chat.completions" | "embeddings" | "responses.compact"
    stream: bool
    started_at: datetime
    price: ResolvedPrice
    price_multiplier: Decimal = Decimal(1)  # the tenant's markup (>1) or discount (<1)
    quota_period: datetime | None = None  # start of the tenant's month the call counts in
    reserved: bool = False  # a quota reservation was made for it
    request_bytes: int = 0  # size of the body sent upstream, for estimates
    upstream: str = "default"  # the configured upstream that serves it
    carried_tokens: int = 0  # context carried over from `previous_response_id`, for estimates
    output_cap: int = 0  # the most output the call may generate (all choices)
    reasoning: bool = False  # the request asked for reasoning: an estimate allows for it
    cost_uplift: Decimal = Decimal(0)  # what its upstream adds on list prices (0.10: 10%, residency)
    # input the body does not show (images; a file, prompt or context of unknown size: the
    # context window), for estimates
    unseen_input_tokens: int = 0
    worst_tools: tuple[tuple[str, int], ...] = ()  # the most its built-in tools may bill, for estimates
    end_user: str | None = None  # who inside the team it is for (`billing.attribution`)
    tags: tuple[tuple[str, str], ...] = ()  # its tags, sorted by name
    run_budget: str | None = None  # the run budget it was charged to


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
    cost: Cost  # the upstream's price
    charge: Decimal  # what the tenant is charged
    price_multiplier: Decimal
    charge_price_version_id: int | None  # the tenant's own price version, when one applied
    quota_period: datetime | None
    cache_savings: Decimal
    estimated: bool
    upstream: str
    raw_usage: Mapping[str, Any] = field(default_factory=dict)
    end_user: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    run_budget: str | None = None


def call_record(call: CallContext) -> dict[str, Any]:
    """What must be kept of a call to bill it later from an estimate (the spool's begin
    record): JSON-ready, prices by version id."""
    tenant_version = call.price.tenant_version
    return {"request_id": str(call.request_id), "tenant_id": call.tenant_id, "key_id": call.key_id,
            "endpoint": call.endpoint, "stream": call.stream, "started_at": call.started_at.isoformat(),
            "requested_model": call.price.requested_model, "model": call.price.model,
            "price_version_id": call.price.version.id,
            "tenant_price_version_id": tenant_version.id if tenant_version else None,
            "price_multiplier": str(call.price_multiplier),
            "quota_period": call.quota_period.isoformat() if call.quota_period else None,
            "request_bytes": call.request_bytes, "upstream": call.upstream, "carried_tokens": call.carried_tokens,
            "output_cap": call.output_cap, "reasoning": call.reasoning, "cost_uplift": str(call.cost_uplift),
            "unseen_input_tokens": call.unseen_input_tokens, "worst_tools": [list(pair) for pair in call.worst_tools],
            "end_user": call.end_user, "tags": dict(call.tags),
            "run_budget": call.run_budget}


def call_from_record(record: Mapping[str, Any], versions: Mapping[int, PriceVersion]) -> CallContext:
    """The call a begin record describes, priced by the versions it names."""
    tenant_version_id = record["tenant_price_version_id"]
    price = ResolvedPrice(record["requested_model"], record["model"], versions[record["price_version_id"]],
                          versions[tenant_version_id] if tenant_version_id is not None else None)
    period = record["quota_period"]
    return CallContext(
        request_id=UUID(record["request_id"]), tenant_id=record["tenant_id"], key_id=record["key_id"],
        endpoint=record["endpoint"], stream=record["stream"], started_at=datetime.fromisoformat(record["started_at"]),
        price=price, price_multiplier=Decimal(record["price_multiplier"]),
        quota_period=datetime.fromisoformat(period) if period else None, request_bytes=record["request_bytes"],
        upstream=record["upstream"], carried_tokens=record.get("carried_tokens", 0),
        output_cap=record.get("output_cap", 0), reasoning=record.get("reasoning", False),
        cost_uplift=Decimal(record.get("cost_uplift", "0")),
        unseen_input_tokens=record.get("unseen_input_tokens", 0),
        worst_tools=tuple((str(unit), int(count)) for unit, count in record.get("worst_tools", ())),
        end_user=record.get("end_user"), tags=tuple(sorted((record.get("tags") or {}).items())),
        run_budget=record.get("run_budget"))


def tenant_charge(usage: Usage, cost: Cost, price: ResolvedPrice, multiplier: Decimal) -> Decimal:
    """What the tenant pays: its own price where it has one (tools and storage it does not
    price pass through at the upstream's cost), else the upstream cost times its multiplier."""
    own = price.tenant_version
    if own is None:
        return charge_of(cost.total, multiplier)
    own_cost = price_usage(usage, own)
    return exact_sum((own_cost.total, cost.tool_calls if not own.tools else Decimal(0),
                      cost.cache_storage if own.cache_storage is None else Decimal(0)))


def build_entry(
    call: CallContext,
    usage: Usage,
    *,
    status: str,
    upstream_response_id: str | None,
    finished_at: datetime,
    first_byte_ms: int | None,
    estimated: bool = False,
) -> LedgerEntry:
    usage = usage.with_flags(*unpriced(usage, call.price.version))
    if call.cost_uplift:
        usage = usage.with_flags(f"cost_uplift:{call.cost_uplift}")
    cost = price_usage(usage, call.price.version, call.cost_uplift)
    charge = tenant_charge(usage, cost, call.price, call.price_multiplier)
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
        cost=cost,
        charge=charge,
        price_multiplier=call.price_multiplier,
        charge_price_version_id=call.price.tenant_version.id if call.price.tenant_version else None,
        quota_period=call.quota_period,
        cache_savings=cache_savings(usage, call.price.version),
        estimated=estimated,
        upstream=call.upstream,
        raw_usage=usage.raw,
        end_user=call.end_user,
        tags=call.tags,
        run_budget=call.run_budget,
    )
