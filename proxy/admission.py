"""Quota admission for one call: reserve its worst case before it goes upstream, or refuse
it with 429; give the reservation back when the call produced no usage."""

import logging
from datetime import datetime, timedelta
from decimal import Decimal
from uuid import UUID

from billing.db.quota import Admission, admit, release
from billing.keys import KeyGrant
from billing.ledger import LedgerEntry
from billing.offline_quota import UNKNOWN
from proxy import metrics
from billing.pricebook import ResolvedPrice
from billing.quota import Estimate, estimate, next_period_start, period_start, refusal_message
from billing.report import money
from proxy.errors import ApiError
from proxy.request_body import ClientRequest
from proxy.state import ProxyState

log = logging.getLogger(__name__)


async def admit_call(state: ProxyState, grant: KeyGrant, request_id: UUID, started_at: datetime,
                     request: ClientRequest, price: ResolvedPrice) -> tuple[datetime, Admission | None]:
    """The period the call counts in, and its admission (None: no limit applies, nothing reserved)."""
    period = period_start(started_at, grant.time_zone)
    if not grant.has_limits:
        return period, None
    worst = estimate(len(request.body), request.payload, price, grant.price_multiplier,
                     state.settings.default_max_output_tokens)
    try:
        admission = await admit(state.engine, request_id=request_id, tenant_id=grant.tenant_id, key_id=grant.key_id,
                                period=period, estimate=worst,
                                expires_at=started_at + timedelta(seconds=state.settings.reservation_ttl))
    except Exception:
        log.warning("quota admission failed: database unreachable", exc_info=log.isEnabledFor(logging.DEBUG))
        admission = _admit_offline(state, grant, period, worst)
    else:
        state.last_known.remember(grant.tenant_id, grant.key_id, period, admission.budget_remaining,
                                  admission.tokens_remaining, admission.key_budget_remaining)
    if not admission.admitted:
        resets = next_period_start(period, grant.time_zone)
        raise ApiError(429, refusal_message(admission.refused, resets), type="insufficient_quota",
                       code="insufficient_quota")
    return period, admission


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


def settle_offline(state: ProxyState, grant: KeyGrant, admission: Admission | None, period: datetime,
                   entry: LedgerEntry | None) -> None:
    """An offline-admitted call ended: hold its actual charge instead of its worst case."""
    if admission is None or not admission.offline or admission.estimate is None:
        return
    charge = entry.charge if entry else Decimal(0)
    tokens = entry.usage.input_tokens + entry.usage.output_tokens if entry else 0
    state.last_known.settle(grant.tenant_id, grant.key_id, period, admission.estimate, charge, tokens)


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
    return headers


def release_later(state: ProxyState, request_id: UUID) -> None:
    """Give a reservation back without delaying the response; if this fails, it expires."""
    async def give_back() -> None:
        try:
            await release(state.engine, request_id)
        except Exception:
            log.warning("could not release reservation %s; it will expire", request_id, exc_info=True)

    state.spawn(give_back())
