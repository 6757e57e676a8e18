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
    time_zone: str = "UTC"  # the tenant's; its months begin there

    @property
    def has_limits(self) -> bool:
        return (self.monthly_budget_usd is not None or self.tenant_budget_usd is not None
                or self.tenant_token_quota is not None)


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
