"""Key lifecycle and audit: secrets in their own table (rotation keeps the key id, the old
secret lives on for a grace period), model allow-lists, per-key budgets, the audit log.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_key_secrets",
        sa.Column("secret_hash", sa.Text, primary_key=True),
        sa.Column("key_id", sa.BigInteger, sa.ForeignKey("api_keys.id"), nullable=False),
        sa.Column("display_prefix", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),  # set when rotated away
        sa.Column("revision", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.create_index("ix_api_key_secrets_key_id", "api_key_secrets", ["key_id"])
    op.create_index("ix_api_key_secrets_revision", "api_key_secrets", ["revision"])
    op.execute(
        "INSERT INTO api_key_secrets (secret_hash, key_id, display_prefix, created_at) "
        "SELECT secret_hash, id, display_prefix, created_at FROM api_keys"
    )
    op.execute(
        "CREATE TRIGGER api_key_secrets_revision BEFORE INSERT OR UPDATE ON api_key_secrets "
        "FOR EACH ROW EXECUTE FUNCTION bump_revision()"
    )
    op.drop_column("api_keys", "secret_hash")
    op.add_column("api_keys", sa.Column("allowed_models", postgresql.ARRAY(sa.Text), nullable=True))
    op.add_column("api_keys", sa.Column("monthly_budget_usd", sa.Numeric, nullable=True))
    op.create_index("ix_ledger_entries_key_started", "ledger_entries", ["key_id", "started_at"])

    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("details", postgresql.JSONB, nullable=False, server_default="{}"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_index("ix_ledger_entries_key_started", "ledger_entries")
    op.drop_column("api_keys", "monthly_budget_usd")
    op.drop_column("api_keys", "allowed_models")
    op.add_column("api_keys", sa.Column("secret_hash", sa.Text, nullable=True))
    op.execute(
        "UPDATE api_keys k SET secret_hash = s.secret_hash FROM api_key_secrets s "
        "WHERE s.key_id = k.id AND s.valid_until IS NULL"
    )
    op.drop_table("api_key_secrets")
