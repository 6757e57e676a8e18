"""Ledger ingest that scales: roll-ups, quota settlement and response owners once per
inserted batch, not once per row.

The three row-level AFTER INSERT triggers (`ledger_rolls_up`, `ledger_settles_quota`,
`ledger_records_owner`) updated the same hot rows once per entry: a 500-row batch of one
tenant updated its seven quota counters 500 times each. One statement-level trigger with
a transition table (`new_rows`) now does the same work set-wise:

- ledger_daily: one upsert per (day, tenant, key, model, tier) of the batch;
- response_owners: one upsert per response id (the earliest entry of the batch names it);
- quota_usage: each entry's reservation (if any) leaves the counters it was made in and its
  charge and tokens go in, summed per counter, one upsert per counter; alerts are checked
  once per month counter the batch touched.

Locks are taken in one global order so that concurrent writers, admissions and
settlements never deadlock: roll-up rows in key order; quota counters by (tenant, the
tenant's before its keys', key, window, period), which contains every single call's order
(the tenant's day, week, month, credit, then its key's); and counters before
reservations, as `quota_settle` takes them. The counters are locked from an unlocked read
of the reservations (a reservation's periods never change), the reservations are then
deleted, and the final upsert finds its rows already held.

quota_usage and ledger_daily get fillfactor 50: every batch updates their rows in place,
and free room on the page keeps those updates HOT (no index entry per update). It applies
to pages written from now on.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-25
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

TOKENS = ("input_tokens", "cached_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")
MONEY = ("cost_uncached_input", "cost_cached_input", "cost_cache_write", "cost_output", "cost_reasoning",
         "cost_total", "charge_total", "cache_savings", "cost_tool_calls", "cost_cache_storage")
DAILY = ("requests", *TOKENS, "tool_calls", *MONEY, "estimated_requests", "estimated_charge", "late_requests",
         "late_charge")
ROW_TRIGGERS = {"ledger_entries_roll_up": "ledger_rolls_up", "ledger_entries_settle_quota": "ledger_settles_quota",
                "ledger_entries_record_owner": "ledger_records_owner"}

_ROLL_UP = f"""
    INSERT INTO ledger_daily AS d (day, tenant_id, key_id, model, service_tier, {", ".join(DAILY)})
    SELECT coalesce(n.booked_on, (n.started_at AT TIME ZONE 'UTC')::date), n.tenant_id, n.key_id, n.model,
           coalesce(n.service_tier, 'default'), count(*), {", ".join(f"sum(n.{c})" for c in TOKENS)},
           sum(CASE WHEN n.tool_calls = '{{}}' THEN 0
                    ELSE (SELECT coalesce(sum(value::bigint), 0) FROM jsonb_each_text(n.tool_calls)) END),
           {", ".join(f"sum(n.{c})" for c in MONEY)},
           count(*) FILTER (WHERE n.estimated), coalesce(sum(n.charge_total) FILTER (WHERE n.estimated), 0),
           count(*) FILTER (WHERE n.booked_on IS NOT NULL),
           coalesce(sum(n.charge_total) FILTER (WHERE n.booked_on IS NOT NULL), 0)
    FROM new_rows n GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (day, tenant_id, key_id, model, service_tier) DO UPDATE SET
        {", ".join(f"{c} = d.{c} + EXCLUDED.{c}" for c in DAILY)};
"""

_OWNERS = """
    INSERT INTO response_owners AS o (response_id, tenant_id, upstream, context_tokens)
    SELECT DISTINCT ON (n.upstream_response_id) n.upstream_response_id, n.tenant_id, n.upstream,
           n.input_tokens + n.output_tokens
    FROM new_rows n
    WHERE n.endpoint = 'responses' AND n.upstream_response_id IS NOT NULL AND n.status <> 'credit'
    ORDER BY n.upstream_response_id, n.started_at
    ON CONFLICT (response_id) DO UPDATE SET context_tokens = EXCLUDED.context_tokens WHERE o.context_tokens IS NULL;
