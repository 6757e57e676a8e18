"""The admin API's request and response bodies. The same models validate requests,
serialise responses and generate the OpenAPI document, so the three cannot drift apart.

Money is a decimal string everywhere ("12.50"): never a JSON number, never a float.
"""

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal
from zoneinfo import available_timezones

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema

from billing.quota import check_thresholds, check_time_zone
from billing.report import money

MONEY_PATTERN = r"^[0-9]{1,15}(\.[0-9]{1,12})?$"
MAX_ID = 2**63 - 1


POSITIVE_MONEY_PATTERN = r"^([1-9][0-9]{0,14}(\.[0-9]{1,12})?|0\.[0-9]{0,11}[1-9][0-9]{0,11})$"


def _decimal_string(pattern: str, example: str, what: str = "a decimal string"):
    """A money field: a JSON string matching `pattern`, exact as a Decimal, written back the same way."""
    def parse(value: object) -> Decimal:
        if isinstance(value, Decimal):  # from our own objects, on the way out
            return value
        if not isinstance(value, str) or not re.fullmatch(pattern, value):
            raise ValueError(f'must be {what} such as "{example}"')
        return Decimal(value)

    return Annotated[Decimal, BeforeValidator(parse), PlainSerializer(money, return_type=str),
                     WithJsonSchema({"type": "string", "pattern": pattern, "examples": [example]})]


Money = _decimal_string(MONEY_PATTERN, "12.50")
SignedMoney = _decimal_string(r"^-?" + POSITIVE_MONEY_PATTERN[1:], "-12.50",
                              "a non-zero decimal string (negative: a credit)")
PositiveMoney = _decimal_string(POSITIVE_MONEY_PATTERN, "25.00", "a positive decimal string")
# On the way out a price may carry more decimals (10% of a price with 12 decimals has 13).
MoneyOut = Annotated[
    Decimal,
    PlainSerializer(money, return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^-?[0-9]+\.[0-9]+$", "examples": ["12.50"]}),
]
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00]+$")]
Text = Annotated[str, Field(max_length=200, pattern=r"^[^\x00]*$")]  # Postgres text holds no NUL
ModelPattern = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:/@+*?\[\]-]+$")]
TierBound = Annotated[str, Field(pattern=r"^[1-9][0-9]{0,17}$")]


def _timestamp_in(value: object) -> datetime:
    """An RFC 3339 date-time with its offset; a bare number is not a time here."""
    text = value.strip().upper() if isinstance(value, str) else ""
    if "T" not in text:
        raise ValueError("must be an RFC 3339 date-time such as 2026-11-01T00:00:00Z")
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("must include a time zone offset, e.g. Z")
    return parsed


Timestamp = Annotated[datetime, BeforeValidator(_timestamp_in),
                      WithJsonSchema({"type": "string", "format": "date-time", "examples": ["2026-11-01T00:00:00Z"]})]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
TokenCount = Annotated[int, Field(ge=0, le=MAX_ID)]
Seconds = Annotated[int, Field(ge=0, le=10 * 365 * 86400)]
PerMinute = Annotated[int, Field(ge=1, le=1_000_000_000)]


