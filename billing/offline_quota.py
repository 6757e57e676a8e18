"""Quota admission while the database is down: against the last state the database reported,
less what this process admitted since. Pure.

Each admission the database answers leaves what remained of the tenant's (and the key's)
month after it. While the database is unreachable a call is admitted if its worst case
fits in that remainder less the worst cases (or, once settled, the actual charges) of the
calls admitted offline since. A replica knows only its own offline calls, so several
replicas serving through one outage can together overshoot by what each admitted; the
database counters catch up when the spooled entries are replayed.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from billing.quota import Estimate

UNKNOWN = "unknown"  # this process never saw the state of that month: it cannot admit


@dataclass
class _Remaining:
    usd: Decimal | None  # None: no such limit
    tokens: int | None
    held_usd: Decimal = Decimal(0)  # admitted offline since the database last answered
    held_tokens: int = 0

    def fits(self, charge: Decimal, tokens: int) -> bool:
        return ((self.usd is None or self.held_usd + charge <= self.usd)
                and (self.tokens is None or self.held_tokens + tokens <= self.tokens))


class LastKnownQuota:
    def __init__(self) -> None:
        self._tenants: dict[tuple[int, datetime], _Remaining] = {}
        self._keys: dict[tuple[int, datetime], _Remaining] = {}

    def remember(self, tenant_id: int, key_id: int, period: datetime, budget_remaining: Decimal | None,
                 tokens_remaining: int | None, key_budget_remaining: Decimal | None) -> None:
        """What the database answered for an admission (remainders after its reservation)."""
        self._tenants[(tenant_id, period)] = _Remaining(budget_remaining, tokens_remaining)
        self._keys[(key_id, period)] = _Remaining(key_budget_remaining, None)

    def admit(self, tenant_id: int, key_id: int, period: datetime, worst: Estimate) -> str | None:
        """None if admitted (and held), else the limit that refuses it, or UNKNOWN."""
        tenant, key = self._tenants.get((tenant_id, period)), self._keys.get((key_id, period))
        if tenant is None or key is None:
            return UNKNOWN
        if not tenant.fits(worst.charge, worst.tokens):
            usd_short = tenant.usd is not None and tenant.held_usd + worst.charge > tenant.usd
            return "tenant_budget" if usd_short else "tenant_tokens"
        if not key.fits(worst.charge, 0):
            return "key_budget"
        for held in (tenant, key):
            held.held_usd += worst.charge
            held.held_tokens += worst.tokens
        return None

    def settle(self, tenant_id: int, key_id: int, period: datetime, worst: Estimate, charge: Decimal,
               tokens: int) -> None:
        """An offline call ended: hold what it cost instead of its worst case (0 if nothing)."""
        for held in (self._tenants.get((tenant_id, period)), self._keys.get((key_id, period))):
            if held is not None:
                held.held_usd += charge - worst.charge
                held.held_tokens += tokens - worst.tokens

    def known(self, tenant_id: int, key_id: int, period: datetime) -> bool:
        return (tenant_id, period) in self._tenants and (key_id, period) in self._keys

    def remaining(self, tenant_id: int, key_id: int, period: datetime) -> tuple[Decimal | None, int | None,
                                                                                  Decimal | None]:
        tenant, key = self._tenants[(tenant_id, period)], self._keys[(key_id, period)]
        return (None if tenant.usd is None else tenant.usd - tenant.held_usd,
                None if tenant.tokens is None else tenant.tokens - tenant.held_tokens,
                None if key.usd is None else key.usd - key.held_usd)
