"""Guessing the admin token: every wrong one is logged, and an address that sends too many
in a minute is refused (429) for the rest of that minute, right token or not, so that
guesses cannot be made faster than `MAX_FAILURES` a minute per address."""

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

    def check(self, address: str | None) -> None:
        """Refuse an address that failed too often lately (before its token is looked at)."""
        now = time.monotonic()
        failures = self._recent(address or "", now)
        if len(failures) >= self.max_failures:
            retry_after = max(1, math.ceil(failures[0] + self.window - now))
            raise ApiError(429, f"Too many wrong admin tokens from this address; try again in {retry_after} s.",
                           type="rate_limit_exceeded", code="rate_limit_exceeded",
                           headers={"Retry-After": str(retry_after)})

    def failed(self, address: str | None, where: str) -> None:
        now = time.monotonic()
        failures = self._recent(address or "", now)
        failures.append(now)
        self._failures[address or ""] = failures
        if len(self._failures) > MAX_ADDRESSES:
            del self._failures[next(iter(self._failures))]
        log.warning("wrong admin token from %s on %s (%d in the last %g s)", address, where, len(failures),
                    self.window)


ADMIN_GUARD = web.AppKey("admin_guard", AdminGuard)  # one per app: wrong admin and metrics tokens
