"""Quota admission for one call: reserve its worst case before it goes upstream, fit its
output cap to what the limits leave when the whole of it does not fit, or refuse it with
429 (a call over its per-call cap with 400); give the reservation back when the call
produced no usage."""

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from uuid import UUID, uuid4

from billing.attribution import BUDGET_HEADER, NONE, Attribution
from billing.budgets import scoped_arguments
from billing.db.errors import database_unreachable
from billing.db.quota import Admission, Fitting, admit, release, settle
from billing.fitting import FITTED_ENDPOINTS, CallFit, CallTooDear, OutputLine, fit_call, output_line
from billing.keys import KeyGrant
from billing.ledger import LedgerEntry
from billing.offline_quota import UNKNOWN
from billing.quota_lease import Lease, lease_size, worth_leasing
from billing.pricebook import ResolvedPrice
from billing.pricing import charge_of
from billing.quota import Estimate, estimate, next_period_start, period_start
from billing.quota_refusals import Refused, refusal_text
from billing.request_bounds import RequestBounds
from billing.report import money
from proxy.errors import ApiError
from proxy.gateway.request_body import ClientRequest
from proxy.gateway.state import ProxyState
from proxy.observability import metrics

log = logging.getLogger(__name__)

LEASE_IDLE_SECONDS = 10.0  # a lease no call used for this long is given back


@dataclass(frozen=True)
class OutputFit:
    """A call whose output cap was lowered to fit a limit: the per-choice cap set, and which
    limit set it."""

    cap: int
    limit: str


async def admit_call(state: ProxyState, grant: KeyGrant, request_id: UUID, started_at: datetime,
                     request: ClientRequest, price: ResolvedPrice, bounds: RequestBounds,
                     carried_tokens: int | None, endpoint: str,
                     unfittable: str | None = None, uplift: Decimal = Decimal(0),
                     attribution: Attribution = NONE) -> tuple[datetime, Admission | None, OutputFit | None]:
    """The period the call counts in, its admission (None: no limit applies, nothing
    reserved), and the output cap it was fitted to, if it was. `carried_tokens`: the context
    the call continues (None: of unknown size); `unfittable`: why its cap may not be set;
    `uplift`: what the call's upstream adds on list prices; `attribution`: its end user, tags
    and run, which budgets inside the tenant may weigh."""
    period = period_start(started_at, grant.time_zone)
    max_call, max_call_name = grant.max_call
    user, tags, run = scoped_arguments(grant.budgeted_attribution, attribution.user, attribution.tags,
                                       attribution.run)
    scoped = user is not None or tags is not None or run is not None
    if not grant.has_limits and max_call is None and not scoped:
        return period, None, None
    body_bytes, floor = len(request.body), grant.fit_floor(state.settings.fit_floor_tokens)
    # the upstream's uplift raises the cost, and so the charge, by one factor
    multiplier = charge_of(grant.price_multiplier, 1 + uplift) if uplift else grant.price_multiplier
    worst = estimate(body_bytes, bounds, price, multiplier, state.limits, carried_tokens)

    def line() -> OutputLine | None:  # three more estimates: only where a cap may be lowered
        return output_line(body_bytes, bounds, price, multiplier, state.limits, carried_tokens) \
            if endpoint in FITTED_ENDPOINTS and not unfittable else None

    over_cap = max_call is not None and worst.charge > max_call
    try:
        fit = fit_call(worst, line() if over_cap else None, floor, max_call, max_call_name, unfittable)
    except CallTooDear as error:
        metrics.QUOTA_REFUSED.labels("max_call").inc()
        raise ApiError(400, error.message, code="max_call_cost_exceeded", param="max_output_tokens",
                       refusal="max_call") from None
    capped = OutputFit(fit.line.max_units, fit.fitted_by) if fit.fitted_by else None
    if not grant.has_limits and not scoped:
        return period, None, capped
    # A background call keeps a reservation of its own until it ends, minutes later: no lease;
    # nor a call under a request quota (a lease counts no calls), nor one a budget inside the
    # tenant weighs (a lease is the tenant's and the key's).
    leasable = not request.background and not any(q is not None for q in grant.request_quotas) and not scoped
    lease = await _leased(state, grant, period, fit.worst, started_at) if leasable else None
    if lease is not None:
        metrics.ADMISSIONS.labels("lease").inc()
        return period, Admission(True, None, *lease.room(), estimate=fit.worst, lease=lease), capped
    if fit.line is None and grant.enforcement == "hard":
        fit = fit_call(worst, line(), floor, None, None, unfittable)  # under no per-call cap: it never raises
    fitting = Fitting(fit.line, fit.floor_units, state.settings.fit_shares) \
        if fit.line is not None and grant.enforcement == "hard" else None
    try:
        admission = await admit(state.engine, request_id=request_id, tenant_id=grant.tenant_id, key_id=grant.key_id,
                                at=started_at, estimate=fit.worst,
                                expires_at=started_at + timedelta(seconds=state.settings.reservation_ttl),
                                fitting=fitting, requests=1, user=user, tags=tags, run=run)
        metrics.ADMISSIONS.labels("statement").inc()
    except Exception as error:
        if not database_unreachable(error):
            # The database answered, and the statement failed (or the pool is exhausted): not an
            # outage, so nothing is admitted from the last known state; the client may retry.
            log.error("quota admission failed (%s: %s); answering 503", type(error).__name__, str(error)[:300])
            raise ApiError(503, "The quota check failed; try again shortly.", type="server_error",
                           code="quota_unavailable") from None
        log.warning("quota admission failed (%s): the database is unreachable", type(error).__name__,
                    exc_info=log.isEnabledFor(logging.DEBUG))
        if run is not None:  # whether the run is the key's, and not over, is not known
            raise ApiError(503, "The run budget cannot be checked now; try again shortly.", type="server_error",
                           code="quota_unavailable") from None
        admission = _admit_offline(state, grant, period, fit.worst)
    else:
        state.last_known.remember(grant.tenant_id, grant.key_id, period, admission.budget_remaining,
                                  admission.tokens_remaining, admission.key_budget_remaining)
    if not admission.admitted:
        if admission.refused == "run_budget" and admission.refusal_cause in ("unknown", "ended"):
            _refuse_run(admission)
        _refuse(admission, period, grant.time_zone, fit)
    if admission.units is not None:
        metrics.FITTED_CALLS.inc()
        return period, admission, OutputFit(admission.units, admission.fitted_by)
    return period, admission, capped


