"""The admin API's bodies for tenants, their credit and adjustments, export sinks, and keys."""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field

from billing import operator_text
from billing.alert_destinations import (ADDRESS_PATTERN, HOOK_PATTERN, MAX_ADDRESS_CHARS, MAX_RECIPIENTS,
                                        MAX_URL_CHARS, check_address, check_hook_url)

from proxy.admin.models.fields import (MONTH_PATTERN, Expiry, Id, ModelPattern, Money, MoneyOut, Name, PerMinute,
                                       PositiveMoney, Query, Reason, Seconds, SignedMoney, Strict, Text, Thresholds,
                                       TimeZone, TokenCount)


# --- tenants ----------------------------------------------------------------------------

class CallLimits(Strict):
    """Per-call caps, fitting and request quotas, on tenants and keys alike."""

    max_call_usd: Money | None = Field(None, description="The most one call may cost: a dearer call's output cap is "
                                       "lowered to fit, and one whose input alone costs more is refused (400)")
    fit_floor_tokens: PerMinute | None = Field(None, description="Calls are fitted to what a limit has left, but "
                                               "not below this output cap (null: the key's tenant's, else the "
                                               "server's setting)")
    daily_request_quota: TokenCount | None = Field(None, description="Calls per day")
    monthly_request_quota: TokenCount | None = Field(None, description="Calls per month")


class TenantLimits(CallLimits):
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
    enforcement: Literal["hard", "soft"] = Field("hard", description="hard: no call may take spend past a limit; "
                                                  "soft: admit while spend is under it, and report the overrun")


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
    enforcement: Literal["hard", "soft"] = None  # type: ignore[assignment]


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
    max_call_usd: MoneyOut | None = None
    fit_floor_tokens: int | None = None
    daily_request_quota: int | None = None
    monthly_request_quota: int | None = None
    enforcement: Literal["hard", "soft"] = "hard"
    prepaid: bool
    credit_usd: MoneyOut = Field(description="Every top-up so far")
    month: MonthStandingOut | None = Field(None, description="This month so far (on single-tenant answers)")


class TenantList(BaseModel):
    data: list[TenantOut]


# --- a tenant's own alert destinations ---------------------------------------------------

SlackHook = Annotated[str, Field(max_length=MAX_URL_CHARS, pattern=HOOK_PATTERN,
                                 description="A Slack incoming webhook (a secret: answers show its host only)"),
                      AfterValidator(check_hook_url)]
EmailAddress = Annotated[str, Field(max_length=MAX_ADDRESS_CHARS, pattern=ADDRESS_PATTERN),
                         AfterValidator(check_address)]


class AlertDestinationsIn(Strict):
    """Only the fields sent change; `null` (or `[]`) clears."""

    slack_url: SlackHook | None = None
    emails: Annotated[list[EmailAddress], Field(max_length=MAX_RECIPIENTS)] | None = None


class AlertDestinationsOut(BaseModel):
    tenant: str
    slack_url: str | None = Field(description="Scheme and host of the tenant's Slack hook, if set")
    emails: list[str]


# --- credit -----------------------------------------------------------------------------

class CreditAdd(Strict):
    amount_usd: PositiveMoney
    reason: Reason


class AdjustmentIn(Strict):
    amount_usd: SignedMoney
    reason: Reason
    month: Annotated[str, Field(pattern=MONTH_PATTERN)] | None = \
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

class KeyLimits(CallLimits):
    """A key's limits beside its monthly budget (`null` or absent: none)."""

    daily_budget_usd: Money | None = None
    weekly_budget_usd: Money | None = None
    requests_per_minute: PerMinute | None = None
    tokens_per_minute: PerMinute | None = None
    max_concurrent: PerMinute | None = Field(None, description="Calls in flight at once, streams included")


class KeyCreate(KeyLimits):
    tenant_id: Id
    label: Text | None = None
    expires_at: Expiry | None = None
    allowed_models: Annotated[list[ModelPattern], Field(min_length=1, max_length=100)] | None = None
    monthly_budget_usd: Money | None = None


class KeyUpdate(KeyLimits):
    """Only the fields sent change; `null` clears (no allow-list: any model)."""

    label: Text | None = None
    expires_at: Expiry | None = None
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
    max_call_usd: MoneyOut | None = None
    fit_floor_tokens: int | None = None
    daily_request_quota: int | None = None
    monthly_request_quota: int | None = None
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


# An end user or a tag value as a budget names it. A value calls could never carry (the
# proxy refuses unprintable ones) is accepted, and never matches a call.
_NO_CONTROL = operator_text.LINE_PATTERN.removeprefix("^[").removesuffix("]*$")
EndUser = Annotated[str, Field(min_length=1, max_length=256, pattern=f"^[{_NO_CONTROL}]+$")]
TagValue = Annotated[str, Field(min_length=3, max_length=577,
                                pattern=f"^[A-Za-z0-9_.:-]{{1,64}}=[{_NO_CONTROL}]{{1,512}}$")]
Window = Literal["day", "month"]


class UserBudgetIn(Strict):
    """`user` absent: the cap of every end user; present: that end user's own budget, which
    replaces the cap for its window."""
    user: EndUser | None = None
    per: Window
    amount_usd: PositiveMoney


class UserBudgetKey(Strict):
    user: EndUser | None = None
    per: Window


class TagBudgetIn(Strict):
    tag: TagValue = Field(description="`name=value`, e.g. project=search")
    per: Window
    amount_usd: PositiveMoney


class TagBudgetKey(Strict):
    tag: TagValue
    per: Window


class BudgetOut(BaseModel):
    tenant: str
    kind: str
    subject: str | None = Field(description="The end user or `name=value`; null: every end user")
    window: str = Field(description="day | month, in the tenant's time zone")
    amount_usd: MoneyOut
    spent_usd: MoneyOut | None = Field(description="This period; null for every end user's cap (one per user)")
    held_usd: MoneyOut | None = Field(description="Held by calls in flight")
    period_start: datetime


class BudgetList(BaseModel):
    data: list[BudgetOut]


class RunBudgetOut(BaseModel):
    id: str
    label: str | None
    amount_usd: MoneyOut
    spent_usd: MoneyOut
    held_usd: MoneyOut
    requests: int
    status: str = Field(description="active | spent | expired | closed")
    created_at: datetime
    expires_at: datetime
    closed_at: datetime | None


class RunBudgetList(BaseModel):
    data: list[RunBudgetOut]
