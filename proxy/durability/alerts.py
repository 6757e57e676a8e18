"""Posting threshold alerts to the operator's webhook, with retries."""

import asyncio
import logging

import aiohttp
import orjson

from billing.db.alerts import Alert, claim_due, mark_delivered, mark_failed
from billing.report import money

log = logging.getLogger(__name__)


def alert_payload(alert: Alert) -> dict:
    """The webhook body: tenant, limit, threshold, spent, month."""
    kind = "monthly_budget_usd" if alert.limit_kind == "budget" else "monthly_token_quota"
    is_money = alert.limit_kind == "budget"
    return {
        "tenant": alert.tenant,
        "scope": alert.scope,
        "key_id": alert.scope_id if alert.scope == "key" else None,
        "limit": kind,
        "limit_value": money(alert.limit_value) if is_money else str(int(alert.limit_value)),
        "threshold": alert.threshold,
        "spent": money(alert.spent) if is_money else str(int(alert.spent)),
        "month": alert.period_start.isoformat(),
    }


async def deliver_due_alerts(engine, http: aiohttp.ClientSession, url: str | None) -> int:
    """Send every alert that is due; returns how many were delivered. Without a URL, alerts
    stay recorded (`billing-proxy alerts`) and undelivered."""
    if not url:
        return 0
    delivered = 0
    for alert in await claim_due(engine):
        try:
            async with http.post(url, data=orjson.dumps(alert_payload(alert)),
                                 headers={"Content-Type": "application/json"},
                                 timeout=aiohttp.ClientTimeout(total=10)) as reply:
                if reply.status >= 300:
                    raise RuntimeError(f"webhook answered {reply.status}")
        except (aiohttp.ClientError, asyncio.TimeoutError, RuntimeError) as exc:
            log.warning("alert %d not delivered: %s", alert.id, exc)
            await mark_failed(engine, alert.id, str(exc) or type(exc).__name__)
            continue
        await mark_delivered(engine, alert.id)
        delivered += 1
    return delivered
