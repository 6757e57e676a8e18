"""The context a response leaves for its continuation: its input plus output tokens, kept
with its owner, so that a call continuing it (`previous_response_id`) is estimated with
that context in its worst case. Set by the ledger entry of the response (a background
response's owner is registered first, its context when it settles).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-25
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE response_owners ADD COLUMN context_tokens bigint")
    op.execute("""
        UPDATE response_owners o SET context_tokens = e.tokens
        FROM (SELECT upstream_response_id, max(input_tokens + output_tokens) AS tokens FROM ledger_entries
              WHERE endpoint = 'responses' AND upstream_response_id IS NOT NULL GROUP BY upstream_response_id) e
        WHERE o.response_id = e.upstream_response_id
    """)
    op.execute("""
        CREATE OR REPLACE FUNCTION ledger_records_owner() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.endpoint = 'responses' AND NEW.upstream_response_id IS NOT NULL AND NEW.status <> 'credit' THEN
                INSERT INTO response_owners (response_id, tenant_id, upstream, context_tokens)
                VALUES (NEW.upstream_response_id, NEW.tenant_id, NEW.upstream, NEW.input_tokens + NEW.output_tokens)
                ON CONFLICT (response_id) DO UPDATE SET context_tokens = EXCLUDED.context_tokens
                WHERE response_owners.context_tokens IS NULL;
            END IF;
            RETURN NULL;
        END $$
    """)


def downgrade() -> None:
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
    op.execute("ALTER TABLE response_owners DROP COLUMN context_tokens")
