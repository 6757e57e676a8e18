"""A replica's chores: each runs every few seconds until shutdown, and one that fails is
logged and tried again at its next turn."""

import asyncio
import logging
from typing import Awaitable, Callable

from billing.db.exports import prune_delivered
from billing.db.quota import expire
from billing.exports import SinkConfig
from proxy.durability.alerts import AlertSenders, deliver_due_alerts
from proxy.durability.alert_kinds import record_alert_kinds
from proxy.durability.exports import deliver_exports
from proxy.gateway.admission import release_idle_leases
from proxy.gateway.background import poll_due
from proxy.gateway.limits import SLOT_TTL_SECONDS, SWEEP_SECONDS, give_back_idle, keep_slots
from proxy.gateway.refusals import FLUSH_SECONDS as REFUSALS_FLUSH_SECONDS
from proxy.gateway.state import ProxyState
from proxy.gateway.unpriced import FLUSH_SECONDS as UNPRICED_FLUSH_SECONDS
from proxy.observability.access_log import flush_access_log

log = logging.getLogger(__name__)

ALERT_POLL_SECONDS = 1.0
ALERT_KINDS_SECONDS = 60.0  # forecasts and low balances: a minute late at most
EXPORT_POLL_SECONDS = 1.0
LEASE_SWEEP_SECONDS = 5.0
ACCESS_LOG_FLUSH_SECONDS = 0.2  # access lines are written in batches: at most this late


async def every(seconds: float, chore: Callable[[], Awaitable[object]], name: str) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await chore()
        except Exception:
            log.warning("%s failed; trying again in %ss", name, seconds, exc_info=True)


def start_chores(state: ProxyState, sinks: tuple[SinkConfig, ...]) -> list[asyncio.Task]:
    """Every chore of a replica, started; the caller cancels them at shutdown."""
    engine, http, settings = state.engine, state.http, state.settings
    senders = AlertSenders.from_settings(settings)
    return [
        asyncio.create_task(every(30, lambda: expire(engine), "reservation expiry")),
        asyncio.create_task(every(LEASE_SWEEP_SECONDS, lambda: release_idle_leases(state), "lease release")),
        asyncio.create_task(every(SWEEP_SECONDS, lambda: give_back_idle(state), "rate-limit give-back")),
        asyncio.create_task(every(SLOT_TTL_SECONDS / 3, lambda: keep_slots(state), "concurrency renewal")),
        asyncio.create_task(every(ALERT_POLL_SECONDS, lambda: deliver_due_alerts(engine, http, senders),
                                  "alert delivery")),
        asyncio.create_task(every(ALERT_KINDS_SECONDS, lambda: record_alert_kinds(engine, settings),
                                  "forecast and balance alerts")),
        asyncio.create_task(every(min(1.0, settings.background_poll_seconds), lambda: poll_due(state),
                                  "background response polling")),
        asyncio.create_task(every(EXPORT_POLL_SECONDS, lambda: deliver_exports(engine, http, sinks),
                                  "export delivery")),
        asyncio.create_task(every(3600, lambda: prune_delivered(engine), "export pruning")),
        asyncio.create_task(every(ACCESS_LOG_FLUSH_SECONDS, flush_access_log, "access log flush")),
        asyncio.create_task(every(REFUSALS_FLUSH_SECONDS, lambda: state.refusals.flush(engine), "refusal counts")),
        asyncio.create_task(every(UNPRICED_FLUSH_SECONDS, lambda: state.unpriced.flush(engine), "unpriced counts")),
    ]
