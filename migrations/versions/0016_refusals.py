"""Refusals counted per day, tenant, key and reason, for the dashboard: how often a limit
said no (429). Counted in memory by each process and added here every few seconds.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-25
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE refusals_daily (
            day date NOT NULL,
            tenant_id bigint NOT NULL REFERENCES tenants(id),
            key_id bigint NOT NULL,
            reason text NOT NULL,       -- insufficient_quota | requests | tokens | budget_in_flight
            refused bigint NOT NULL,
            PRIMARY KEY (day, tenant_id, key_id, reason)
        )
    """)


def downgrade() -> None:
    op.execute("DROP TABLE refusals_daily")
