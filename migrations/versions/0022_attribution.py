"""Who inside a team each entry was for: its end user and its tags.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03
"""

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # On the partitioned table: every month's partition gets the columns. Both may be null: a
    # row spooled by an older version (replayed after an upgrade) names neither.
    op.execute("ALTER TABLE ledger_entries ADD COLUMN end_user text")
    op.execute("ALTER TABLE ledger_entries ADD COLUMN tags jsonb")


def downgrade() -> None:
    op.execute("ALTER TABLE ledger_entries DROP COLUMN tags")
    op.execute("ALTER TABLE ledger_entries DROP COLUMN end_user")
