"""The chore that records the alerts no settlement records: forecasts past a monthly
budget, prepaid balances under the operator's level."""

from datetime import datetime, timezone

from billing.db.alert_kinds import record_forecasts, record_low_balances
from proxy.config.settings import Settings


async def record_alert_kinds(engine, settings: Settings, now: datetime | None = None) -> int:
    recorded = await record_low_balances(engine, settings.alert_low_balance_usd)
    if settings.alert_forecast == "on":
        recorded += await record_forecasts(engine, now or datetime.now(timezone.utc))
    return recorded
