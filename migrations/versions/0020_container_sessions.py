"""Containers of code interpreter and hosted shell whose session a ledger entry paid for.

The upstream bills a container once per 20-minute session. A reply that runs in a container
an earlier reply of the same tenant paid for, within that session, bills nothing for it: a
row here per (tenant, container) holds when its session began, so every replica sees it.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03
"""

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE container_sessions (
            tenant_id bigint NOT NULL REFERENCES tenants(id),
            container_id text NOT NULL CHECK (length(container_id) BETWEEN 1 AND 128),
            session_started_at timestamptz NOT NULL,
            PRIMARY KEY (tenant_id, container_id)
        )
    """)
    op.execute("CREATE INDEX container_sessions_started ON container_sessions (session_started_at)")


def downgrade() -> None:
    op.execute("DROP TABLE container_sessions")
