"""The admin API's bodies for prices, reports, the audit log and alerts."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from proxy.admin.models.fields import (MONTH_PATTERN, Id, ModelPattern, Money, MoneyOut, Query, Strict, Text,
                                       TierBound, Timestamp)


# --- prices -----------------------------------------------------------------------------

PRICE_NAME = r"^[a-z][a-z0-9_.-]{0,31}$"  # service tiers and tools, as in the catalog


class TierIn(Strict):
    """Prices for requests with at most as many input tokens as the tier's key says."""

    input: Money
    output: Money
    cached: Money | None = None
    cache_write: Money | None = None
    reasoning: Money | None = None


class PriceSet(Strict):
    """A new price version. The top-level prices apply to every request, or, with `tiers`
    (keyed by their inclusive bound of input tokens, e.g. {"128000": {...}}), to requests
    above the highest bound."""

    model: ModelPattern
    input: Money
    output: Money
    cached: Money | None = None
    cache_write: Money | None = None
    reasoning: Money | None = None
    tiers: Annotated[dict[TierBound, TierIn], Field(max_length=20,
                                                    json_schema_extra={"additionalProperties": False})] = {}
    service_tier: Annotated[str, Field(pattern=PRICE_NAME)] | None = Field(
        None, description="these are the prices of this service tier (flex, priority, ...); the others are kept")
    tools: Annotated[dict[Annotated[str, Field(pattern=PRICE_NAME)], Money],
                     Field(max_length=20, description="USD per 1,000 calls of each built-in tool",
                           json_schema_extra={"propertyNames": {"pattern": PRICE_NAME}})] = {}
    cache_storage: Money | None = Field(None, description="USD per 1M tokens per hour of cache storage")
    effective_from: AwareDatetime | None = None
    tenant_id: Id | None = None


class PriceVersionOut(BaseModel):
    version: int
    model: str
    effective_from: datetime


class PriceRow(BaseModel):
    model: str
    tenant: str | None
    version: int
    effective_from: datetime
    service_tier: str
    up_to_input_tokens: int | None
    input: MoneyOut
    cached: MoneyOut
    cache_write: MoneyOut
    output: MoneyOut
    reasoning: MoneyOut
    tools: str
    cache_storage: MoneyOut | None
    aliases: str  # the aliases and patterns that resolve to this model, space-separated
    source: str


class PriceList(BaseModel):
    data: list[PriceRow]


class PricesQuery(Query):
    at: Timestamp | None = None
    history: bool = False
    model: Text | None = None


# --- reports and audit ------------------------------------------------------------------

# What billing.report_dimensions.parse_dimensions accepts, at most MAX_DIMENSIONS of them.
_DIMENSION = r"(tenant|key|model|service_tier|day|user|tag:[A-Za-z0-9_.:-]{1,64})"
BY_PATTERN = rf"^{_DIMENSION}(,{_DIMENSION}){{0,7}}$"


class ReportQuery(Query):
    month: Annotated[str, Field(pattern=MONTH_PATTERN)]
    tenant: Text | None = None
    by: Annotated[str, Field(pattern=BY_PATTERN, description=(
        "Comma-separated: tenant, key, model, service_tier, day, user (the end user), tag:NAME (that tag's value); "
        "at most 8. Entries without a user or that tag are grouped under null."))] | None = None


class ReportRowOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    requests: int
    input_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    output_tokens: int
    reasoning_tokens: int
    cost: str
    charge: str
    cache_savings: str
    estimated_requests: int
    estimated_charge: str


class AdjustmentOut(BaseModel):
    id: int
    tenant: str
    amount: str  # USD: < 0 a credit, > 0 a charge
    reason: str
    at: str


class ReportOut(BaseModel):
    month: str
    currency: str
    tenant: str | None
    by: list[str]
    total_cost: str
    total_charge: str  # usage and adjustments
    total_usage_charge: str
    total_adjustments: str
    total_cache_savings: str
    total_requests: int
    rows: list[ReportRowOut]
    adjustments: list[AdjustmentOut]


class AuditQuery(Query):
    target: Text | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 100


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    details: dict


class AuditList(BaseModel):
    data: list[AuditOut]


class AlertOut(BaseModel):
    id: int
    tenant: str
    scope: Literal["tenant", "key", "user", "tag", "run"]
    scope_id: int  # the tenant's, the key's, or the end user's, tag value's or run's counter
    period_start: datetime  # a low balance's: the latest top-up
    limit_kind: Literal["budget", "daily_budget", "tokens", "low_balance", "forecast"]
    threshold: int  # percent (0 for low_balance)
    limit_value: MoneyOut  # for low_balance: the alert level
    spent: MoneyOut  # for low_balance: the balance
    forecast_usd: MoneyOut | None = None  # for forecast: the projected month end
    attempts: int
    delivered_at: datetime | None
    last_error: str | None


class AlertList(BaseModel):
    data: list[AlertOut]


class AlertsQuery(Query):
    tenant: Text | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 100


# --- models refused as unpriced -------------------------------------------------------

class UnpricedQuery(Query):
    month: Annotated[str, Field(pattern=MONTH_PATTERN, description="Default: the current month (UTC)")] | None = None
    tenant: Text | None = None


class UnpricedModelOut(BaseModel):
    model: str  # as clients sent it; `other`: names too long or unreadable, or past the first 100 of a day
    calls: int
    tenants: list[str]
    first_seen: datetime
    last_seen: datetime
    priced_now: bool
    nearest_priced: list[str]  # the priced names nearest to it, nearest first (as `prices resolve`)


class UnpricedModelList(BaseModel):
    month: str
    data: list[UnpricedModelOut]
