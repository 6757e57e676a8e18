"""Dead letters: ledger rows the database refused (a bad value, not an outage), kept with
the error so that one poisoned call cannot stop billing for everyone else, and so that an
operator can see, fix and re-bill it.

The row is kept as JSON *text*: PostgreSQL refuses a NUL in `jsonb` and in `text` alike,
and the escaped JSON text holds any value.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE ledger_dead_letters (
            id bigserial PRIMARY KEY,
            kind text NOT NULL,
            request_id text NOT NULL,
            tenant_id bigint,
            row_json text NOT NULL,
            error text NOT NULL,
            failed_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (kind, request_id))
    """)


def downgrade() -> None:
    op.execute("DROP TABLE ledger_dead_letters")
