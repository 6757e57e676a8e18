"""Refusals counted in memory as calls are refused, and added to `refusals_daily` every few
seconds (a refusal flood costs one statement per flush, not one per call). A process that
dies loses at most the last few seconds of these counts: they are operational figures,
never billing."""

import logging
from collections import Counter
from datetime import datetime, timezone

from billing.db.refusals import add_refusals
from proxy.errors import ApiError

log = logging.getLogger(__name__)

FLUSH_SECONDS = 5.0


def reason_of(error: ApiError) -> str:
    """A budget refusal's cause (spent, over_left, held_in_flight; billing.quota_refusals),
    else the kind of rate limit (requests, tokens, concurrency)."""
    if error.refusal:
        return error.refusal
    return error.code if error.code == "insufficient_quota" else (error.type or "rate_limit_exceeded")


class RefusalTally:
    def __init__(self):
        self._counts: Counter = Counter()

    def count(self, tenant_id: int, key_id: int, error: ApiError) -> None:
        self._counts[(datetime.now(timezone.utc).date(), tenant_id, key_id, reason_of(error))] += 1

    async def flush(self, engine) -> None:
        counts, self._counts = self._counts, Counter()
        try:
            await add_refusals(engine, dict(counts))
        except Exception:
            self._counts.update(counts)  # kept for the next flush
            raise
