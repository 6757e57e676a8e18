"""What each container was made as, and which call's claim began its session.

A container a later call names by its id is billed at the memory it was made with (a reply
that names it does not show it), and a tenant may name only containers its own calls made.
A session's claim remembers the call that made it, so that the same call claiming again
(a retry after a crash) finds its own session and still bills it.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03
"""

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE container_sessions ADD COLUMN unit text NOT NULL DEFAULT 'container.1g' "
               "CHECK (length(unit) BETWEEN 1 AND 512)")
    op.execute("ALTER TABLE container_sessions ADD COLUMN claimed_by uuid")


def downgrade() -> None:
    op.execute("ALTER TABLE container_sessions DROP COLUMN claimed_by")
    op.execute("ALTER TABLE container_sessions DROP COLUMN unit")
