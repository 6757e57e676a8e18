"""Reports at scale: cache savings on every entry, daily rollups kept by a trigger in the
ledger's own transaction, and the ledger partitioned by month.

The ledger's key becomes (request_id, started_at): PostgreSQL requires the partition key in
every unique index. An entry is immutable and its replay carries the same started_at, so
inserting on conflict of this key still never bills twice.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TOKENS = ("input_tokens", "cached_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")
MONEY = ("cost_uncached_input", "cost_cached_input", "cost_cache_write", "cost_output", "cost_reasoning",
         "cost_total", "charge_total", "cache_savings")


def upgrade() -> None:
    # 1. Cache savings: what the cached tokens would have cost at the input price, minus what
    #    they cost, at the tier the entry was priced in.
    op.execute("ALTER TABLE ledger_entries ADD COLUMN cache_savings numeric NOT NULL DEFAULT 0")
    op.execute("ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_append_only")
    op.execute("""
        UPDATE ledger_entries e
        SET cache_savings = e.cached_tokens * (t.input - coalesce(t.cached, t.input * 0.1)) / 1000000
        FROM price_tiers t
        WHERE t.version_id = e.price_version_id AND t.position = (
            SELECT coalesce(min(position) FILTER (WHERE up_to_input_tokens IS NULL
                                                  OR e.input_tokens <= up_to_input_tokens), max(position))
            FROM price_tiers WHERE version_id = e.price_version_id)
    """)
    op.execute("ALTER TABLE ledger_entries ENABLE TRIGGER ledger_entries_append_only")

    # 2. The ledger, partitioned by month of started_at. Keys, indexes and triggers are
    #    created after the old table is gone, as their names are taken until then.
    op.execute("ALTER TABLE ledger_entries RENAME TO ledger_entries_unpartitioned")
    op.execute("""
        CREATE TABLE ledger_entries (LIKE ledger_entries_unpartitioned INCLUDING DEFAULTS)
        PARTITION BY RANGE (started_at)
    """)
    op.execute("""
        CREATE FUNCTION ledger_ensure_partition(p_at timestamptz) RETURNS text LANGUAGE plpgsql AS $$
        DECLARE
            first timestamptz := date_trunc('month', p_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
            name text := 'ledger_entries_' || to_char(first AT TIME ZONE 'UTC', 'YYYY_MM');
        BEGIN
            IF to_regclass(name) IS NULL THEN
                EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF ledger_entries '
                               'FOR VALUES FROM (%L) TO (%L)', name, first, first + interval '1 month');
            END IF;
            RETURN name;
        END $$
    """)
    op.execute("""
        SELECT ledger_ensure_partition(m) FROM (
            SELECT DISTINCT started_at AS m FROM ledger_entries_unpartitioned
            UNION SELECT now() UNION SELECT now() + interval '1 month') months
    """)
    op.execute("INSERT INTO ledger_entries SELECT * FROM ledger_entries_unpartitioned")
    op.execute("DROP TABLE ledger_entries_unpartitioned")
    op.execute("ALTER TABLE ledger_entries ADD PRIMARY KEY (request_id, started_at)")
    for column, table in (("tenant_id", "tenants"), ("key_id", "api_keys"), ("price_version_id", "price_versions"),
                          ("charge_price_version_id", "price_versions")):
        op.execute(f"ALTER TABLE ledger_entries ADD FOREIGN KEY ({column}) REFERENCES {table}(id)")
    op.execute("CREATE INDEX ix_ledger_entries_started_at ON ledger_entries (started_at)")
    op.execute("CREATE INDEX ix_ledger_entries_tenant_started ON ledger_entries (tenant_id, started_at)")
    op.execute("CREATE INDEX ix_ledger_entries_key_started ON ledger_entries (key_id, started_at)")
    op.execute("CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries "
               "FOR EACH ROW EXECUTE FUNCTION ledger_is_append_only()")

    # 3. Daily rollups per tenant, key and model, kept in the ledger insert's transaction.
    columns = ", ".join(f"{c} bigint NOT NULL DEFAULT 0" for c in TOKENS) + ", " + \
        ", ".join(f"{c} numeric NOT NULL DEFAULT 0" for c in MONEY)
    op.execute(f"""
        CREATE TABLE ledger_daily (
            day date NOT NULL, tenant_id bigint NOT NULL, key_id bigint NOT NULL, model text NOT NULL,
            requests bigint NOT NULL DEFAULT 0, {columns},
            PRIMARY KEY (day, tenant_id, key_id, model))
    """)
    op.execute("CREATE INDEX ix_ledger_daily_tenant_day ON ledger_daily (tenant_id, day)")
    sums = ", ".join(f"sum({c})" for c in TOKENS + MONEY)
    names = ", ".join(TOKENS + MONEY)
    op.execute(f"""
        INSERT INTO ledger_daily (day, tenant_id, key_id, model, requests, {names})
        SELECT (started_at AT TIME ZONE 'UTC')::date, tenant_id, key_id, model, count(*), {sums}
        FROM ledger_entries GROUP BY 1, 2, 3, 4
    """)
    increments = ", ".join(f"{c} = d.{c} + EXCLUDED.{c}" for c in ("requests",) + TOKENS + MONEY)
    new_values = ", ".join(f"NEW.{c}" for c in TOKENS + MONEY)
    op.execute(f"""
        CREATE FUNCTION ledger_rolls_up() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO ledger_daily AS d (day, tenant_id, key_id, model, requests, {names})
            VALUES ((NEW.started_at AT TIME ZONE 'UTC')::date, NEW.tenant_id, NEW.key_id, NEW.model, 1, {new_values})
            ON CONFLICT (day, tenant_id, key_id, model) DO UPDATE SET {increments};
            RETURN NULL;
        END $$
    """)
    op.execute("CREATE TRIGGER ledger_entries_roll_up AFTER INSERT ON ledger_entries "
               "FOR EACH ROW EXECUTE FUNCTION ledger_rolls_up()")
    op.execute("CREATE TRIGGER ledger_entries_settle_quota AFTER INSERT ON ledger_entries "
               "FOR EACH ROW EXECUTE FUNCTION ledger_settles_quota()")


def downgrade() -> None:
    raise NotImplementedError("0005 partitions the ledger; restore from a backup to go back")
