"""Which tenant created each response id, so `previous_response_id` and GET/DELETE of a
response work only for the tenant that made it. Recorded by a ledger trigger, in the
entry's own transaction; earlier entries are backfilled.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE response_owners (
            response_id text PRIMARY KEY,
            tenant_id bigint NOT NULL REFERENCES tenants(id),
            created_at timestamptz NOT NULL DEFAULT now())
    """)
    op.execute("""
        INSERT INTO response_owners (response_id, tenant_id)
        SELECT DISTINCT ON (upstream_response_id) upstream_response_id, tenant_id FROM ledger_entries
        WHERE endpoint = 'responses' AND upstream_response_id IS NOT NULL
        ORDER BY upstream_response_id, started_at
        ON CONFLICT DO NOTHING
    """)
    op.execute("""
        CREATE FUNCTION ledger_records_owner() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.endpoint = 'responses' AND NEW.upstream_response_id IS NOT NULL THEN
                INSERT INTO response_owners (response_id, tenant_id) VALUES (NEW.upstream_response_id, NEW.tenant_id)
                ON CONFLICT DO NOTHING;
            END IF;
            RETURN NULL;
        END $$
    """)
    op.execute("CREATE TRIGGER ledger_entries_record_owner AFTER INSERT ON ledger_entries "
               "FOR EACH ROW EXECUTE FUNCTION ledger_records_owner()")


def downgrade() -> None:
    op.execute("DROP TRIGGER ledger_entries_record_owner ON ledger_entries")
    op.execute("DROP FUNCTION ledger_records_owner()")
    op.execute("DROP TABLE response_owners")
