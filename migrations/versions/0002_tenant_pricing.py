"""Per-tenant pricing: a tenant's price multiplier, tenant-specific price versions, and the
tenant's charge beside the upstream cost on every ledger entry.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tenants", sa.Column("price_multiplier", sa.Numeric, nullable=False, server_default="1"))
    op.create_check_constraint("tenants_price_multiplier", "tenants", "price_multiplier >= 0")
    op.add_column("price_versions", sa.Column("tenant_id", sa.BigInteger, sa.ForeignKey("tenants.id"), nullable=True))
    op.add_column("ledger_entries", sa.Column("price_multiplier", sa.Numeric, nullable=False, server_default="1"))
    op.add_column("ledger_entries", sa.Column("charge_price_version_id", sa.BigInteger,
                                              sa.ForeignKey("price_versions.id"), nullable=True))
    op.add_column("ledger_entries", sa.Column("charge_total", sa.Numeric, nullable=True))
    # Entries written before this revision were charged at cost. The ledger refuses edits,
    # so the backfill lifts that guard for this one statement, inside the migration.
    op.execute("ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_append_only")
    op.execute("UPDATE ledger_entries SET charge_total = cost_total")
    op.execute("ALTER TABLE ledger_entries ENABLE TRIGGER ledger_entries_append_only")
    op.alter_column("ledger_entries", "charge_total", nullable=False)


def downgrade() -> None:
    op.drop_column("ledger_entries", "charge_total")
    op.drop_column("ledger_entries", "charge_price_version_id")
    op.drop_column("ledger_entries", "price_multiplier")
    op.drop_column("price_versions", "tenant_id")
    op.drop_constraint("tenants_price_multiplier", "tenants")
    op.drop_column("tenants", "price_multiplier")
