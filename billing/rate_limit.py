"""Requests and tokens per minute: token buckets shared by every replica, drawn on in
shares so that calls are admitted in memory. Pure.

Each limit is a bucket in the database holding up to the per-minute limit and refilling
continuously at a sixtieth of it per second (as OpenAI's own limits do). A replica
withdraws a share, one second's worth or what the call needs if more, in one statement,
and admits calls against it in memory until it is used up; a share nobody used for a
second goes back. Since every unit is withdrawn before it is spent, the replicas together
never admit more than the bucket gave out: at most the limit at once, then the refill.

A call takes one request, and its worst-case tokens (its input bound plus the output it
may write, at most the whole limit) until it ends; then the tokens it did not use go back
to the share, so the tokens per minute are settled with the actual usage.
"""

import math
from dataclasses import dataclass
from typing import Iterable

BucketKey = tuple[str, int, str]  # (scope: key | tenant, its id, measure: requests | tokens)


@dataclass
class Share:
    limit: int  # per minute
    units: int = 0  # withdrawn and not yet spent (negative: a call used more than it took)
    level: int = 0  # the bucket in the database (whole requests or tokens) after this process's last statement...
    level_at: float = 0.0  # ...at this monotonic time
    last_used: float = 0.0

    @property
    def per_second(self) -> float:
        return self.limit / 60

    def remaining(self, now: float) -> int:
        """About what is left to this process: the bucket as last seen, refilled since, plus its share."""
        return max(0, int(min(self.limit, self.level + self.per_second * (now - self.level_at))) + self.units)

    def seconds_to_full(self, now: float) -> float:
        return max(0.0, (self.limit - self.remaining(now)) / self.per_second)


def one_second(limit: int) -> int:
    return math.ceil(limit / 60)


@dataclass(frozen=True)
class Withdrawal:
    key: BucketKey
    limit: int
    need: int  # the least that lets the call in
    want: int  # what to take if the bucket has it


@dataclass(frozen=True)
class Refusal:
    measure: str  # requests | tokens
    limit: int
    retry_after: float  # seconds until the bucket holds what the call needs


class RateBook:
    """The shares of one process."""

    def __init__(self) -> None:
        self.shares: dict[BucketKey, Share] = {}

    def needs(self, limits: Iterable[tuple[str, int, str, int]], tokens: int) -> dict[BucketKey, int]:
        """What a call takes from each bucket of `limits` ((scope, id, measure, limit)...)."""
        needs = {}
        for scope, scope_id, measure, limit in limits:
            share = self.shares.setdefault((scope, scope_id, measure), Share(limit, level=limit))
            share.limit = limit
            needs[(scope, scope_id, measure)] = 1 if measure == "requests" else min(tokens, limit)
        return needs

    def take(self, needs: dict[BucketKey, int], now: float) -> bool:
        """Take every need from the shares in memory, or none (then `withdrawals` says what to ask for)."""
        if any(self.shares[key].units < need for key, need in needs.items()):
            return False
        for key, need in needs.items():
            share = self.shares[key]
            share.units -= need
            share.last_used = now
        return True

    def withdrawals(self, needs: dict[BucketKey, int]) -> list[Withdrawal]:
        """What to withdraw from the database so that `take` succeeds."""
        asks = []
        for key, need in needs.items():
            share = self.shares[key]
            if share.units < need:
                asks.append(Withdrawal(key, share.limit, need - share.units,
                                       max(need - share.units, one_second(share.limit))))
        return asks

    def granted(self, key: BucketKey, amount: int, level: int, now: float) -> None:
        share = self.shares[key]
        share.units += amount
        share.level, share.level_at = level, now

    def settle(self, needs: dict[BucketKey, int], tokens_used: int) -> None:
        """A call ended: the tokens it took and did not use go back (or what it used beyond them is owed)."""
        for key, need in needs.items():
            if key[2] == "tokens" and key in self.shares:
                self.shares[key].units += need - tokens_used

    def give_back(self, needs: dict[BucketKey, int]) -> None:
        """A call that took its share was refused later (by its budget): it never ran."""
        for key, need in needs.items():
            if key in self.shares:
                self.shares[key].units += need

    def idle(self, now: float, seconds: float) -> list[tuple[BucketKey, int, int]]:
        """(bucket, limit, units) of shares unused for `seconds`, to give back; they leave the book."""
        idle = [(key, share.limit, share.units) for key, share in self.shares.items()
                if share.units != 0 and now - share.last_used >= seconds]
        for key, _, _ in idle:
            self.shares[key].units = 0
        return idle

    def headers(self, needs: Iterable[BucketKey], now: float) -> dict[str, str]:
        """OpenAI's `x-ratelimit-*` headers, per measure for the tightest of its buckets."""
        tightest: dict[str, Share] = {}
        for key in needs:
            share = self.shares[key]
            if key[2] not in tightest or share.remaining(now) < tightest[key[2]].remaining(now):
                tightest[key[2]] = share
        headers = {}
        for measure, share in sorted(tightest.items()):
            headers[f"x-ratelimit-limit-{measure}"] = str(share.limit)
            headers[f"x-ratelimit-remaining-{measure}"] = str(share.remaining(now))
            headers[f"x-ratelimit-reset-{measure}"] = duration(share.seconds_to_full(now))
        return headers


def duration(seconds: float) -> str:
    """A duration as OpenAI writes it in `x-ratelimit-reset-*`: `20ms`, `1s`, `6m0s`, `1h2m3s`."""
    if seconds < 1:
        return f"{math.ceil(seconds * 1000)}ms"
    whole = math.ceil(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"
