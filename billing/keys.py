"""Tenant API keys: minting, hashing and the pure admission check.

A secret is `bpk_` followed by 43 URL-safe characters (256 random bits). Only its
SHA-256 is stored: with that much entropy a fast hash is safe, and it lets the proxy
look a key up in memory in O(1) without a database round trip.
"""

import fnmatch
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

SECRET_PREFIX = "bpk_"
DISPLAY_PREFIX_LENGTH = 12  # "bpk_" + 8 characters: enough to recognise, useless to attack


@dataclass(frozen=True)
class MintedKey:
    secret: str
    display_prefix: str
    secret_hash: str


def mint_key() -> MintedKey:
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    return MintedKey(secret, secret[:DISPLAY_PREFIX_LENGTH], hash_secret(secret))


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class KeyGrant:
    """What the proxy knows about a live key, kept in memory."""

    key_id: int
    tenant_id: int
    tenant_name: str
    key_status: str  # active | revoked
    tenant_status: str  # active | suspended
    expires_at: datetime | None
    price_multiplier: Decimal = Decimal(1)
    secret_valid_until: datetime | None = None  # a rotated-away secret works until then
    allowed_models: tuple[str, ...] | None = None  # names or patterns; None: every model
    monthly_budget_usd: Decimal | None = None  # the key's own
    tenant_budget_usd: Decimal | None = None
    tenant_token_quota: int | None = None
    time_zone: str = "UTC"  # the tenant's; its days, weeks and months begin there
    daily_budget_usd: Decimal | None = None  # the key's own
    weekly_budget_usd: Decimal | None = None
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    max_concurrent: int | None = None  # calls in flight at once, streams included
    tenant_daily_budget_usd: Decimal | None = None
    tenant_weekly_budget_usd: Decimal | None = None
    tenant_daily_token_quota: int | None = None
    tenant_weekly_token_quota: int | None = None
    tenant_requests_per_minute: int | None = None
    tenant_tokens_per_minute: int | None = None
    prepaid: bool = False  # the tenant spends a credit balance that never resets
    credit_usd: Decimal = Decimal(0)  # every top-up so far
    max_call_usd: Decimal | None = None  # the key's own: the most one call may cost
    tenant_max_call_usd: Decimal | None = None
    fit_floor_tokens: int | None = None  # the key's own: calls are not fitted below this output cap
    tenant_fit_floor_tokens: int | None = None
    daily_request_quota: int | None = None  # the key's own, in calls
    monthly_request_quota: int | None = None
    tenant_daily_request_quota: int | None = None
    tenant_monthly_request_quota: int | None = None
    enforcement: str = "hard"  # the tenant's: hard (never over a limit) | soft (admit while under it)
    budgeted_attribution: tuple[str, ...] = ()  # what the tenant budgets inside it: 'user', 'tag:NAME'

    @property
    def budget_limits(self) -> tuple:
        """Every budget and token limit on the key and its tenant (what admission reserves under)."""
        return (self.monthly_budget_usd, self.daily_budget_usd, self.weekly_budget_usd, self.tenant_budget_usd,
                self.tenant_token_quota, self.tenant_daily_budget_usd, self.tenant_weekly_budget_usd,
                self.tenant_daily_token_quota, self.tenant_weekly_token_quota,
                self.credit_usd if self.prepaid else None, *self.request_quotas)

    @property
    def request_quotas(self) -> tuple:
        return (self.daily_request_quota, self.monthly_request_quota, self.tenant_daily_request_quota,
                self.tenant_monthly_request_quota)

    @property
    def max_call(self) -> tuple[Decimal | None, str | None]:
        """The per-call cap that applies (the lower of the key's and the tenant's), and whose."""
        caps = [(cap, name) for cap, name in ((self.max_call_usd, "key_max_call"),
                                              (self.tenant_max_call_usd, "tenant_max_call")) if cap is not None]
        return min(caps, key=lambda pair: pair[0]) if caps else (None, None)

    def fit_floor(self, default: int) -> int:
        """The fitting floor: the key's, else the tenant's, else `default`."""
        return next((f for f in (self.fit_floor_tokens, self.tenant_fit_floor_tokens) if f is not None), default)

    @property
    def has_limits(self) -> bool:
        return any(limit is not None for limit in self.budget_limits)

    @property
    def weighs_calls(self) -> bool:
        """Some limit needs each call's worst case: a budget or quota, a per-call cap, or a
        tokens-per-minute rate limit."""
        return self.has_limits or self.max_call[0] is not None \
            or self.tokens_per_minute is not None or self.tenant_tokens_per_minute is not None

    @property
    def rate_limits(self) -> tuple[tuple[str, int, str, int], ...]:
        """(scope, scope id, measure, limit per minute) of each rate limit that applies."""
        return tuple((scope, scope_id, measure, limit) for scope, scope_id, measure, limit in (
            ("key", self.key_id, "requests", self.requests_per_minute),
            ("key", self.key_id, "tokens", self.tokens_per_minute),
            ("tenant", self.tenant_id, "requests", self.tenant_requests_per_minute),
            ("tenant", self.tenant_id, "tokens", self.tenant_tokens_per_minute)) if limit is not None)


class KeyRefused(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def admit_key(grant: KeyGrant | None, now: datetime) -> KeyGrant:
    """The grant if the key may be used now; otherwise KeyRefused (contract section 4)."""
    if grant is None or grant.key_status != "active":
        raise KeyRefused(401, "invalid_api_key", "Incorrect API key provided.")
    if grant.expires_at is not None and grant.expires_at <= now:
        raise KeyRefused(401, "invalid_api_key", "The API key provided has expired.")
    if grant.secret_valid_until is not None and grant.secret_valid_until <= now:
        raise KeyRefused(401, "invalid_api_key", "The API key provided was rotated and is no longer valid.")
    if grant.tenant_status != "active":
        raise KeyRefused(403, "tenant_suspended", "The team this API key belongs to is suspended.")
    return grant


def model_allowed(grant: KeyGrant, requested: str, resolved: str | None) -> bool:
    """Whether the key's allow-list admits the model, by the requested or the resolved name."""
    if grant.allowed_models is None:
        return True
    names = [requested] if resolved is None else [requested, resolved]
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in grant.allowed_models for name in names)
