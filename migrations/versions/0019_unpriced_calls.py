"""Calls refused because their model has no price (400 `model_not_priced`), counted per
day, tenant, key and model, so the dashboard shows which models clients ask for before an
operator has priced them. Counted in memory by each process and added here every few
seconds; the model is the client's name, bounded (billing.model_labels): at most 128
readable characters, the rest counted as `other`.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-10
"""

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE unpriced_calls_daily (
            day date NOT NULL,
            tenant_id bigint NOT NULL REFERENCES tenants(id),
            key_id bigint NOT NULL,
            model text NOT NULL CHECK (length(model) BETWEEN 1 AND 128),
            calls bigint NOT NULL,
            first_at timestamptz NOT NULL,
            last_at timestamptz NOT NULL,
            PRIMARY KEY (day, tenant_id, key_id, model)
        )
    """)


def downgrade() -> None:
    op.execute("DROP TABLE unpriced_calls_daily")