def _refuse_run(admission: Admission) -> None:
    """A run budget that is not this key's (another key's or tenant's reads as unknown), or
    that expired or was closed."""
    run = admission.refused_subject
    metrics.QUOTA_REFUSED.labels("run_" + admission.refusal_cause).inc()
    if admission.refusal_cause == "unknown":
        raise ApiError(400, f"No run budget `{run}` was made with this API key (`{BUDGET_HEADER}`).",
                       code="budget_not_found", param=BUDGET_HEADER, refusal="run_unknown")
    raise ApiError(429, f"Request refused: run budget `{run}` has ended (it expired or was closed). Make a new one "
                        "with `POST /v1/budgets`.", type="insufficient_quota", code="insufficient_quota",
                   refusal="run_ended", headers={"x-should-retry": "false", "x-billing-refused-by": "run_budget"})


def _refuse(admission: Admission, period: datetime, time_zone: str, fit: CallFit) -> None:
    """429: `insufficient_quota` when the limit is spent or has too little left for this call
    (retrying cannot help: the SDKs are told not to), `rate_limit_exceeded` when calls in
    flight hold the rest of it (they will end soon: retry)."""
    cause = admission.refusal_cause or ("held_in_flight" if admission.held_by_calls_in_flight else "spent")
    resets = admission.resets_at  # None for the credit: it never resets
    if resets is None and admission.refused != "tenant_credit":  # refused offline: by the month
        resets = next_period_start(period, time_zone)
    message = refusal_text(Refused(admission.refused, cause, fit.worst, resets, fit.line, fit.floor_units,
                                   admission.left_usd, admission.room_usd, admission.left_tokens,
                                   admission.room_tokens, fit.unfittable, admission.refused_subject))
    metrics.QUOTA_REFUSED.labels(cause).inc()
    if cause == "held_in_flight":
        raise ApiError(429, message, type="budget_in_flight", code="rate_limit_exceeded", refusal=cause,
                       headers={"retry-after": "1", "retry-after-ms": "1000", "x-should-retry": "true",
                                "x-billing-refused-by": admission.refused})
    raise ApiError(429, message, type="insufficient_quota", code="insufficient_quota", refusal=cause,
                   headers={"x-should-retry": "false", "x-billing-refused-by": admission.refused})


async def _leased(state: ProxyState, grant: KeyGrant, period: datetime, worst: Estimate,
                  started_at: datetime) -> Lease | None:
    """A lease of this tenant's and key's month that admits the call, taking a new one (one
    statement) when none does and the last known remainders are far from every limit."""
    # The limits are part of the scope: once a changed limit reaches this replica, the old
    # lease admits nothing more and the next one is taken under the new limit.
    scope = (grant.tenant_id, grant.key_id, period, period_start(started_at, grant.time_zone, "day"),
             grant.budget_limits, grant.enforcement)
    book = state.leases
    lease = book.admit(scope, worst, time.monotonic())
    _release_all(state, book.take_releasable())
    if lease is not None or not state.last_known.known(grant.tenant_id, grant.key_id, period) \
            or not worth_leasing(worst, *state.last_known.remaining(grant.tenant_id, grant.key_id, period)):
        return lease
    lock = state.lease_locks.setdefault(scope, asyncio.Lock())
    async with lock:  # one lease taken at a time per scope; the others wait and use it
        lease = book.admit(scope, worst, time.monotonic())
        if lease is not None:
            return lease
        size, lease_id = lease_size(worst), uuid4()
        try:
            taken = await admit(state.engine, request_id=lease_id, tenant_id=grant.tenant_id, key_id=grant.key_id,
                                at=started_at, estimate=size,
                                expires_at=started_at + timedelta(seconds=state.settings.reservation_ttl))
        except Exception:
            return None  # the per-call path decides (and handles an outage)
        metrics.ADMISSIONS.labels("lease_taken").inc()
        state.last_known.remember(grant.tenant_id, grant.key_id, period, taken.budget_remaining,
                                  taken.tokens_remaining, taken.key_budget_remaining)
        if not taken.admitted:
            return None
        book.start(scope, Lease(lease_id, size.charge, size.tokens, time.monotonic(), taken.budget_remaining,
                                taken.tokens_remaining, taken.key_budget_remaining))
        _release_all(state, book.take_releasable())
        return book.admit(scope, worst, time.monotonic())


