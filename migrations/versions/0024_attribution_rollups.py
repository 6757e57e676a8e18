"""Reports by end user and by tag value, from daily roll-ups.

- `ledger_daily_users`: ledger_daily's key and counters, and the entry's end user (null for
  entries without one: its unique index treats nulls as equal, so they sum in one row).
- `ledger_daily_tags`: the same per tag name and value of the entry; an entry with three
  tags counts in three rows, one without tags (or with a null value) in none. A report by
  a tag takes the entries without it as ledger_daily minus these rows, so every entry
  still counts exactly once.
- `ledger_rolls_up_attribution()`: one statement-level trigger upserting both, set-wise,
  as `ledger_settles_batch` does ledger_daily. Its name, `ledger_entries_roll_up_attribution`,
  makes it fire before `ledger_entries_settle_batch` (triggers fire in name order), so the
  quota counters that admissions wait on are locked last and held the shortest.
  Upserts run in key order, so concurrent writers never deadlock on these rows.
- Both are backfilled from the entries already in the ledger.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-04
"""

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

TOKENS = ("input_tokens", "cached_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")
MONEY = ("cost_uncached_input", "cost_cached_input", "cost_cache_write", "cost_output", "cost_reasoning",
         "cost_total", "charge_total", "cache_savings", "cost_tool_calls", "cost_cache_storage")
COUNTERS = ("requests", *TOKENS, "tool_calls", *MONEY, "estimated_requests", "estimated_charge", "late_requests",
            "late_charge")
BASE_KEY = ("day", "tenant_id", "key_id", "model", "service_tier")
USER_KEY = (*BASE_KEY, "end_user")
TAG_KEY = ("tag_name", "day", "tenant_id", "key_id", "model", "service_tier", "tag_value")

# As ledger_daily books them (0015): the day it was booked late, else its UTC day of start.
_BASE_VALUES = {"day": "coalesce(n.booked_on, (n.started_at AT TIME ZONE 'UTC')::date)", "tenant_id": "n.tenant_id",
                "key_id": "n.key_id", "model": "n.model", "service_tier": "coalesce(n.service_tier, 'default')"}
_SUMS = ", ".join((
    "count(*)", *(f"sum(n.{c})" for c in TOKENS),
    "sum(CASE WHEN n.tool_calls = '{}' THEN 0 "
    "ELSE (SELECT coalesce(sum(value::bigint), 0) FROM jsonb_each_text(n.tool_calls)) END)",
    *(f"sum(n.{c})" for c in MONEY),
    "count(*) FILTER (WHERE n.estimated)", "coalesce(sum(n.charge_total) FILTER (WHERE n.estimated), 0)",
    "count(*) FILTER (WHERE n.booked_on IS NOT NULL)",
    "coalesce(sum(n.charge_total) FILTER (WHERE n.booked_on IS NOT NULL), 0)"))


def _upsert(table: str, key: tuple[str, ...], values: dict[str, str], source: str, conflict: str) -> str:
    positions = ", ".join(str(i + 1) for i in range(len(key)))
    return f"""
        INSERT INTO {table} AS d ({", ".join(key)}, {", ".join(COUNTERS)})
        SELECT {", ".join(values[c] for c in key)}, {_SUMS}
        FROM {source} GROUP BY {positions} ORDER BY {positions}
        ON CONFLICT ({conflict}) DO UPDATE SET {", ".join(f"{c} = d.{c} + EXCLUDED.{c}" for c in COUNTERS)};
    """


def roll_ups(rows: str) -> list[str]:
    """Both upserts over the entries in `rows` (the trigger's `new_rows`, or the ledger to
    backfill). Tags are read only from a JSON object, whatever else the column holds."""
    users = _upsert("ledger_daily_users", USER_KEY, {**_BASE_VALUES, "end_user": "n.end_user"}, f"{rows} n",
                    ", ".join(USER_KEY))
    tags = _upsert("ledger_daily_tags", TAG_KEY, {**_BASE_VALUES, "tag_name": "t.key", "tag_value": "t.value"},
                   f"{rows} n CROSS JOIN LATERAL jsonb_each_text("
                   "CASE WHEN jsonb_typeof(n.tags) = 'object' THEN n.tags END) t WHERE t.value IS NOT NULL",
                   ", ".join(TAG_KEY))
    return [users, tags]


def _table(name: str, key_columns: str) -> str:
    counters = ", ".join(f"{c} bigint NOT NULL DEFAULT 0" for c in (*COUNTERS[:7], "estimated_requests",
                                                                      "late_requests")) + ", " + \
        ", ".join(f"{c} numeric NOT NULL DEFAULT 0" for c in (*MONEY, "estimated_charge", "late_charge"))
    # fillfactor 50 as ledger_daily's (0015): rows are updated in place by every batch, HOT.
    return f"CREATE TABLE {name} ({key_columns}, {counters}) WITH (fillfactor = 50)"


def upgrade() -> None:
    op.execute(_table("ledger_daily_users", "day date NOT NULL, tenant_id bigint NOT NULL, key_id bigint NOT NULL, "
                                            "model text NOT NULL, service_tier text NOT NULL, end_user text"))
    op.execute(f"CREATE UNIQUE INDEX ledger_daily_users_key ON ledger_daily_users ({', '.join(USER_KEY)}) "
               "NULLS NOT DISTINCT")
    op.execute("CREATE INDEX ix_ledger_daily_users_tenant_day ON ledger_daily_users (tenant_id, day)")
    op.execute(_table("ledger_daily_tags", "tag_name text NOT NULL, day date NOT NULL, tenant_id bigint NOT NULL, "
                                           "key_id bigint NOT NULL, model text NOT NULL, service_tier text NOT NULL, "
                                           f"tag_value text NOT NULL, PRIMARY KEY ({', '.join(TAG_KEY)})"))
    op.execute("CREATE INDEX ix_ledger_daily_tags_tenant_day ON ledger_daily_tags (tenant_id, day)")
    for statement in roll_ups("ledger_entries"):
        op.execute(statement)
    op.execute(f"""
        CREATE FUNCTION ledger_rolls_up_attribution() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            {"".join(roll_ups("new_rows"))}
            RETURN NULL;
        END $$
    """)
    op.execute("CREATE TRIGGER ledger_entries_roll_up_attribution AFTER INSERT ON ledger_entries "
               "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ledger_rolls_up_attribution()")


def downgrade() -> None:
    op.execute("DROP TRIGGER ledger_entries_roll_up_attribution ON ledger_entries")
    op.execute("DROP FUNCTION ledger_rolls_up_attribution()")
    op.execute("DROP TABLE ledger_daily_tags")
    op.execute("DROP TABLE ledger_daily_users")
