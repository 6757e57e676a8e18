"""Budget leases: far from its limits, a replica reserves a slice of a tenant's month in
one statement and admits the next calls against it in memory. Pure.

A lease is taken only when the database last said that at least `LEASE_HEADROOM` worst
cases remain under every limit, so near a limit every call is still admitted exactly, one
statement each. A lease is the worst case of `LEASE_CALLS` calls like the one that opened
it; it is an ordinary reservation in the database, so other replicas never count on it.
Calls hold their worst case while in flight and their actual charge once they end; while a
lease lives, the database counts the charges of its ended calls twice (settled, and still
inside the reserved lease), which only ever errs towards refusing. A lease stops admitting
when full or older than its maximum age; it is released once its last call ended.
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Hashable
from uuid import UUID

from billing.quota import Estimate

LEASE_CALLS = 100  # a lease covers this many worst cases: one statement per ~100 calls
LEASE_HEADROOM = 1000  # lease only while this many worst cases remain under every limit


@dataclass(eq=False)
class Lease:
    id: UUID  # the reservation's request id in the database
    usd: Decimal
    tokens: int
    taken_at: float  # monotonic seconds
    # What the database said remained after reserving the lease (None: no such limit).
    budget_remaining: Decimal | None = None
    tokens_remaining: int | None = None
    key_budget_remaining: Decimal | None = None
    held_usd: Decimal = Decimal(0)
    held_tokens: int = 0
    calls: int = 0  # admitted and not yet ended
    retired: bool = False  # admits nothing more; released when its last call ends
    last_used: float = 0.0  # monotonic seconds of the last call it admitted

    def fits(self, worst: Estimate) -> bool:
        return self.held_usd + worst.charge <= self.usd and self.held_tokens + worst.tokens <= self.tokens

    def room(self) -> tuple[Decimal | None, int | None, Decimal | None]:
        """What is left for this replica's next calls: the database's remainder plus the
        unused part of the lease."""
        free_usd, free_tokens = self.usd - self.held_usd, self.tokens - self.held_tokens
        return (None if self.budget_remaining is None else self.budget_remaining + free_usd,
                None if self.tokens_remaining is None else self.tokens_remaining + free_tokens,
                None if self.key_budget_remaining is None else self.key_budget_remaining + free_usd)


def lease_size(worst: Estimate) -> Estimate:
    return Estimate(input_tokens=worst.input_tokens * LEASE_CALLS, output_tokens=worst.output_tokens * LEASE_CALLS,
                    charge=worst.charge * LEASE_CALLS)


def worth_leasing(worst: Estimate, budget_remaining: Decimal | None, tokens_remaining: int | None,
                  key_budget_remaining: Decimal | None) -> bool:
    return ((budget_remaining is None or budget_remaining >= worst.charge * LEASE_HEADROOM)
            and (tokens_remaining is None or tokens_remaining >= worst.tokens * LEASE_HEADROOM)
            and (key_budget_remaining is None or key_budget_remaining >= worst.charge * LEASE_HEADROOM))


class LeaseBook:
    """The leases of one process, one active per (tenant, key, month)."""

    def __init__(self, max_age: float):
        self.max_age = max_age
        self._active: dict[Hashable, Lease] = {}
        self._retired: set[Lease] = set()  # retired with calls in flight
        self._releasable: list[Lease] = []  # retired and idle: to release

    def admit(self, scope: Hashable, worst: Estimate, now: float) -> Lease | None:
        """The active lease of `scope` with `worst` now held in it, or None (none, or it is
        full or too old: then it is retired)."""
        lease = self._active.get(scope)
        if lease is None:
            return None
        if now - lease.taken_at < self.max_age and lease.fits(worst):
            lease.held_usd += worst.charge
            lease.held_tokens += worst.tokens
            lease.calls += 1
            lease.last_used = now
            return lease
        self._retire(scope)
        return None

    def start(self, scope: Hashable, lease: Lease) -> None:
        if scope in self._active:
            self._retire(scope)
        self._active[scope] = lease

    def end_call(self, lease: Lease, worst: Estimate, charge: Decimal, tokens: int) -> bool:
        """A call admitted under `lease` ended (charge 0 if it produced nothing). True when
        the lease is retired and idle: release it now."""
        lease.held_usd += charge - worst.charge
        lease.held_tokens += tokens - worst.tokens
        lease.calls -= 1
        if lease.retired and lease.calls == 0:
            self._retired.discard(lease)
            return True
        return False

    def idle(self, now: float, idle_seconds: float) -> list[Lease]:
        """Leases to release now: active ones unused for `idle_seconds` (or past their age)
        with no call in flight. They leave the book."""
        done = [scope for scope, lease in self._active.items() if lease.calls == 0
                and (now - lease.last_used >= idle_seconds or now - lease.taken_at >= self.max_age)]
        return [self._active.pop(scope) for scope in done]

    def take_releasable(self) -> list[Lease]:
        """Leases retired while idle (by `admit` or `start`): release them now."""
        leases, self._releasable = self._releasable, []
        return leases

    def all_idle(self) -> list[Lease]:
        """Shutdown: every lease with no call in flight."""
        idle = [scope for scope, lease in self._active.items() if lease.calls == 0]
        return [self._active.pop(scope) for scope in idle] + self.take_releasable()

    def _retire(self, scope: Hashable) -> None:
        lease = self._active.pop(scope)
        lease.retired = True
        if lease.calls:
            self._retired.add(lease)
        else:
            self._releasable.append(lease)