def _release_all(state: ProxyState, leases: list[Lease]) -> None:
    for lease in leases:
        release_later(state, lease.id)


async def release_idle_leases(state: ProxyState, idle_seconds: float = LEASE_IDLE_SECONDS) -> None:
    """Give back leases nobody used for a while (run every few seconds)."""
    for lease in state.leases.idle(time.monotonic(), idle_seconds):
        await release(state.engine, lease.id)


async def release_leases_now(state: ProxyState) -> None:
    """Shutdown: give back every lease with no call in flight (the rest expire)."""
    for lease in state.leases.all_idle():
        try:
            await release(state.engine, lease.id)
        except Exception:
            log.warning("could not release lease %s; it will expire", lease.id)


def _admit_offline(state: ProxyState, grant: KeyGrant, period: datetime, worst: Estimate) -> Admission:
    """The database is down: refuse (outage_admission = refuse) or admit against the last
    known quota state (serve)."""
    refused = None if state.settings.outage_admission == "refuse" else \
        state.last_known.admit(grant.tenant_id, grant.key_id, period, worst)
    if state.settings.outage_admission == "refuse" or refused == UNKNOWN:
        raise ApiError(503, "The quota check is unavailable; try again shortly.", type="server_error",
                       code="quota_unavailable")
    if refused is not None:
        return Admission(False, refused, None, None, None, offline=True, estimate=worst)
    metrics.OFFLINE_ADMISSIONS.inc()
    return Admission(True, None, *state.last_known.remaining(grant.tenant_id, grant.key_id, period),
                     offline=True, estimate=worst)


def settle_in_memory(state: ProxyState, grant: KeyGrant, admission: Admission | None, period: datetime,
                     entry: LedgerEntry | None, hold_worst: bool = False) -> None:
    """A call admitted in memory (offline, or under a lease) ended: hold its actual charge
    instead of its worst case (`hold_worst`: its charge is not known yet, it is billed later:
    keep holding the worst case). (The database settles every entry itself.)"""
    if admission is None or admission.estimate is None or not (admission.offline or admission.lease):
        return
    charge = entry.charge if entry else admission.estimate.charge if hold_worst else Decimal(0)
    tokens = entry.usage.input_tokens + entry.usage.output_tokens if entry else \
        admission.estimate.tokens if hold_worst else 0
    if admission.offline:
        state.last_known.settle(grant.tenant_id, grant.key_id, period, admission.estimate, charge, tokens)
    elif state.leases.end_call(admission.lease, admission.estimate, charge, tokens):
        release_later(state, admission.lease.id)


def remaining_headers(admission: Admission | None) -> dict[str, str]:
    """What is left this month after this call's reservation, for the limits that exist."""
    if admission is None:
        return {}
    headers = {}
    if admission.budget_remaining is not None:
        headers["x-billing-budget-remaining"] = money(admission.budget_remaining)
    if admission.tokens_remaining is not None:
        headers["x-billing-tokens-remaining"] = str(admission.tokens_remaining)
    if admission.key_budget_remaining is not None:
        headers["x-billing-key-budget-remaining"] = money(admission.key_budget_remaining)
    if admission.scoped_remaining is not None:
        headers["x-billing-attributed-budget-remaining"] = money(admission.scoped_remaining)
    return headers


def settle_later(state: ProxyState, request_id: UUID, charge: Decimal, tokens: int) -> None:
    """A call with a reservation of its own ended: shrink the reservation to what it cost at
    once, so that its worst case is not held while its entry waits for the ledger writer
    (the entry's insert then settles the rest). If this fails, the entry still settles it."""
    async def shrink() -> None:
        try:
            await settle(state.engine, request_id, charge, tokens)
        except Exception:
            log.warning("could not settle reservation %s early; its ledger entry will", request_id,
                        exc_info=log.isEnabledFor(logging.DEBUG))

    state.spawn(shrink())


def release_later(state: ProxyState, request_id: UUID) -> None:
    """Give a reservation back without delaying the response; if this fails, it expires."""
    async def give_back() -> None:
        try:
            await release(state.engine, request_id)
        except Exception:
            log.warning("could not release reservation %s; it will expire", request_id, exc_info=True)

    state.spawn(give_back())
