"""Quotas: per-period counters, reservations, settlement by the ledger, threshold alerts.

- `quota_admit(...)` is the whole admission in one statement: it expires the tenant's
  stale reservations, locks the tenant's and the key's counters (always in that order),
  checks spent + reserved + this request's worst case against every limit, and reserves.
- An AFTER INSERT trigger on the ledger settles: it removes the entry's reservation and
  moves its actual charge and tokens into `spent`, in the same transaction as the entry,
  so the ledger and the counters cannot disagree. A replayed entry (ON CONFLICT DO
  NOTHING) inserts no row and so settles nothing twice.
- Crossing an alert threshold of a limit records one alert per threshold and period.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tenants", sa.Column("time_zone", sa.Text, nullable=False, server_default="UTC"))
    op.add_column("tenants", sa.Column("alert_thresholds", postgresql.ARRAY(sa.Integer), nullable=False,
                                       server_default="{50,80,100}"))
    op.add_column("ledger_entries", sa.Column("quota_period", sa.DateTime(timezone=True), nullable=True))
    op.add_column("price_versions", sa.Column("max_output_tokens", sa.BigInteger, nullable=True))
    op.create_table(
        "quota_usage",
        sa.Column("scope", sa.Text, primary_key=True),  # 'tenant' | 'key'
        sa.Column("scope_id", sa.BigInteger, primary_key=True),
        sa.Column("period_start", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("spent_usd", sa.Numeric, nullable=False, server_default="0"),
        sa.Column("spent_tokens", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("reserved_usd", sa.Numeric, nullable=False, server_default="0"),
        sa.Column("reserved_tokens", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.create_table(
        "reservations",
        sa.Column("request_id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("tenant_id", sa.BigInteger, nullable=False),
        sa.Column("key_id", sa.BigInteger, nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("amount_usd", sa.Numeric, nullable=False),
        sa.Column("tokens", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_reservations_tenant_expires", "reservations", ["tenant_id", "expires_at"])
    op.create_index("ix_reservations_expires", "reservations", ["expires_at"])
    op.create_table(
        "alerts",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("tenant_id", sa.BigInteger, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("scope_id", sa.BigInteger, nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("limit_kind", sa.Text, nullable=False),  # 'budget' | 'tokens'
        sa.Column("threshold", sa.Integer, nullable=False),  # percent
        sa.Column("limit_value", sa.Numeric, nullable=False),
        sa.Column("spent", sa.Numeric, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.UniqueConstraint("scope", "scope_id", "period_start", "limit_kind", "threshold", name="alerts_once"),
    )
    op.create_index("ix_alerts_pending", "alerts", ["next_attempt_at"], postgresql_where=sa.text("delivered_at IS NULL"))

    op.execute("""
    CREATE FUNCTION quota_expire(p_tenant_id bigint DEFAULT NULL) RETURNS integer LANGUAGE plpgsql AS $$
    DECLARE expired integer;
    BEGIN
        WITH gone AS (
            DELETE FROM reservations
            WHERE expires_at < now() AND (p_tenant_id IS NULL OR tenant_id = p_tenant_id)
            RETURNING tenant_id, key_id, period_start, amount_usd, tokens
        ), per_scope AS (
            SELECT 'tenant' AS scope, tenant_id AS scope_id, period_start, sum(amount_usd) AS usd, sum(tokens) AS tok
            FROM gone GROUP BY tenant_id, period_start
            UNION ALL
            SELECT 'key', key_id, period_start, sum(amount_usd), sum(tokens) FROM gone GROUP BY key_id, period_start
        ), released AS (
            UPDATE quota_usage q SET reserved_usd = q.reserved_usd - s.usd, reserved_tokens = q.reserved_tokens - s.tok
            FROM per_scope s
            WHERE q.scope = s.scope AND q.scope_id = s.scope_id AND q.period_start = s.period_start
            RETURNING 1
        )
        SELECT count(*) INTO expired FROM gone;
        RETURN expired;
    END $$
    """)

    op.execute("""
    CREATE FUNCTION quota_admit(p_request_id uuid, p_tenant_id bigint, p_key_id bigint, p_period timestamptz,
                                p_usd numeric, p_tokens bigint, p_expires_at timestamptz)
    RETURNS TABLE (admitted boolean, refused text, budget_remaining numeric, tokens_remaining bigint,
                   key_budget_remaining numeric)
    LANGUAGE plpgsql AS $$
    DECLARE
        budget numeric; quota bigint; key_budget numeric;
        t quota_usage%ROWTYPE; k quota_usage%ROWTYPE;
    BEGIN
        PERFORM quota_expire(p_tenant_id);
        SELECT monthly_budget_usd, monthly_token_quota INTO budget, quota FROM tenants WHERE id = p_tenant_id;
        SELECT monthly_budget_usd INTO key_budget FROM api_keys WHERE id = p_key_id;
        INSERT INTO quota_usage (scope, scope_id, period_start) VALUES ('tenant', p_tenant_id, p_period),
                                                                       ('key', p_key_id, p_period)
            ON CONFLICT DO NOTHING;
        -- Lock order: the tenant's row, then the key's (the ledger trigger keeps the same order).
        SELECT * INTO t FROM quota_usage WHERE scope = 'tenant' AND scope_id = p_tenant_id AND period_start = p_period
            FOR UPDATE;
        SELECT * INTO k FROM quota_usage WHERE scope = 'key' AND scope_id = p_key_id AND period_start = p_period
            FOR UPDATE;
        admitted := true;
        refused := CASE
            WHEN budget IS NOT NULL AND t.spent_usd + t.reserved_usd + p_usd > budget THEN 'tenant_budget'
            WHEN quota IS NOT NULL AND t.spent_tokens + t.reserved_tokens + p_tokens > quota THEN 'tenant_tokens'
            WHEN key_budget IS NOT NULL AND k.spent_usd + k.reserved_usd + p_usd > key_budget THEN 'key_budget'
        END;
        IF refused IS NOT NULL THEN
            admitted := false;
        ELSE
            UPDATE quota_usage SET reserved_usd = reserved_usd + p_usd, reserved_tokens = reserved_tokens + p_tokens
                WHERE scope = 'tenant' AND scope_id = p_tenant_id AND period_start = p_period
                RETURNING * INTO t;
            UPDATE quota_usage SET reserved_usd = reserved_usd + p_usd, reserved_tokens = reserved_tokens + p_tokens
                WHERE scope = 'key' AND scope_id = p_key_id AND period_start = p_period
                RETURNING * INTO k;
            INSERT INTO reservations (request_id, tenant_id, key_id, period_start, amount_usd, tokens, expires_at)
                VALUES (p_request_id, p_tenant_id, p_key_id, p_period, p_usd, p_tokens, p_expires_at);
        END IF;
        budget_remaining := budget - t.spent_usd - t.reserved_usd;
        tokens_remaining := quota - t.spent_tokens - t.reserved_tokens;
        key_budget_remaining := key_budget - k.spent_usd - k.reserved_usd;
        RETURN NEXT;
    END $$
    """)

    op.execute("""
    CREATE FUNCTION quota_release(p_request_id uuid) RETURNS boolean LANGUAGE plpgsql AS $$
    DECLARE r reservations%ROWTYPE;
    BEGIN
        DELETE FROM reservations WHERE request_id = p_request_id RETURNING * INTO r;
        IF NOT FOUND THEN RETURN false; END IF;
        UPDATE quota_usage SET reserved_usd = reserved_usd - r.amount_usd, reserved_tokens = reserved_tokens - r.tokens
            WHERE scope = 'tenant' AND scope_id = r.tenant_id AND period_start = r.period_start;
        UPDATE quota_usage SET reserved_usd = reserved_usd - r.amount_usd, reserved_tokens = reserved_tokens - r.tokens
            WHERE scope = 'key' AND scope_id = r.key_id AND period_start = r.period_start;
        RETURN true;
    END $$
    """)

    op.execute("""
    CREATE FUNCTION quota_record_alerts(p_tenant_id bigint, p_scope text, p_scope_id bigint, p_period timestamptz,
                                        p_kind text, p_limit numeric, p_spent numeric, p_thresholds integer[])
    RETURNS void LANGUAGE sql AS $$
        INSERT INTO alerts (tenant_id, scope, scope_id, period_start, limit_kind, threshold, limit_value, spent)
        SELECT p_tenant_id, p_scope, p_scope_id, p_period, p_kind, th, p_limit, p_spent
        FROM unnest(p_thresholds) AS th
        WHERE p_limit IS NOT NULL AND p_spent * 100 >= p_limit * th
        ON CONFLICT ON CONSTRAINT alerts_once DO NOTHING
    $$
    """)

    op.execute("""
    CREATE FUNCTION ledger_settles_quota() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        r reservations%ROWTYPE; period timestamptz; used bigint;
        tenant tenants%ROWTYPE; key_budget numeric; t quota_usage%ROWTYPE; k quota_usage%ROWTYPE;
    BEGIN
        DELETE FROM reservations WHERE request_id = NEW.request_id RETURNING * INTO r;
        period := coalesce(r.period_start, NEW.quota_period,
                           date_trunc('month', NEW.started_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC');
        used := NEW.input_tokens + NEW.output_tokens;
        INSERT INTO quota_usage AS q (scope, scope_id, period_start, spent_usd, spent_tokens)
            VALUES ('tenant', NEW.tenant_id, period, NEW.charge_total, used)
            ON CONFLICT (scope, scope_id, period_start) DO UPDATE SET
                spent_usd = q.spent_usd + EXCLUDED.spent_usd, spent_tokens = q.spent_tokens + EXCLUDED.spent_tokens,
                reserved_usd = q.reserved_usd - coalesce(r.amount_usd, 0),
                reserved_tokens = q.reserved_tokens - coalesce(r.tokens, 0)
            RETURNING * INTO t;
        INSERT INTO quota_usage AS q (scope, scope_id, period_start, spent_usd, spent_tokens)
            VALUES ('key', NEW.key_id, period, NEW.charge_total, used)
            ON CONFLICT (scope, scope_id, period_start) DO UPDATE SET
                spent_usd = q.spent_usd + EXCLUDED.spent_usd, spent_tokens = q.spent_tokens + EXCLUDED.spent_tokens,
                reserved_usd = q.reserved_usd - coalesce(r.amount_usd, 0),
                reserved_tokens = q.reserved_tokens - coalesce(r.tokens, 0)
            RETURNING * INTO k;
        SELECT * INTO tenant FROM tenants WHERE id = NEW.tenant_id;
        SELECT monthly_budget_usd INTO key_budget FROM api_keys WHERE id = NEW.key_id;
        PERFORM quota_record_alerts(NEW.tenant_id, 'tenant', NEW.tenant_id, period, 'budget',
                                    tenant.monthly_budget_usd, t.spent_usd, tenant.alert_thresholds);
        PERFORM quota_record_alerts(NEW.tenant_id, 'tenant', NEW.tenant_id, period, 'tokens',
                                    tenant.monthly_token_quota, t.spent_tokens, tenant.alert_thresholds);
        PERFORM quota_record_alerts(NEW.tenant_id, 'key', NEW.key_id, period, 'budget',
                                    key_budget, k.spent_usd, tenant.alert_thresholds);
        RETURN NULL;
    END $$
    """)
    op.execute("CREATE TRIGGER ledger_entries_settle_quota AFTER INSERT ON ledger_entries "
               "FOR EACH ROW EXECUTE FUNCTION ledger_settles_quota()")
    # Entries written before this revision count towards their UTC month.
    op.execute("""
        INSERT INTO quota_usage (scope, scope_id, period_start, spent_usd, spent_tokens)
        SELECT scope, scope_id, period, sum(charge_total), sum(input_tokens + output_tokens) FROM (
            SELECT 'tenant' AS scope, tenant_id AS scope_id, charge_total, input_tokens, output_tokens,
                   date_trunc('month', started_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS period FROM ledger_entries
            UNION ALL
            SELECT 'key', key_id, charge_total, input_tokens, output_tokens,
                   date_trunc('month', started_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' FROM ledger_entries
        ) e GROUP BY scope, scope_id, period
    """)


def downgrade() -> None:
    op.execute("DROP TRIGGER ledger_entries_settle_quota ON ledger_entries")
    for function in ("ledger_settles_quota()", "quota_record_alerts(bigint, text, bigint, timestamptz, text, numeric, "
                     "numeric, integer[])", "quota_release(uuid)",
                     "quota_admit(uuid, bigint, bigint, timestamptz, numeric, bigint, timestamptz)",
                     "quota_expire(bigint)"):
        op.execute(f"DROP FUNCTION {function}")
    op.drop_table("alerts")
    op.drop_table("reservations")
    op.drop_table("quota_usage")
    op.drop_column("price_versions", "max_output_tokens")
    op.drop_column("ledger_entries", "quota_period")
    op.drop_column("tenants", "alert_thresholds")
    op.drop_column("tenants", "time_zone")