def _time_zone_in(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("must be an IANA time zone name")
    return check_time_zone(value)


def _thresholds_in(value: object) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ValueError("must be a list of percentages")
    return check_thresholds(value)


TimeZone = Annotated[str, BeforeValidator(_time_zone_in),
                     WithJsonSchema({"type": "string", "enum": sorted(available_timezones()),
                                     "examples": ["UTC", "Europe/Berlin"]})]
Thresholds = Annotated[list[int], BeforeValidator(_thresholds_in),
                       WithJsonSchema({"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 1000},
                                       "minItems": 1, "maxItems": 10, "examples": [[50, 80, 100]]})]


class Strict(BaseModel):
    """A request body: unknown fields refused, no type coercion ("5" is not an integer).
    Validated from the JSON text, where an ISO 8601 string is a valid datetime."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Query(BaseModel):
    """Query parameters arrive as strings, so these are converted."""

    model_config = ConfigDict(extra="forbid")


# --- tenants ----------------------------------------------------------------------------

class TenantLimits(Strict):
    """The limits beside the monthly ones (`null` or absent: none)."""

    daily_budget_usd: Money | None = None
    weekly_budget_usd: Money | None = None
    daily_token_quota: TokenCount | None = None
    weekly_token_quota: TokenCount | None = None
    requests_per_minute: PerMinute | None = None
    tokens_per_minute: PerMinute | None = None


class TenantCreate(TenantLimits):
    name: Name
    monthly_budget_usd: Money | None = None
    monthly_token_quota: TokenCount | None = None
    price_multiplier: Money = Decimal(1)
    time_zone: TimeZone = "UTC"
    alert_thresholds: Thresholds = [50, 80, 100]
    prepaid: bool = Field(False, description="Spend a credit balance (POST .../credits) that never resets")


class TenantUpdate(TenantLimits):
    """Only the fields sent change; `null` clears a budget or quota."""

    name: Name = None  # type: ignore[assignment]  # absent: unchanged; null is refused
    monthly_budget_usd: Money | None = None
    monthly_token_quota: TokenCount | None = None
    price_multiplier: Money = None  # type: ignore[assignment]
    status: Literal["active", "suspended"] = None  # type: ignore[assignment]
    time_zone: TimeZone = None  # type: ignore[assignment]
    alert_thresholds: Thresholds = None  # type: ignore[assignment]
    prepaid: bool = None  # type: ignore[assignment]


class MonthStandingOut(BaseModel):
    period_start: datetime
    resets_at: datetime
    spent_usd: MoneyOut
    reserved_usd: MoneyOut
    budget_remaining_usd: MoneyOut | None
    spent_tokens: int
    reserved_tokens: int
    tokens_remaining: int | None


class TenantOut(BaseModel):
    id: int
    name: str
    status: Literal["active", "suspended"]
    monthly_budget_usd: MoneyOut | None
    monthly_token_quota: int | None
    price_multiplier: MoneyOut
    time_zone: str
    alert_thresholds: list[int]
    created_at: datetime
    daily_budget_usd: MoneyOut | None
    weekly_budget_usd: MoneyOut | None
    daily_token_quota: int | None
    weekly_token_quota: int | None
    requests_per_minute: int | None
    tokens_per_minute: int | None
    prepaid: bool
    credit_usd: MoneyOut = Field(description="Every top-up so far")
    month: MonthStandingOut | None = Field(None, description="This month so far (on single-tenant answers)")


class TenantList(BaseModel):
    data: list[TenantOut]


# --- credit -----------------------------------------------------------------------------

class CreditAdd(Strict):
    amount_usd: PositiveMoney
    reason: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00]*\S[^\x00]*$")]


class AdjustmentIn(Strict):
    amount_usd: SignedMoney
    reason: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00]*\S[^\x00]*$")]
    month: Annotated[str, Field(pattern=r"^(19[7-9][0-9]|[2-8][0-9]{3}|9[0-8][0-9]{2})-(0[1-9]|1[0-2])$")] | None = \
        Field(default=None, description="Default: the current month (UTC); a closed month refuses it (409)")


class AdjustmentMade(BaseModel):
    id: int
    event_id: str
    tenant: str
    month: str
    amount_usd: MoneyOut
    reason: str
    actor: str
    created_at: datetime


class ExportSinkOut(BaseModel):
    sink: str
    kind: str
    enabled: bool
    pending: int
    oldest_pending: datetime | None
    lag_seconds: int
    delivered_recently: int = Field(description="Within the last 7 days")
    held_tenants: int
    last_error: str | None


class ExportSinkList(BaseModel):
    data: list[ExportSinkOut]


class TopUpOut(BaseModel):
    id: int
    amount_usd: MoneyOut
    reason: str
    actor: str
    created_at: datetime


class CreditOut(BaseModel):
    tenant: str
    prepaid: bool = Field(description="Only a prepaid tenant's calls spend the balance")
    credited_usd: MoneyOut = Field(description="Every top-up so far")
    spent_usd: MoneyOut
    reserved_usd: MoneyOut = Field(description="Held by calls in flight")
    balance_usd: MoneyOut
    topups: list[TopUpOut] = Field(description="Newest first")


# --- keys -------------------------------------------------------------------------------

class KeyLimits(Strict):
    """A key's limits beside its monthly budget (`null` or absent: none)."""

    daily_budget_usd: Money | None = None
    weekly_budget_usd: Money | None = None
    requests_per_minute: PerMinute | None = None
    tokens_per_minute: PerMinute | None = None
    max_concurrent: PerMinute | None = Field(None, description="Calls in flight at once, streams included")


class KeyCreate(KeyLimits):
    tenant_id: Id
    label: Text | None = None
    expires_at: AwareDatetime | None = None
    allowed_models: Annotated[list[ModelPattern], Field(min_length=1, max_length=100)] | None = None
    monthly_budget_usd: Money | None = None


class KeyUpdate(KeyLimits):
    """Only the fields sent change; `null` clears (no allow-list: any model)."""

    label: Text | None = None
    expires_at: AwareDatetime | None = None
    allowed_models: Annotated[list[ModelPattern], Field(min_length=1, max_length=100)] | None = None
    monthly_budget_usd: Money | None = None


class KeyRotate(Strict):
    grace_seconds: Seconds = 0


class KeyOut(BaseModel):
    id: int
    display_prefix: str
    tenant: str
    label: str | None
    status: Literal["active", "revoked"]
    allowed_models: list[str] | None
    monthly_budget_usd: MoneyOut | None
    daily_budget_usd: MoneyOut | None
    weekly_budget_usd: MoneyOut | None
    requests_per_minute: int | None
    tokens_per_minute: int | None
    max_concurrent: int | None
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


class KeyList(BaseModel):
    data: list[KeyOut]


class IssuedKeyOut(BaseModel):
    id: int
    key: str = Field(description="The secret. Shown in this response only; store it now.")
    prefix: str
    tenant: str
    label: str | None
    expires_at: datetime | None
    created_at: datetime
    old_key_valid_until: datetime | None = None


class KeysQuery(Query):
    tenant_id: Id | None = None


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

class ReportQuery(Query):
    month: Annotated[str, Field(pattern=r"^(19[7-9][0-9]|[2-8][0-9]{3}|9[0-8][0-9]{2})-(0[1-9]|1[0-2])$")]
    tenant: Text | None = None
    by: Annotated[str, Field(pattern=r"^(tenant|key|model|service_tier|day)(,(tenant|key|model|service_tier|day))*$")
                  ] | None = None


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
    scope: Literal["tenant", "key"]
    scope_id: int
    period_start: datetime
    limit_kind: Literal["budget", "tokens"]
    threshold: int
    limit_value: MoneyOut
    spent: MoneyOut
    attempts: int
    delivered_at: datetime | None
    last_error: str | None


class AlertList(BaseModel):
    data: list[AlertOut]


class AlertsQuery(Query):
    tenant: Text | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 100


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorOut(BaseModel):
    error: ErrorDetail
