"""Tenants, API keys, prices and the ledger.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

REVISIONED = ("tenants", "api_keys", "price_versions", "model_aliases")


def _revision_column() -> sa.Column:
    return sa.Column("revision", sa.BigInteger, nullable=False, server_default="0")


def _created_at() -> sa.Column:
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("name", sa.Text, nullable=False, unique=True),
        sa.Column("status", sa.Text, nullable=False, server_default="active"),
        sa.Column("monthly_budget_usd", sa.Numeric, nullable=True),
        sa.Column("monthly_token_quota", sa.BigInteger, nullable=True),
        _created_at(),
        _revision_column(),
        sa.CheckConstraint("status IN ('active', 'suspended')", name="tenants_status"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("tenant_id", sa.BigInteger, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("secret_hash", sa.Text, nullable=False, unique=True),
        sa.Column("display_prefix", sa.Text, nullable=False),
        sa.Column("label", sa.Text, nullable=True),
        sa.Column("status", sa.Text, nullable=False, server_default="active"),
        _created_at(),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        _revision_column(),
        sa.CheckConstraint("status IN ('active', 'revoked')", name="api_keys_status"),
    )
    op.create_index("ix_api_keys_tenant_id", "api_keys", ["tenant_id"])
    op.create_table(
        "price_versions",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("effective_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("fingerprint", sa.Text, nullable=True, unique=True),
        _created_at(),
        _revision_column(),
    )
    op.create_index("ix_price_versions_model", "price_versions", ["model", "effective_from"])
    op.create_table(
        "price_tiers",
        sa.Column("version_id", sa.BigInteger, sa.ForeignKey("price_versions.id"), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("up_to_input_tokens", sa.BigInteger, nullable=True),
        sa.Column("input", sa.Numeric, nullable=False),
        sa.Column("output", sa.Numeric, nullable=False),
        sa.Column("cached", sa.Numeric, nullable=True),
        sa.Column("cache_write", sa.Numeric, nullable=True),
        sa.Column("reasoning", sa.Numeric, nullable=True),
    )
    op.create_table(
        "model_aliases",
        sa.Column("alias", sa.Text, primary_key=True),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        _revision_column(),
    )
    for table in REVISIONED:
        op.create_index(f"ix_{table}_revision", table, ["revision"])

    op.create_table(
        "ledger_entries",
        sa.Column("request_id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("tenant_id", sa.BigInteger, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("key_id", sa.BigInteger, sa.ForeignKey("api_keys.id"), nullable=False),
        sa.Column("endpoint", sa.Text, nullable=False),
        sa.Column("requested_model", sa.Text, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("price_version_id", sa.BigInteger, sa.ForeignKey("price_versions.id"), nullable=True),
        sa.Column("upstream_response_id", sa.Text, nullable=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("stream", sa.Boolean, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_byte_ms", sa.Integer, nullable=True),
        *[
            sa.Column(name, sa.BigInteger, nullable=False)
            for name in ("input_tokens", "cached_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")
        ],
        *[
            sa.Column(name, sa.Numeric, nullable=False)
            for name in (
                "cost_uncached_input", "cost_cached_input", "cost_cache_write",
                "cost_output", "cost_reasoning", "cost_total",
            )
        ],
        sa.Column("usage_flags", postgresql.ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("raw_usage", postgresql.JSONB, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_ledger_entries_started_at", "ledger_entries", ["started_at"])
    op.create_index("ix_ledger_entries_tenant_started", "ledger_entries", ["tenant_id", "started_at"])

    # One sequence numbers every change of keys, tenants and prices; a NOTIFY wakes the
    # replicas' caches at once, and the revision lets them catch up on what they missed.
    op.execute("CREATE SEQUENCE change_revision_seq")
    op.execute(
        """
        CREATE FUNCTION bump_revision() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.revision := nextval('change_revision_seq');
            PERFORM pg_notify('billing_proxy_changes', TG_TABLE_NAME);
            RETURN NEW;
        END $$
        """
    )
    for table in REVISIONED:
        op.execute(
            f"CREATE TRIGGER {table}_revision BEFORE INSERT OR UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION bump_revision()"
        )

    # The ledger is append-only: corrections are new entries, never edits.
    op.execute(
        """
        CREATE FUNCTION ledger_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'ledger_entries is append-only (% refused)', TG_OP;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries "
        "FOR EACH ROW EXECUTE FUNCTION ledger_is_append_only()"
    )


def downgrade() -> None:
    op.drop_table("ledger_entries")
    op.execute("DROP FUNCTION ledger_is_append_only()")
    for table in ("model_aliases", "price_tiers", "price_versions", "api_keys", "tenants"):
        op.drop_table(table)
    op.execute("DROP FUNCTION bump_revision()")
    op.execute("DROP SEQUENCE change_revision_seq")
