"""Tenant names compared as people read them: `tenants.name_key`, unique, is the name's
NFKC form with its case folded, its spaces collapsed and invisible or control characters
dropped, so that "Alpha", "alpha " or "al<U+200B>pha" cannot be created beside "alpha".

Existing rows are keyed from their names here. Two existing tenants whose names share a
key stop the upgrade with a message naming them (nothing is merged or renamed): rename
one in SQL, then migrate again.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-26
"""

import unicodedata

from alembic import op
from sqlalchemy import text

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

# billing/operator_text.py's name_key as of this revision, frozen here so that what this
# migration did stays what it did if the module changes later.
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_FILLERS = ((0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F), (0x2800, 0x2800),
            (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFFA0, 0xFFA0), (0xE0100, 0xE01EF))


def _name_key(name: str) -> str:
    visible = "".join(c for c in unicodedata.normalize("NFKC", name)
                      if unicodedata.category(c) not in _DROPPED_CATEGORIES
                      and not any(a <= ord(c) <= b for a, b in _FILLERS))
    return " ".join(unicodedata.normalize("NFKC", visible.casefold()).split())


def upgrade() -> None:
    connection = op.get_bind()
    op.execute("ALTER TABLE tenants ADD COLUMN name_key text")
    rows = connection.execute(text("SELECT id, name FROM tenants ORDER BY id")).all()
    by_key: dict[str, list[tuple[int, str]]] = {}
    for id_, name in rows:
        by_key.setdefault(_name_key(name), []).append((id_, name))
    clashes = [group for group in by_key.values() if len(group) > 1]
    if clashes:
        listed = "; ".join(", ".join(f"id {id_} {name!r}" for id_, name in group) for group in clashes)
        raise RuntimeError(
            "migration 0017 (unique tenant names): these tenants' names differ only in case, width, spacing or "
            f"invisible characters: {listed}. Rename all but one of each group "
            "(UPDATE tenants SET name = 'new-name' WHERE id = N), then migrate again.")
    for key, [(id_, _)] in by_key.items():
        connection.execute(text("UPDATE tenants SET name_key = :key WHERE id = :id"), {"key": key, "id": id_})
    op.execute("ALTER TABLE tenants ALTER COLUMN name_key SET NOT NULL")
    op.execute("ALTER TABLE tenants ADD CONSTRAINT tenants_name_key_key UNIQUE (name_key)")


def downgrade() -> None:
    op.execute("ALTER TABLE tenants DROP COLUMN name_key")
