"""Alert channels: each alert is delivered to every destination on its own.

- `alert_deliveries`: one row per alert, channel (webhook, slack, email) and destination,
  each with its own attempts, backoff and lease, so that a failing Slack hook is retried
  alone and never sends the email or the webhook again. `destination` names where, never a
  secret: 'operator' or 'tenant' for a URL (looked up when sent), an address for email.
- `alerts.planned_at`: when the delivery loop made an alert's delivery rows. Alerts already
  delivered count as planned; those still undelivered are planned by the loop, as new ones.
  `alerts.delivered_at` stays "every delivery done".
- `alerts.forecast_usd`: the projected month-end spend of a forecast alert.
- `alert_destinations`: a tenant's own Slack incoming webhook and email recipients.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-04
"""

from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

_STATEMENTS = (
    "ALTER TABLE alerts ADD COLUMN planned_at timestamptz",
    "ALTER TABLE alerts ADD COLUMN forecast_usd numeric",
    "UPDATE alerts SET planned_at = delivered_at WHERE delivered_at IS NOT NULL",
    "CREATE INDEX ix_alerts_unplanned ON alerts (id) WHERE planned_at IS NULL",
    """CREATE TABLE alert_deliveries (
        id bigserial PRIMARY KEY,
        alert_id bigint NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
        channel text NOT NULL CHECK (channel IN ('webhook', 'slack', 'email')),
        destination text NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        next_attempt_at timestamptz NOT NULL DEFAULT now(),
        delivered_at timestamptz,
        last_error text,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT alert_deliveries_once UNIQUE (alert_id, channel, destination)
    )""",
    "CREATE INDEX ix_alert_deliveries_due ON alert_deliveries (next_attempt_at) WHERE delivered_at IS NULL",
    """CREATE TABLE alert_destinations (
        tenant_id bigint PRIMARY KEY REFERENCES tenants(id),
        slack_url text,
        emails text[] NOT NULL DEFAULT '{}',
        updated_at timestamptz NOT NULL DEFAULT now()
    )""",
)


def upgrade() -> None:
    for statement in _STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE alert_destinations")
    op.execute("DROP TABLE alert_deliveries")
    op.execute("DROP INDEX ix_alerts_unplanned")
    op.execute("ALTER TABLE alerts DROP COLUMN forecast_usd")
    op.execute("ALTER TABLE alerts DROP COLUMN planned_at")
