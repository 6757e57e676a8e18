"""Background responses (`background: true`) waiting for their true usage: one row per
queued call, written by the ledger writer from the spool (so a crash cannot lose one),
polled by every replica (rows are claimed with SKIP LOCKED), settled when the call's ledger
entry is written.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE background_responses (
            request_id uuid PRIMARY KEY,
            response_id text NOT NULL UNIQUE,
            tenant_id bigint NOT NULL REFERENCES tenants(id),
            upstream text NOT NULL,
            call jsonb NOT NULL,
            first_byte_ms integer,
            queued_at timestamptz NOT NULL DEFAULT now(),
            polls integer NOT NULL DEFAULT 0,
            next_poll_at timestamptz NOT NULL DEFAULT now(),
            claimed_until timestamptz,
            last_status text,
            settled_at timestamptz)
    """)
    op.execute("CREATE INDEX ix_background_responses_due ON background_responses (next_poll_at) "
               "WHERE settled_at IS NULL")


def downgrade() -> None:
    op.execute("DROP TABLE background_responses")
