"""Several upstreams: each entry and each response owner names the upstream that served it,
so a continuation, a read or a delete goes back to the same upstream.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE ledger_entries ADD COLUMN upstream text NOT NULL DEFAULT 'default'")
    op.execute("ALTER TABLE response_owners ADD COLUMN upstream text NOT NULL DEFAULT 'default'")
    op.execute("""
        CREATE OR REPLACE FUNCTION ledger_records_owner() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.endpoint = 'responses' AND NEW.upstream_response_id IS NOT NULL THEN
                INSERT INTO response_owners (response_id, tenant_id, upstream)
                VALUES (NEW.upstream_response_id, NEW.tenant_id, NEW.upstream)
                ON CONFLICT DO NOTHING;
            END IF;
            RETURN NULL;
        END $$
    """)


def downgrade() -> None:
    op.execute("ALTER TABLE response_owners DROP COLUMN upstream")
    op.execute("ALTER TABLE ledger_entries DROP COLUMN upstream")
