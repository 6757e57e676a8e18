"""Guessing the admin token: every wrong one is logged, and an address that sends too many
in a minute has its further wrong tokens refused (429) for the rest of that minute.

Only wrong tokens count and only wrong tokens are refused: a request bearing the right
admin or metrics token is never throttled, so nobody can lock the operator out by sending
wrong tokens from the operator's address (or through the same NAT or load balancer).
Guessing is bounded by the tokens' length (at least 24 characters), not by this guard;
the guard keeps a guesser from flooding the logs and from learning anything quickly.
Tokens are compared in constant time by the callers (`proxy.gateway.headers.same_secret`).
"""

import logging
import math
import time
from collections import deque

from aiohttp import web

from proxy.errors import ApiError

log = logging.getLogger(__name__)

MAX_FAILURES = 10
WINDOW_SECONDS = 60.0
MAX_ADDRESSES = 10_000  # memory bound: the oldest addresses are forgotten first


class AdminGuard:
    def __init__(self, max_failures: int = MAX_FAILURES, window: float = WINDOW_SECONDS):
        self.max_failures, self.window = max_failures, window
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, address: str, now: float) -> deque[float]:
        failures = self._failures.get(address) or deque()
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures

    def failed(self, address: str | None, where: str) -> None:
        """A wrong token from `address`: counted and logged, or, once the address has sent
        `max_failures` of them within the window, refused with 429 (not counted again, so
        `Retry-After` is when the address may try again)."""
        now = time.monotonic()
        key = address or ""
        failures = self._recent(key, now)
        if len(failures) >= self.max_failures:
            retry_after = max(1, math.ceil(failures[0] + self.window - now))
            raise ApiError(429, f"Too many wrong admin tokens from this address; try again in {retry_after} s.",
                           type="rate_limit_exceeded", code="rate_limit_exceeded",
                           headers={"Retry-After": str(retry_after)})
        failures.append(now)
        self._failures[key] = failures
        if len(self._failures) > MAX_ADDRESSES:
            del self._failures[next(iter(self._failures))]
        log.warning("wrong admin token from %s on %s (%d in the last %g s)", address, where, len(failures),
                    self.window)


ADMIN_GUARD = web.AppKey("admin_guard", AdminGuard)  # one per app: wrong admin and metrics tokens
