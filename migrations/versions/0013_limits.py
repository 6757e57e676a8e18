"""Limits teams ask for: daily and weekly budgets and token quotas beside the monthly ones,
prepaid credit, requests and tokens per minute, concurrent calls per key.

- Every counter row now names its window: `day`, `week`, `month` (each in the tenant's
  time zone), or `credit` (a prepaid tenant's balance: it never resets). Counters of
  every window are kept for every tenant and key, so a limit set mid-period counts what
  was already spent in it.
- A reservation remembers the periods it reserved in (and whether against the credit),
  so releasing, expiring or settling it takes it back from exactly those counters.
- `quota_settle(request_id, usd, tokens)` shrinks a finished call's reservation to what it
  actually cost, at once, so its worst case is not held while its ledger entry waits in
  the writer's queue; the counters keep how much of what they hold is such finished calls
  (`finished_*`), so a refusal can tell "spent" from "held by calls still running".
- Counters are always locked in one order: the tenant's (day, week, month, credit), then
  the key's (day, week, month), by admission, settlement, release and expiry alike.
- `rate_take` / `rate_return`: token buckets (capacity: the per-minute limit, refilled
  continuously) from which a replica withdraws shares; `concurrency_claim` /
  `concurrency_return`: slots of a key's concurrency cap, held by a replica for a while.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-25
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

EPOCH = "'1970-01-01 00:00:00+00'::timestamptz"


def upgrade() -> None:
    op.execute("""
        ALTER TABLE tenants
            ADD COLUMN daily_budget_usd numeric, ADD COLUMN weekly_budget_usd numeric,
            ADD COLUMN daily_token_quota bigint, ADD COLUMN weekly_token_quota bigint,
            ADD COLUMN requests_per_minute integer, ADD COLUMN tokens_per_minute bigint,
            ADD COLUMN prepaid boolean NOT NULL DEFAULT false,
            ADD COLUMN credit_usd numeric NOT NULL DEFAULT 0
    """)
    op.execute("""
        ALTER TABLE api_keys
            ADD COLUMN daily_budget_usd numeric, ADD COLUMN weekly_budget_usd numeric,
            ADD COLUMN requests_per_minute integer, ADD COLUMN tokens_per_minute bigint,
            ADD COLUMN max_concurrent integer
    """)
    op.execute("ALTER TABLE quota_usage ADD COLUMN \"window\" text NOT NULL DEFAULT 'month', "
               "ADD COLUMN finished_usd numeric NOT NULL DEFAULT 0, ADD COLUMN finished_tokens bigint NOT NULL DEFAULT 0")
    op.execute("ALTER TABLE quota_usage DROP CONSTRAINT quota_usage_pkey, "
               "ADD PRIMARY KEY (scope, scope_id, \"window\", period_start)")
    op.execute("ALTER TABLE reservations ADD COLUMN day_start timestamptz, ADD COLUMN week_start timestamptz, "
               "ADD COLUMN prepaid boolean NOT NULL DEFAULT false, ADD COLUMN finished boolean NOT NULL DEFAULT false")
    op.execute("""
        CREATE TABLE credit_topups (
            id bigserial PRIMARY KEY,
            tenant_id bigint NOT NULL REFERENCES tenants(id),
            amount_usd numeric NOT NULL CHECK (amount_usd > 0),
            reason text NOT NULL,
            actor text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        )
    """)
    op.execute("CREATE INDEX ix_credit_topups_tenant ON credit_topups (tenant_id, created_at)")
    op.execute("""
        CREATE TABLE rate_buckets (
            scope text NOT NULL, scope_id bigint NOT NULL, measure text NOT NULL,  -- requests | tokens
            level numeric NOT NULL, updated_at timestamptz NOT NULL,
            PRIMARY KEY (scope, scope_id, measure)
        )
    """)
    op.execute("""
        CREATE TABLE concurrency_claims (
            key_id bigint NOT NULL, holder uuid NOT NULL, slots integer NOT NULL,
            expires_at timestamptz NOT NULL,
            PRIMARY KEY (key_id, holder)
        )
    """)

    op.execute("""
        CREATE FUNCTION quota_periods(p_at timestamptz, p_zone text)
        RETURNS TABLE (day_start timestamptz, week_start timestamptz, month_start timestamptz,
                       day_end timestamptz, week_end timestamptz, month_end timestamptz)
        LANGUAGE sql STABLE AS $$
            -- in local time, so that a day across a DST change lasts 23 or 25 hours
            SELECT d AT TIME ZONE p_zone, w AT TIME ZONE p_zone, m AT TIME ZONE p_zone,
                   (d + interval '1 day') AT TIME ZONE p_zone, (w + interval '1 week') AT TIME ZONE p_zone,
                   (m + interval '1 month') AT TIME ZONE p_zone
            FROM (SELECT date_trunc('day', p_at AT TIME ZONE p_zone) AS d,
                         date_trunc('week', p_at AT TIME ZONE p_zone) AS w,
                         date_trunc('month', p_at AT TIME ZONE p_zone) AS m) local
        $$
    """)
    # The counters of one call, in the lock order (a NULL period or key: not this one).
    op.execute(f"""
        CREATE FUNCTION quota_rows(p_tenant_id bigint, p_key_id bigint, p_day timestamptz, p_week timestamptz,
                                   p_month timestamptz, p_credit boolean)
        RETURNS TABLE (rank integer, scope text, scope_id bigint, win text, period timestamptz)
        LANGUAGE sql IMMUTABLE AS $$
            SELECT * FROM (VALUES (1, 'tenant', p_tenant_id, 'day', p_day),
                                  (2, 'tenant', p_tenant_id, 'week', p_week),
                                  (3, 'tenant', p_tenant_id, 'month', p_month),
                                  (4, 'tenant', p_tenant_id, 'credit', CASE WHEN p_credit THEN {EPOCH} END),
                                  (5, 'key', p_key_id, 'day', p_day),
                                  (6, 'key', p_key_id, 'week', p_week),
                                  (7, 'key', p_key_id, 'month', p_month)) v(rank, scope, scope_id, win, period)
            WHERE v.period IS NOT NULL AND v.scope_id IS NOT NULL
        $$
    """)
    op.execute("""
        CREATE FUNCTION quota_add(p_tenant_id bigint, p_key_id bigint, p_day timestamptz, p_week timestamptz,
                                  p_month timestamptz, p_credit boolean, p_spent_usd numeric, p_spent_tokens bigint,
                                  p_reserved_usd numeric, p_reserved_tokens bigint,
                                  p_finished_usd numeric DEFAULT 0, p_finished_tokens bigint DEFAULT 0)
        RETURNS SETOF quota_usage LANGUAGE sql AS $$
            -- one statement for every counter, taken in the lock order; the counters after it
            -- are returned (reading a counter again is slow while one transaction updates it
            -- many times: every version it wrote is still on the page)
            INSERT INTO quota_usage AS q (scope, scope_id, "window", period_start, spent_usd, spent_tokens,
                                          reserved_usd, reserved_tokens, finished_usd, finished_tokens)
            SELECT scope, scope_id, win, period, p_spent_usd, p_spent_tokens, p_reserved_usd, p_reserved_tokens,
                   p_finished_usd, p_finished_tokens
            FROM quota_rows(p_tenant_id, p_key_id, p_day, p_week, p_month, p_credit) ORDER BY rank
            ON CONFLICT (scope, scope_id, "window", period_start) DO UPDATE SET
                spent_usd = q.spent_usd + EXCLUDED.spent_usd, spent_tokens = q.spent_tokens + EXCLUDED.spent_tokens,
                reserved_usd = q.reserved_usd + EXCLUDED.reserved_usd,
                reserved_tokens = q.reserved_tokens + EXCLUDED.reserved_tokens,
                finished_usd = q.finished_usd + EXCLUDED.finished_usd,
                finished_tokens = q.finished_tokens + EXCLUDED.finished_tokens
            RETURNING q.*
        $$
    """)

    # Take a whole reservation back from the counters it was made in.
    op.execute("""
        CREATE FUNCTION quota_unreserve(r reservations)
        RETURNS void LANGUAGE sql AS $$
            SELECT count(*) FROM quota_add(r.tenant_id, r.key_id, r.day_start, r.week_start, r.period_start, r.prepaid,
                             0, 0, -r.amount_usd, -r.tokens, CASE WHEN r.finished THEN -r.amount_usd ELSE 0 END,
                             CASE WHEN r.finished THEN -r.tokens ELSE 0 END) AS counters
        $$
    """)

    op.execute("DROP FUNCTION quota_expire(bigint)")
    op.execute("""
        CREATE FUNCTION quota_expire(p_tenant_id bigint DEFAULT NULL) RETURNS integer LANGUAGE plpgsql AS $$
        DECLARE r reservations%ROWTYPE; expired integer := 0;
        BEGIN
            FOR r IN DELETE FROM reservations WHERE expires_at < now()
                     AND (p_tenant_id IS NULL OR tenant_id = p_tenant_id) RETURNING * LOOP
                PERFORM quota_unreserve(r);
                expired := expired + 1;
            END LOOP;
            RETURN expired;
        END $$
    """)

    op.execute("DROP FUNCTION quota_release(uuid)")
    op.execute("""
        CREATE FUNCTION quota_release(p_request_id uuid) RETURNS boolean LANGUAGE plpgsql AS $$
        DECLARE r reservations%ROWTYPE;
        BEGIN
            DELETE FROM reservations WHERE request_id = p_request_id RETURNING * INTO r;
            IF NOT FOUND THEN RETURN false; END IF;
            PERFORM quota_unreserve(r);
            RETURN true;
        END $$
    """)

    op.execute("""
        CREATE FUNCTION quota_settle(p_request_id uuid, p_usd numeric, p_tokens bigint) RETURNS boolean
        LANGUAGE plpgsql AS $$
        DECLARE r reservations%ROWTYPE; freed_usd numeric; freed_tokens bigint;
        BEGIN
            SELECT * INTO r FROM reservations WHERE request_id = p_request_id;
            IF NOT FOUND THEN RETURN false; END IF;  -- already settled by its ledger entry, or released
            -- The counters before the reservation: a ledger batch holds the counters of its
            -- first entries while it reaches this entry's reservation, so locking the other
            -- way round would deadlock with it.
            PERFORM 1 FROM quota_usage q
                JOIN quota_rows(r.tenant_id, r.key_id, r.day_start, r.week_start, r.period_start, r.prepaid) c
                  ON q.scope = c.scope AND q.scope_id = c.scope_id AND q."window" = c.win AND q.period_start = c.period
                ORDER BY c.rank FOR UPDATE OF q;
            SELECT * INTO r FROM reservations WHERE request_id = p_request_id FOR UPDATE;
            IF NOT FOUND OR r.finished THEN RETURN false; END IF;
            -- it holds what it cost from now on, counted as finished: spent, in all but name
            freed_usd := greatest(r.amount_usd - p_usd, 0);
            freed_tokens := greatest(r.tokens - p_tokens, 0);
            UPDATE reservations SET amount_usd = amount_usd - freed_usd, tokens = tokens - freed_tokens, finished = true
                WHERE request_id = p_request_id;
            PERFORM quota_add(r.tenant_id, r.key_id, r.day_start, r.week_start, r.period_start, r.prepaid, 0, 0,
                              -freed_usd, -freed_tokens, r.amount_usd - freed_usd, r.tokens - freed_tokens);
            RETURN true;
        END $$
    """)

    op.execute("DROP FUNCTION quota_admit(uuid, bigint, bigint, timestamptz, numeric, bigint, timestamptz)")
    op.execute(f"""
        CREATE FUNCTION quota_admit(p_request_id uuid, p_tenant_id bigint, p_key_id bigint, p_at timestamptz,
                                    p_usd numeric, p_tokens bigint, p_expires_at timestamptz)
        RETURNS TABLE (admitted boolean, refused text, held_by_calls_in_flight boolean, resets_at timestamptz,
                       budget_remaining numeric, tokens_remaining bigint, key_budget_remaining numeric)
        LANGUAGE plpgsql AS $$
        #variable_conflict use_column
        DECLARE
            ten tenants%ROWTYPE; ky api_keys%ROWTYPE; p record; c record;
        BEGIN
            PERFORM quota_expire(p_tenant_id);
            SELECT * INTO ten FROM tenants WHERE id = p_tenant_id;
            SELECT * INTO ky FROM api_keys WHERE id = p_key_id;
            SELECT * INTO p FROM quota_periods(p_at, ten.time_zone);
            -- Create the counters (none is locked yet), then lock them all in the lock order.
            INSERT INTO quota_usage (scope, scope_id, "window", period_start, spent_usd, spent_tokens, reserved_usd,
                                     reserved_tokens)
                SELECT scope, scope_id, win, period, 0, 0, 0, 0
                FROM quota_rows(p_tenant_id, p_key_id, p.day_start, p.week_start, p.month_start, ten.prepaid)
                ON CONFLICT DO NOTHING;
            admitted := true;
            FOR c IN
                SELECT l.name, l.usd_limit, l.token_limit, l.next_start, q.spent_usd, q.reserved_usd, q.spent_tokens,
                       q.reserved_tokens, q.finished_usd, q.finished_tokens, l.scope
                FROM (VALUES
                    (1, 'tenant', p_tenant_id, 'day', p.day_start, 'tenant_daily', ten.daily_budget_usd,
                     ten.daily_token_quota, p.day_end),
                    (2, 'tenant', p_tenant_id, 'week', p.week_start, 'tenant_weekly', ten.weekly_budget_usd,
                     ten.weekly_token_quota, p.week_end),
                    (3, 'tenant', p_tenant_id, 'month', p.month_start, 'tenant', ten.monthly_budget_usd,
                     ten.monthly_token_quota, p.month_end),
                    (4, 'tenant', p_tenant_id, 'credit', {EPOCH}, 'tenant_credit',
                     CASE WHEN ten.prepaid THEN ten.credit_usd END, NULL::bigint, NULL::timestamptz),
                    (5, 'key', p_key_id, 'day', p.day_start, 'key_daily', ky.daily_budget_usd, NULL::bigint,
                     p.day_end),
                    (6, 'key', p_key_id, 'week', p.week_start, 'key_weekly', ky.weekly_budget_usd, NULL::bigint,
                     p.week_end),
                    (7, 'key', p_key_id, 'month', p.month_start, 'key', ky.monthly_budget_usd, NULL::bigint,
                     p.month_end)
                ) l(rank, scope, scope_id, win, period, name, usd_limit, token_limit, next_start)
                JOIN quota_usage q ON q.scope = l.scope AND q.scope_id = l.scope_id AND q."window" = l.win
                                  AND q.period_start = l.period
                ORDER BY l.rank FOR UPDATE OF q
            LOOP
                IF c.usd_limit IS NOT NULL THEN
                    IF c.scope = 'tenant' THEN
                        budget_remaining := least(budget_remaining, c.usd_limit - c.spent_usd - c.reserved_usd);
                    ELSE
                        key_budget_remaining := least(key_budget_remaining, c.usd_limit - c.spent_usd - c.reserved_usd);
                    END IF;
                    IF admitted AND c.spent_usd + c.reserved_usd + p_usd > c.usd_limit THEN
                        admitted := false;
                        refused := CASE WHEN c.name = 'tenant_credit' THEN c.name ELSE c.name || '_budget' END;
                        held_by_calls_in_flight := c.spent_usd + c.finished_usd + p_usd <= c.usd_limit;
                        resets_at := c.next_start;
                    END IF;
                END IF;
                IF c.token_limit IS NOT NULL THEN
                    tokens_remaining := least(tokens_remaining, c.token_limit - c.spent_tokens - c.reserved_tokens);
                    IF admitted AND c.spent_tokens + c.reserved_tokens + p_tokens > c.token_limit THEN
                        admitted := false;
                        refused := c.name || '_tokens';
                        held_by_calls_in_flight := c.spent_tokens + c.finished_tokens + p_tokens <= c.token_limit;
                        resets_at := c.next_start;
                    END IF;
                END IF;
            END LOOP;
            IF admitted THEN
                INSERT INTO reservations (request_id, tenant_id, key_id, period_start, day_start, week_start, prepaid,
                                          amount_usd, tokens, expires_at)
                    VALUES (p_request_id, p_tenant_id, p_key_id, p.month_start, p.day_start, p.week_start, ten.prepaid,
                            p_usd, p_tokens, p_expires_at);
                PERFORM quota_add(p_tenant_id, p_key_id, p.day_start, p.week_start, p.month_start, ten.prepaid,
                                  0, 0, p_usd, p_tokens);
                budget_remaining := budget_remaining - p_usd;
                tokens_remaining := tokens_remaining - p_tokens;
                key_budget_remaining := key_budget_remaining - p_usd;
            END IF;
            RETURN NEXT;
        END $$
    """)

    # Settlement: the entry's reservation (if any) leaves the counters it was made in, and its
    # actual charge and tokens go into the same periods (or, unreserved, those of its start).
    op.execute("""
        CREATE OR REPLACE FUNCTION ledger_settles_quota() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            r reservations%ROWTYPE; c quota_usage%ROWTYPE; used bigint;
            day timestamptz; week timestamptz; month timestamptz;
            tenant tenants%ROWTYPE; key_budget numeric; t quota_usage%ROWTYPE; k quota_usage%ROWTYPE;
        BEGIN
            DELETE FROM reservations WHERE request_id = NEW.request_id RETURNING * INTO r;
            SELECT * INTO tenant FROM tenants WHERE id = NEW.tenant_id;
            used := NEW.input_tokens + NEW.output_tokens;
            -- the periods it was reserved in, else those of its start in the tenant's zone
            IF r.request_id IS NOT NULL AND r.day_start IS NOT NULL THEN
                day := r.day_start; week := r.week_start; month := r.period_start;
            ELSE
                SELECT q.day_start, q.week_start, coalesce(r.period_start, NEW.quota_period, q.month_start)
                    INTO day, week, month
                    FROM quota_periods(NEW.started_at, coalesce(tenant.time_zone, 'UTC')) q;
            END IF;
            FOR c IN SELECT * FROM quota_add(NEW.tenant_id, NEW.key_id, day, week, month,
                                             coalesce(r.prepaid, tenant.prepaid, false), NEW.charge_total, used,
                                             -coalesce(r.amount_usd, 0), -coalesce(r.tokens, 0),
                                             CASE WHEN r.finished THEN -r.amount_usd ELSE 0 END,
                                             CASE WHEN r.finished THEN -r.tokens ELSE 0 END) LOOP
                IF c."window" = 'month' AND c.scope = 'tenant' THEN t := c; END IF;
                IF c."window" = 'month' AND c.scope = 'key' THEN k := c; END IF;
            END LOOP;
            -- Alerts only once the lowest threshold is reached (thresholds are kept sorted), so
            -- that most entries do not call the alert function at all.
            IF t.spent_usd * 100 >= tenant.monthly_budget_usd * tenant.alert_thresholds[1] THEN
                PERFORM quota_record_alerts(NEW.tenant_id, 'tenant', NEW.tenant_id, t.period_start, 'budget',
                                            tenant.monthly_budget_usd, t.spent_usd, tenant.alert_thresholds);
            END IF;
            IF t.spent_tokens * 100 >= tenant.monthly_token_quota * tenant.alert_thresholds[1] THEN
                PERFORM quota_record_alerts(NEW.tenant_id, 'tenant', NEW.tenant_id, t.period_start, 'tokens',
                                            tenant.monthly_token_quota, t.spent_tokens, tenant.alert_thresholds);
            END IF;
            SELECT monthly_budget_usd INTO key_budget FROM api_keys WHERE id = NEW.key_id;
            IF k.spent_usd * 100 >= key_budget * tenant.alert_thresholds[1] THEN
                PERFORM quota_record_alerts(NEW.tenant_id, 'key', NEW.key_id, k.period_start, 'budget',
                                            key_budget, k.spent_usd, tenant.alert_thresholds);
            END IF;
            RETURN NULL;
        END $$
    """)

    # Counters of the current day and week from the ledger (months are already kept).
    op.execute("""
        INSERT INTO quota_usage (scope, scope_id, "window", period_start, spent_usd, spent_tokens,
                                 reserved_usd, reserved_tokens)
        SELECT scope, scope_id, win, period, sum(charge_total), sum(input_tokens + output_tokens), 0, 0 FROM (
            SELECT s.scope, s.scope_id, w.win, w.period, e.charge_total, e.input_tokens, e.output_tokens
            FROM ledger_entries e
            JOIN tenants t ON t.id = e.tenant_id
            CROSS JOIN LATERAL quota_periods(e.started_at, t.time_zone) p
            CROSS JOIN LATERAL (VALUES ('day', p.day_start), ('week', p.week_start)) w(win, period)
            CROSS JOIN LATERAL (VALUES ('tenant', e.tenant_id), ('key', e.key_id)) s(scope, scope_id)
            WHERE e.started_at >= now() - interval '8 days'
        ) x GROUP BY scope, scope_id, win, period
        ON CONFLICT DO NOTHING
    """)
    op.execute("UPDATE reservations r SET day_start = p.day_start, week_start = p.week_start "
               "FROM (SELECT x.request_id, q.* FROM reservations x JOIN tenants t ON t.id = x.tenant_id, "
               "LATERAL quota_periods(x.created_at, t.time_zone) q) p WHERE p.request_id = r.request_id")
    # Reservations made before this revision were counted in the month only: count them in
    # their day and week too, so releasing them leaves those counters right.
    op.execute("SELECT quota_add(tenant_id, key_id, day_start, week_start, NULL, false, 0, 0, amount_usd, tokens) "
               "FROM reservations")

    op.execute("""
        CREATE FUNCTION rate_take(p_scopes text[], p_ids bigint[], p_measures text[], p_limits numeric[],
                                  p_needs numeric[], p_wants numeric[])
        RETURNS TABLE (scope text, scope_id bigint, measure text, granted numeric, level numeric,
                       wait_seconds double precision)
        LANGUAGE plpgsql AS $$
        #variable_conflict use_column
        BEGIN
            -- A bucket starts full; all of a call's buckets are taken from, or none.
            INSERT INTO rate_buckets (scope, scope_id, measure, level, updated_at)
                SELECT * , now() FROM unnest(p_scopes, p_ids, p_measures, p_limits) ON CONFLICT DO NOTHING;
            RETURN QUERY
            WITH asked AS (
                SELECT * FROM unnest(p_scopes, p_ids, p_measures, p_limits, p_needs, p_wants)
                    u(scope, scope_id, measure, cap, need, want)
            ), locked AS (
                SELECT b.* FROM rate_buckets b JOIN asked a USING (scope, scope_id, measure)
                ORDER BY b.scope, b.scope_id, b.measure FOR UPDATE OF b
            ), now_level AS (
                SELECT a.*, least(a.cap, l.level + a.cap / 60 * extract(epoch FROM now() - l.updated_at)::numeric)
                       AS available
                FROM asked a JOIN locked l USING (scope, scope_id, measure)
            ), verdict AS (
                SELECT bool_and(available >= least(need, cap)) AS met FROM now_level
            ), taken AS (
                SELECT n.*, CASE WHEN v.met THEN greatest(least(n.need, n.cap), least(n.want, n.available)) ELSE 0 END
                       AS amount
                FROM now_level n, verdict v
            )
            UPDATE rate_buckets b SET level = t.available - t.amount, updated_at = now()
            FROM taken t
            WHERE b.scope = t.scope AND b.scope_id = t.scope_id AND b.measure = t.measure
            RETURNING b.scope, b.scope_id, b.measure, t.amount, b.level,
                      CASE WHEN t.available >= least(t.need, t.cap) THEN 0::double precision
                           ELSE ((least(t.need, t.cap) - t.available) / (t.cap / 60))::double precision END;
        END $$
    """)
    op.execute("""
        CREATE FUNCTION rate_return(p_scopes text[], p_ids bigint[], p_measures text[], p_limits numeric[],
                                    p_amounts numeric[])
        RETURNS void LANGUAGE plpgsql AS $$
        BEGIN
            -- in the same lock order as rate_take
            PERFORM 1 FROM rate_buckets b JOIN unnest(p_scopes, p_ids, p_measures) u(s, i, m)
                ON b.scope = u.s AND b.scope_id = u.i AND b.measure = u.m
                ORDER BY b.scope, b.scope_id, b.measure FOR UPDATE OF b;
            UPDATE rate_buckets b
            SET level = least(u.l, b.level + u.l / 60 * extract(epoch FROM now() - b.updated_at)::numeric + u.a),
                updated_at = now()
            FROM unnest(p_scopes, p_ids, p_measures, p_limits, p_amounts) u(s, i, m, l, a)
            WHERE b.scope = u.s AND b.scope_id = u.i AND b.measure = u.m;
        END $$
    """)
    op.execute("""
        CREATE FUNCTION concurrency_claim(p_key_id bigint, p_holder uuid, p_cap integer, p_ttl_seconds double precision)
        RETURNS boolean LANGUAGE plpgsql AS $$
        DECLARE taken integer;
        BEGIN
            PERFORM 1 FROM api_keys WHERE id = p_key_id FOR NO KEY UPDATE;  -- one claim at a time per key
            DELETE FROM concurrency_claims WHERE key_id = p_key_id AND expires_at < now();
            SELECT coalesce(sum(slots), 0) INTO taken FROM concurrency_claims WHERE key_id = p_key_id;
            IF taken >= p_cap THEN RETURN false; END IF;
            INSERT INTO concurrency_claims AS c (key_id, holder, slots, expires_at)
                VALUES (p_key_id, p_holder, 1, now() + make_interval(secs => p_ttl_seconds))
                ON CONFLICT (key_id, holder) DO UPDATE SET slots = c.slots + 1, expires_at = EXCLUDED.expires_at;
            RETURN true;
        END $$
    """)
    op.execute("""
        CREATE FUNCTION concurrency_return(p_key_id bigint, p_holder uuid, p_slots integer) RETURNS void
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM 1 FROM api_keys WHERE id = p_key_id FOR NO KEY UPDATE;
            UPDATE concurrency_claims SET slots = slots - p_slots WHERE key_id = p_key_id AND holder = p_holder;
            DELETE FROM concurrency_claims WHERE key_id = p_key_id AND holder = p_holder AND slots <= 0;
        END $$
    """)


def downgrade() -> None:
    raise NotImplementedError("0013 adds windows to every quota counter; restore a backup to go back")
