"""The schema as SQLAlchemy Core tables, in three parts: `accounts` (who may call, at what
price), `ledger` (what calls cost, and what is derived from it), `exports` (the outbox).
Alembic revisions in migrations/ create it. Every table is importable from here."""

from billing.db.tables.base import CHANGES_CHANNEL, metadata
from billing.db.tables.accounts import (alert_deliveries, alert_destinations, alerts, api_key_secrets, api_keys,
                                        audit_log, credit_topups, model_aliases, price_tiers, price_versions,
                                        spend_limits, spend_subjects, tenants)
from billing.db.tables.ledger import (background_responses, container_sessions, ledger_adjustments, ledger_daily,
                                      ledger_daily_tags, ledger_daily_users, ledger_dead_letters, ledger_entries,
                                      month_closes, quota_usage, reservations, response_owners)
from billing.db.tables.exports import export_holds, export_outbox, export_sinks

__all__ = [
    "CHANGES_CHANNEL", "metadata",
    "alert_deliveries", "alert_destinations", "alerts", "api_key_secrets", "api_keys", "audit_log", "credit_topups",
    "model_aliases", "price_tiers", "price_versions", "spend_limits", "spend_subjects", "tenants",
    "background_responses", "container_sessions", "ledger_adjustments", "ledger_daily", "ledger_daily_tags",
    "ledger_daily_users", "ledger_dead_letters",
    "ledger_entries",
    "month_closes", "quota_usage", "reservations", "response_owners",
    "export_holds", "export_outbox", "export_sinks",
]
