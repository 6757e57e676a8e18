"""Rate limits and the concurrency cap on the request path: taken before the budget is
reserved, given back when the call ends (or never ran). In steady state both are served
from this replica's shares and slots in memory (`billing.rate_limit`,
`billing.concurrency`); the database is asked only when they run out."""

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field

from billing.db.rate_limits import claim_slot, give_back, renew_slots, return_slots, withdraw
from billing.keys import KeyGrant
from billing.rate_limit import BucketKey
from proxy.observability import metrics
from proxy.errors import ApiError
from proxy.gateway.state import ProxyState

log = logging.getLogger(__name__)

SHARE_IDLE_SECONDS = 1.0  # a rate-limit share unused this long goes back to the other replicas
SLOT_IDLE_SECONDS = 0.25  # and a concurrency slot (a cap is small: an idle slot matters more)
SWEEP_SECONDS = 0.25  # how often idle shares and slots are looked for
SLOT_TTL_SECONDS = 30.0  # a dead replica's slots are free again after this


@dataclass
class Taken:
    """What one call holds until it ends."""

    needs: dict[BucketKey, int] = field(default_factory=dict)
    slot_key: int | None = None  # the key whose concurrency slot it holds
    headers: dict[str, str] = field(default_factory=dict)  # x-ratelimit-* as of its admission


async def take_limits(state: ProxyState, grant: KeyGrant, worst_tokens: int) -> Taken:
    """A slot under the key's concurrency cap and the call's share of every rate limit, or
    a 429 `rate_limit_exceeded` worth retrying after `Retry-After`."""
    taken = Taken()
    if grant.max_concurrent is not None:
        if not state.slots.take(grant.key_id):  # all the slots it holds are busy: claim one more
            await _claim_slot(state, grant)
        taken.slot_key = grant.key_id
    if grant.rate_limits:
        try:
            taken.needs = state.rates.needs(grant.rate_limits, worst_tokens)
            await _take_rates(state, taken.needs)
        except BaseException:
            end_limits(state, Taken(slot_key=taken.slot_key), 0, ran=False)
            raise
        taken.headers = state.rates.headers(taken.needs, time.monotonic())
    return taken


def end_limits(state: ProxyState, taken: Taken, tokens_used: int | None, ran: bool = True) -> None:
    """The call ended having used `tokens_used` (None: not known yet, it keeps what it took);
    or, `ran` False, it never went upstream and gives everything back."""
    if taken.needs:
        if not ran:
            state.rates.give_back(taken.needs)
        elif tokens_used is not None:
            state.rates.settle(taken.needs, tokens_used)
    if taken.slot_key is not None:
        state.slots.end(taken.slot_key, time.monotonic())


async def _claim_slot(state: ProxyState, grant: KeyGrant) -> None:
    try:
        claimed = await claim_slot(state.engine, grant.key_id, state.holder, grant.max_concurrent, SLOT_TTL_SECONDS)
    except Exception:
        log.warning("concurrency claim failed: database unreachable; admitted",
                    exc_info=log.isEnabledFor(logging.DEBUG))
        claimed = True  # the cap is a courtesy to the upstream, not money: an outage does not refuse
    if not claimed:
        metrics.RATE_LIMITED.labels("concurrency").inc()
        raise ApiError(429, f"Too many calls in flight on this API key: at most {grant.max_concurrent} at once. "
                            "Retry once one ends.", type="requests", code="rate_limit_exceeded",
                       headers=_retry_headers(1.0), refusal="concurrency")
    state.slots.claimed(grant.key_id)


async def _take_rates(state: ProxyState, needs: dict[BucketKey, int]) -> None:
    rates = state.rates
    if rates.take(needs, time.monotonic()):
        return
    lock = state.rate_locks.setdefault(tuple(sorted(needs)), asyncio.Lock())
    async with lock:  # one withdrawal at a time per set of buckets; the others use what it brought
        if rates.take(needs, time.monotonic()):
            return
        asks = rates.withdrawals(needs)
        try:
            answers = await withdraw(state.engine, asks)
        except Exception:
            log.warning("rate-limit withdrawal failed: database unreachable; admitted",
                        exc_info=log.isEnabledFor(logging.DEBUG))
            for ask in asks:  # serve on what the limit allows, unshared, until the database is back
                rates.granted(ask.key, ask.need, ask.limit, time.monotonic())
            rates.take(needs, time.monotonic())
            return
        now = time.monotonic()
        for answer in answers:
            rates.granted(answer.key, answer.granted, answer.level, now)
        if rates.take(needs, now):
            return
    short = max(answers, key=lambda a: a.wait_seconds)
    scope, _, measure = short.key
    limit = rates.shares[short.key].limit
    metrics.RATE_LIMITED.labels(measure).inc()
    owner = "this API key" if scope == "key" else "this team"
    raise ApiError(429, f"Rate limit reached for {measure} per minute on {owner}: limit {limit}. "
                        f"Please try again in {short.wait_seconds:.1f}s.",
                   type=measure, code="rate_limit_exceeded",
                   headers={**rates.headers(needs, now), **_retry_headers(short.wait_seconds)})


def _retry_headers(seconds: float) -> dict[str, str]:
    """When the official SDKs should retry (they read `retry-after-ms` first)."""
    return {"retry-after": str(max(1, math.ceil(seconds))), "retry-after-ms": str(max(1, math.ceil(seconds * 1000))),
            "x-should-retry": "true"}


async def give_back_idle(state: ProxyState, share_idle: float = SHARE_IDLE_SECONDS,
                         slot_idle: float = SLOT_IDLE_SECONDS) -> None:
    """Return shares and slots this replica has not used for a while (run every SWEEP_SECONDS)."""
    now = time.monotonic()
    shares = state.rates.idle(now, share_idle)
    if shares:
        await give_back(state.engine, shares)
    for key_id, slots in state.slots.surplus(now, slot_idle):
        await return_slots(state.engine, key_id, state.holder, slots)


async def keep_slots(state: ProxyState) -> None:
    """This replica is alive: its slots do not expire (run every SLOT_TTL_SECONDS / 3)."""
    if state.slots.holding():
        await renew_slots(state.engine, state.holder, SLOT_TTL_SECONDS)


async def give_back_all(state: ProxyState) -> None:
    """Shutdown: every share and idle slot goes back."""
    try:
        await give_back_idle(state, 0.0, 0.0)
    except Exception:
        log.warning("could not give back rate-limit shares; they refill on their own")