"""


def _counters(reservations: str) -> str:
    """The quota counters the batch moves, and by how much: each entry counts in the periods
    (and credit) of its reservation, else in those of its start in the tenant's zone (worked
    out only then). Entries are summed per (tenant, key, periods) before they are spread
    over their counters, so the per-entry work is a join and a few expressions."""
    zone = "coalesce(t.time_zone, 'UTC')"
    local = f"n.started_at AT TIME ZONE {zone}"
    return f"""
        SELECT x.tenant_id, c.rank, c.scope, c.scope_id, c.win, c.period, x.usd, x.tokens, x.held_usd,
               x.held_tokens, x.finished_usd, x.finished_tokens
        FROM (SELECT n.tenant_id, n.key_id,
                     coalesce(r.day_start, date_trunc('day', {local}) AT TIME ZONE {zone}) AS day,
                     coalesce(r.week_start, date_trunc('week', {local}) AT TIME ZONE {zone}) AS week,
                     coalesce(r.period_start, n.quota_period, date_trunc('month', {local}) AT TIME ZONE {zone}) AS month,
                     coalesce(r.prepaid, t.prepaid, false) AS prepaid,
                     sum(n.charge_total) AS usd, sum(n.input_tokens + n.output_tokens) AS tokens,
                     coalesce(sum(r.amount_usd), 0) AS held_usd, coalesce(sum(r.tokens), 0) AS held_tokens,
                     coalesce(sum(r.amount_usd) FILTER (WHERE r.finished), 0) AS finished_usd,
                     coalesce(sum(r.tokens) FILTER (WHERE r.finished), 0) AS finished_tokens
              FROM new_rows n
              LEFT JOIN tenants t ON t.id = n.tenant_id
              LEFT JOIN {reservations} r ON r.request_id = n.request_id
              GROUP BY 1, 2, 3, 4, 5, 6) x
        CROSS JOIN LATERAL quota_rows(x.tenant_id, x.key_id, x.day, x.week, x.month, x.prepaid) c
    """


LOCK_ORDER = "tenant_id, scope = 'key', scope_id, rank, period"

_SETTLE_FUNCTION = f"""
    CREATE FUNCTION ledger_settles_batch() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE touched quota_usage[];
    BEGIN
        {_ROLL_UP}
        {_OWNERS}
        -- Quota counters: created if missing and locked, in the lock order, before any
        -- reservation is (quota_settle takes counters, then the reservation). An upsert whose
        -- update never applies (WHERE false) still locks the row it conflicts with.
        INSERT INTO quota_usage AS q (scope, scope_id, "window", period_start, spent_usd, spent_tokens, reserved_usd,
                                      reserved_tokens)
        SELECT scope, scope_id, win, period, 0, 0, 0, 0
        FROM ({_counters("reservations")}) k
        GROUP BY tenant_id, scope, scope_id, rank, win, period ORDER BY {LOCK_ORDER}
        ON CONFLICT (scope, scope_id, "window", period_start) DO UPDATE SET spent_usd = q.spent_usd WHERE false;
        -- Settle: the reservations leave, the actual charges and tokens go in.
        WITH settled AS (DELETE FROM reservations r USING new_rows n WHERE r.request_id = n.request_id
                         RETURNING r.*),
        moved AS (
            INSERT INTO quota_usage AS q (scope, scope_id, "window", period_start, spent_usd, spent_tokens,
                                          reserved_usd, reserved_tokens, finished_usd, finished_tokens)
            SELECT scope, scope_id, win, period, sum(usd), sum(tokens), -sum(held_usd), -sum(held_tokens),
                   -sum(finished_usd), -sum(finished_tokens)
            FROM ({_counters("settled")}) k
            GROUP BY tenant_id, scope, scope_id, rank, win, period ORDER BY {LOCK_ORDER}
            ON CONFLICT (scope, scope_id, "window", period_start) DO UPDATE SET
                spent_usd = q.spent_usd + EXCLUDED.spent_usd, spent_tokens = q.spent_tokens + EXCLUDED.spent_tokens,
                reserved_usd = q.reserved_usd + EXCLUDED.reserved_usd,
                reserved_tokens = q.reserved_tokens + EXCLUDED.reserved_tokens,
                finished_usd = q.finished_usd + EXCLUDED.finished_usd,
                finished_tokens = q.finished_tokens + EXCLUDED.finished_tokens
            RETURNING q.*)
        SELECT array_agg(m) INTO touched FROM moved m WHERE m."window" = 'month';
        -- Alerts: once per month counter the batch moved, and only past the lowest threshold.
        PERFORM quota_record_alerts(t.id, 'tenant', t.id, c.period_start, 'budget', t.monthly_budget_usd,
                                    c.spent_usd, t.alert_thresholds)
            FROM unnest(touched) c JOIN tenants t ON c.scope = 'tenant' AND t.id = c.scope_id
            WHERE c.spent_usd * 100 >= t.monthly_budget_usd * t.alert_thresholds[1];
        PERFORM quota_record_alerts(t.id, 'tenant', t.id, c.period_start, 'tokens', t.monthly_token_quota,
                                    c.spent_tokens, t.alert_thresholds)
            FROM unnest(touched) c JOIN tenants t ON c.scope = 'tenant' AND t.id = c.scope_id
            WHERE c.spent_tokens * 100 >= t.monthly_token_quota * t.alert_thresholds[1];
        PERFORM quota_record_alerts(t.id, 'key', k.id, c.period_start, 'budget', k.monthly_budget_usd,
                                    c.spent_usd, t.alert_thresholds)
            FROM unnest(touched) c JOIN api_keys k ON c.scope = 'key' AND k.id = c.scope_id
            JOIN tenants t ON t.id = k.tenant_id
            WHERE c.spent_usd * 100 >= k.monthly_budget_usd * t.alert_thresholds[1];
        RETURN NULL;
    END $$
"""


def upgrade() -> None:
    op.execute("ALTER TABLE quota_usage SET (fillfactor = 50)")
    op.execute("ALTER TABLE ledger_daily SET (fillfactor = 50)")
    for trigger in ROW_TRIGGERS:
        op.execute(f"DROP TRIGGER {trigger} ON ledger_entries")
    op.execute(_SETTLE_FUNCTION)
    op.execute("CREATE TRIGGER ledger_entries_settle_batch AFTER INSERT ON ledger_entries "
               "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ledger_settles_batch()")


def downgrade() -> None:
    op.execute("ALTER TABLE quota_usage RESET (fillfactor)")
    op.execute("ALTER TABLE ledger_daily RESET (fillfactor)")
    op.execute("DROP TRIGGER ledger_entries_settle_batch ON ledger_entries")
    op.execute("DROP FUNCTION ledger_settles_batch()")
    # The row functions were left in place by upgrade: only their triggers come back.
    for trigger, function in ROW_TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {trigger} AFTER INSERT ON ledger_entries "
                   f"FOR EACH ROW EXECUTE FUNCTION {function}()")
