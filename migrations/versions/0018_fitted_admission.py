"""Admission that fits a call to what is left instead of refusing it, per-call caps, request
quotas and a soft enforcement mode.

- `quota_admit` takes the call's worst case as a line: `base` (its input, tools and the like)
  plus `units` of output (one unit: one more token of the per-choice output cap, at the
  dearest output rate, times the choices). When the whole worst case does not fit under a
  limit, the call gets as many units as `1 / (shares x (1 + calls in flight))` of what that
  limit has left after its input pays for (but at least `min_units`, if those fit), the
  fewest any limit allows: alone, a call gets a good part of what is left; in a burst, each
  gets less, down to the floor, and the rest is not taken by the first few. It
  returns the units granted and the limit that set them; below `min_units` it refuses, and
  says whether it was spent, too little left for this call, or held by calls in flight.
- Request quotas per day and per month, on tenants and keys: calls counted like tokens,
  reserved at admission (`reserved_requests`) and counted once their ledger entry settles.
  A storage credit entry is no call and is not counted.
- `tenants.enforcement = 'soft'`: a budget, token or request quota admits while what is
  spent is under it, and calls are not fitted; the calls then in flight may overrun it. The
  prepaid credit stays hard.
- `max_call_usd` and `fit_floor_tokens` on tenants and keys are read by the proxy, which
  fits calls to the first and passes the second as `min_units`.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

EPOCH = "'1970-01-01 00:00:00+00'::timestamptz"

_ADMIT = f"""
    CREATE FUNCTION quota_admit(p_request_id uuid, p_tenant_id bigint, p_key_id bigint, p_at timestamptz,
                                p_usd numeric, p_tokens bigint, p_expires_at timestamptz,
                                p_requests integer DEFAULT 0, p_base_usd numeric DEFAULT NULL,
                                p_unit_usd numeric DEFAULT NULL, p_base_tokens bigint DEFAULT NULL,
                                p_unit_tokens bigint DEFAULT NULL, p_max_units bigint DEFAULT NULL,
                                p_min_units bigint DEFAULT NULL, p_shares integer DEFAULT 1)
    RETURNS TABLE (admitted boolean, refused text, held_by_calls_in_flight boolean, resets_at timestamptz,
                   budget_remaining numeric, tokens_remaining bigint, key_budget_remaining numeric,
                   requests_remaining bigint, units bigint, fitted_by text, refusal_cause text,
                   left_usd numeric, left_tokens bigint, room_usd numeric, room_tokens bigint)
    LANGUAGE plpgsql AS $$
    #variable_conflict use_column
    DECLARE
        ten tenants%ROWTYPE; ky api_keys%ROWTYPE; p record; c record;
        soft boolean; fits boolean; allowed bigint; need_usd numeric; need_tokens bigint;
        reserve_usd numeric; reserve_tokens bigint;
        fitting boolean := p_min_units IS NOT NULL AND p_max_units IS NOT NULL AND p_min_units <= p_max_units;
    BEGIN
        PERFORM quota_expire(p_tenant_id);
        SELECT * INTO ten FROM tenants WHERE id = p_tenant_id;
        SELECT * INTO ky FROM api_keys WHERE id = p_key_id;
        SELECT * INTO p FROM quota_periods(p_at, ten.time_zone);
        INSERT INTO quota_usage (scope, scope_id, "window", period_start, spent_usd, spent_tokens, reserved_usd,
                                 reserved_tokens)
            SELECT scope, scope_id, win, period, 0, 0, 0, 0
            FROM quota_rows(p_tenant_id, p_key_id, p.day_start, p.week_start, p.month_start, ten.prepaid)
            ON CONFLICT DO NOTHING;
        admitted := true;
        units := p_max_units;
        -- the least a fitted call needs (its input and the floor), else its whole worst case
        need_usd := CASE WHEN fitting THEN p_base_usd + p_min_units * p_unit_usd ELSE p_usd END;
        need_tokens := CASE WHEN fitting THEN p_base_tokens + p_min_units * p_unit_tokens ELSE p_tokens END;
        FOR c IN
            SELECT l.name, l.usd_limit, l.token_limit, l.request_limit, l.next_start, q.spent_usd, q.reserved_usd,
                   q.spent_tokens, q.reserved_tokens, q.finished_usd, q.finished_tokens, q.requests,
                   q.reserved_requests, l.scope
            FROM (VALUES
                (1, 'tenant', p_tenant_id, 'day', p.day_start, 'tenant_daily', ten.daily_budget_usd,
                 ten.daily_token_quota, ten.daily_request_quota, p.day_end),
                (2, 'tenant', p_tenant_id, 'week', p.week_start, 'tenant_weekly', ten.weekly_budget_usd,
                 ten.weekly_token_quota, NULL::bigint, p.week_end),
                (3, 'tenant', p_tenant_id, 'month', p.month_start, 'tenant', ten.monthly_budget_usd,
                 ten.monthly_token_quota, ten.monthly_request_quota, p.month_end),
                (4, 'tenant', p_tenant_id, 'credit', {EPOCH}, 'tenant_credit',
                 CASE WHEN ten.prepaid THEN ten.credit_usd END, NULL::bigint, NULL::bigint, NULL::timestamptz),
                (5, 'key', p_key_id, 'day', p.day_start, 'key_daily', ky.daily_budget_usd, NULL::bigint,
                 ky.daily_request_quota, p.day_end),
                (6, 'key', p_key_id, 'week', p.week_start, 'key_weekly', ky.weekly_budget_usd, NULL::bigint,
                 NULL::bigint, p.week_end),
                (7, 'key', p_key_id, 'month', p.month_start, 'key', ky.monthly_budget_usd, NULL::bigint,
                 ky.monthly_request_quota, p.month_end)
            ) l(rank, scope, scope_id, win, period, name, usd_limit, token_limit, request_limit, next_start)
            JOIN quota_usage q ON q.scope = l.scope AND q.scope_id = l.scope_id AND q."window" = l.win
                              AND q.period_start = l.period
            ORDER BY l.rank FOR UPDATE OF q
        LOOP
            soft := ten.enforcement = 'soft' AND c.name <> 'tenant_credit';
            IF c.usd_limit IS NOT NULL THEN
                IF c.scope = 'tenant' THEN
                    budget_remaining := least(budget_remaining, c.usd_limit - c.spent_usd - c.reserved_usd);
                ELSE
                    key_budget_remaining := least(key_budget_remaining, c.usd_limit - c.spent_usd - c.reserved_usd);
                END IF;
                IF admitted THEN
                    IF soft THEN
                        fits := c.spent_usd + c.finished_usd < c.usd_limit;
                    ELSIF c.spent_usd + c.reserved_usd + p_usd <= c.usd_limit THEN
                        fits := true;
                    ELSIF fitting AND c.spent_usd + c.reserved_usd + need_usd <= c.usd_limit THEN
                        fits := true;
                        allowed := CASE WHEN p_unit_usd > 0
                            THEN floor((c.usd_limit - c.spent_usd - c.reserved_usd - p_base_usd)
                                       / (p_shares * (1 + c.reserved_requests) * p_unit_usd))::bigint
                            ELSE p_max_units END;
                        allowed := least(greatest(allowed, p_min_units), p_max_units);
                        IF allowed < units THEN
                            units := allowed;
                            fitted_by := CASE WHEN c.name = 'tenant_credit' THEN c.name ELSE c.name || '_budget' END;
                        END IF;
                    ELSE
                        fits := false;
                    END IF;
                    IF NOT fits THEN
                        admitted := false;
                        refused := CASE WHEN c.name = 'tenant_credit' THEN c.name ELSE c.name || '_budget' END;
                        left_usd := c.usd_limit - c.spent_usd - c.finished_usd;
                        room_usd := c.usd_limit - c.spent_usd - c.reserved_usd;
                        held_by_calls_in_flight := NOT soft AND c.spent_usd + c.finished_usd + need_usd <= c.usd_limit;
                        refusal_cause := CASE WHEN held_by_calls_in_flight THEN 'held_in_flight'
                                              WHEN left_usd <= 0 THEN 'spent' ELSE 'over_left' END;
                        resets_at := c.next_start;
                    END IF;
                END IF;
            END IF;
            IF c.token_limit IS NOT NULL THEN
                tokens_remaining := least(tokens_remaining, c.token_limit - c.spent_tokens - c.reserved_tokens);
                IF admitted THEN
                    IF soft THEN
                        fits := c.spent_tokens + c.finished_tokens < c.token_limit;
                    ELSIF c.spent_tokens + c.reserved_tokens + p_tokens <= c.token_limit THEN
                        fits := true;
                    ELSIF fitting AND c.spent_tokens + c.reserved_tokens + need_tokens <= c.token_limit THEN
                        fits := true;
                        allowed := floor((c.token_limit - c.spent_tokens - c.reserved_tokens - p_base_tokens)
                                         / (p_shares * (1 + c.reserved_requests) * greatest(p_unit_tokens, 1)))::bigint;
                        allowed := least(greatest(allowed, p_min_units), p_max_units);
                        IF allowed < units THEN
                            units := allowed;
                            fitted_by := c.name || '_tokens';
                        END IF;
                    ELSE
                        fits := false;
                    END IF;
                    IF NOT fits THEN
                        admitted := false;
                        refused := c.name || '_tokens';
                        left_tokens := c.token_limit - c.spent_tokens - c.finished_tokens;
                        room_tokens := c.token_limit - c.spent_tokens - c.reserved_tokens;
                        held_by_calls_in_flight := NOT soft
                            AND c.spent_tokens + c.finished_tokens + need_tokens <= c.token_limit;
                        refusal_cause := CASE WHEN held_by_calls_in_flight THEN 'held_in_flight'
                                              WHEN left_tokens <= 0 THEN 'spent' ELSE 'over_left' END;
                        resets_at := c.next_start;
                    END IF;
                END IF;
            END IF;
            IF c.request_limit IS NOT NULL THEN
                requests_remaining := least(requests_remaining, c.request_limit - c.requests - c.reserved_requests);
                IF admitted AND (CASE WHEN soft THEN c.requests >= c.request_limit
                                      ELSE c.requests + c.reserved_requests + p_requests > c.request_limit END) THEN
                    admitted := false;
                    refused := c.name || '_requests';
                    held_by_calls_in_flight := NOT soft AND c.requests + p_requests <= c.request_limit;
                    refusal_cause := CASE WHEN held_by_calls_in_flight THEN 'held_in_flight' ELSE 'spent' END;
                    resets_at := c.next_start;
                END IF;
            END IF;
        END LOOP;
        IF admitted THEN
            IF units IS NOT DISTINCT FROM p_max_units THEN
                reserve_usd := p_usd; reserve_tokens := p_tokens;
            ELSE
                reserve_usd := p_base_usd + units * p_unit_usd; reserve_tokens := p_base_tokens + units * p_unit_tokens;
            END IF;
            INSERT INTO reservations (request_id, tenant_id, key_id, period_start, day_start, week_start, prepaid,
                                      amount_usd, tokens, requests, expires_at)
                VALUES (p_request_id, p_tenant_id, p_key_id, p.month_start, p.day_start, p.week_start, ten.prepaid,
                        reserve_usd, reserve_tokens, p_requests, p_expires_at);
            PERFORM quota_add(p_tenant_id, p_key_id, p.day_start, p.week_start, p.month_start, ten.prepaid,
                              0, 0, reserve_usd, reserve_tokens);
            IF p_requests <> 0 THEN
                PERFORM quota_add_requests(p_tenant_id, p_key_id, p.day_start, p.week_start, p.month_start,
                                           ten.prepaid, 0, p_requests);
            END IF;
            budget_remaining := budget_remaining - reserve_usd;
            tokens_remaining := tokens_remaining - reserve_tokens;
            key_budget_remaining := key_budget_remaining - reserve_usd;
            requests_remaining := requests_remaining - p_requests;
        END IF;
        RETURN NEXT;
    END $$
"""

_UNRESERVE = """
    CREATE OR REPLACE FUNCTION quota_unreserve(r reservations)
    RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM quota_add(r.tenant_id, r.key_id, r.day_start, r.week_start, r.period_start, r.prepaid,
                          0, 0, -r.amount_usd, -r.tokens, CASE WHEN r.finished THEN -r.amount_usd ELSE 0 END,
                          CASE WHEN r.finished THEN -r.tokens ELSE 0 END);
        IF r.requests <> 0 THEN  -- its counters are held already: quota_add took them in the lock order
            PERFORM quota_add_requests(r.tenant_id, r.key_id, r.day_start, r.week_start, r.period_start, r.prepaid,
                                       0, -r.requests);
        END IF;
    END $$
"""

_ADD_REQUESTS = """
    CREATE FUNCTION quota_add_requests(p_tenant_id bigint, p_key_id bigint, p_day timestamptz, p_week timestamptz,
                                       p_month timestamptz, p_credit boolean, p_requests bigint,
                                       p_reserved_requests bigint)
    RETURNS SETOF quota_usage LANGUAGE sql AS $$
        UPDATE quota_usage q SET requests = q.requests + p_requests,
                                 reserved_requests = q.reserved_requests + p_reserved_requests
        FROM quota_rows(p_tenant_id, p_key_id, p_day, p_week, p_month, p_credit) c
        WHERE q.scope = c.scope AND q.scope_id = c.scope_id AND q."window" = c.win AND q.period_start = c.period
        RETURNING q.*
    $$
"""


def _counters(reservations: str) -> str:
    """As in revision 0015, with the calls (`requests`) beside the charges and tokens."""
    zone = "coalesce(t.time_zone, 'UTC')"
    local = f"n.started_at AT TIME ZONE {zone}"
    return f"""
        SELECT x.tenant_id, c.rank, c.scope, c.scope_id, c.win, c.period, x.usd, x.tokens, x.held_usd,
               x.held_tokens, x.finished_usd, x.finished_tokens, x.calls, x.held_calls
        FROM (SELECT n.tenant_id, n.key_id,
                     coalesce(r.day_start, date_trunc('day', {local}) AT TIME ZONE {zone}) AS day,
                     coalesce(r.week_start, date_trunc('week', {local}) AT TIME ZONE {zone}) AS week,
                     coalesce(r.period_start, n.quota_period, date_trunc('month', {local}) AT TIME ZONE {zone}) AS month,
                     coalesce(r.prepaid, t.prepaid, false) AS prepaid,
                     sum(n.charge_total) AS usd, sum(n.input_tokens + n.output_tokens) AS tokens,
                     coalesce(sum(r.amount_usd), 0) AS held_usd, coalesce(sum(r.tokens), 0) AS held_tokens,
                     coalesce(sum(r.amount_usd) FILTER (WHERE r.finished), 0) AS finished_usd,
                     coalesce(sum(r.tokens) FILTER (WHERE r.finished), 0) AS finished_tokens,
                     count(*) FILTER (WHERE n.status <> 'credit') AS calls,
                     coalesce(sum(r.requests), 0) AS held_calls
              FROM new_rows n
              LEFT JOIN tenants t ON t.id = n.tenant_id
              LEFT JOIN {reservations} r ON r.request_id = n.request_id
              GROUP BY 1, 2, 3, 4, 5, 6) x
        CROSS JOIN LATERAL quota_rows(x.tenant_id, x.key_id, x.day, x.week, x.month, x.prepaid) c
    """


LOCK_ORDER = "tenant_id, scope = 'key', scope_id, rank, period"

# Revision 0015's ledger_settles_batch with `requests` settled too. The roll-up and owner
# statements are unchanged: they are read from the function as 0015 created it.
_SETTLE_COUNTERS = f"""
        INSERT INTO quota_usage AS q (scope, scope_id, "window", period_start, spent_usd, spent_tokens, reserved_usd,
                                      reserved_tokens)
        SELECT scope, scope_id, win, period, 0, 0, 0, 0
        FROM ({_counters("reservations")}) k
        GROUP BY tenant_id, scope, scope_id, rank, win, period ORDER BY {LOCK_ORDER}
        ON CONFLICT (scope, scope_id, "window", period_start) DO UPDATE SET spent_usd = q.spent_usd WHERE false;
        WITH settled AS (DELETE FROM reservations r USING new_rows n WHERE r.request_id = n.request_id
                         RETURNING r.*),
        moved AS (
            INSERT INTO quota_usage AS q (scope, scope_id, "window", period_start, spent_usd, spent_tokens,
                                          reserved_usd, reserved_tokens, finished_usd, finished_tokens,
                                          requests, reserved_requests)
            SELECT scope, scope_id, win, period, sum(usd), sum(tokens), -sum(held_usd), -sum(held_tokens),
                   -sum(finished_usd), -sum(finished_tokens), sum(calls), -sum(held_calls)
            FROM ({_counters("settled")}) k
            GROUP BY tenant_id, scope, scope_id, rank, win, period ORDER BY {LOCK_ORDER}
            ON CONFLICT (scope, scope_id, "window", period_start) DO UPDATE SET
                spent_usd = q.spent_usd + EXCLUDED.spent_usd, spent_tokens = q.spent_tokens + EXCLUDED.spent_tokens,
                reserved_usd = q.reserved_usd + EXCLUDED.reserved_usd,
                reserved_tokens = q.reserved_tokens + EXCLUDED.reserved_tokens,
                finished_usd = q.finished_usd + EXCLUDED.finished_usd,
                finished_tokens = q.finished_tokens + EXCLUDED.finished_tokens,
                requests = q.requests + EXCLUDED.requests,
                reserved_requests = q.reserved_requests + EXCLUDED.reserved_requests
            RETURNING q.*)
        SELECT array_agg(m) INTO touched FROM moved m WHERE m."window" = 'month';"""


def _settle_function(conn) -> str:
    """0015's function body with its counter statements replaced by `_SETTLE_COUNTERS`."""
    source = conn.exec_driver_sql("SELECT prosrc FROM pg_proc WHERE proname = 'ledger_settles_batch'").scalar_one()
    start = source.index("INSERT INTO quota_usage")
    end = source.index("SELECT array_agg(m) INTO touched FROM moved m WHERE m.\"window\" = 'month';")
    end += len("SELECT array_agg(m) INTO touched FROM moved m WHERE m.\"window\" = 'month';")
    body = source[:start] + _SETTLE_COUNTERS.strip() + source[end:]
    return f"CREATE OR REPLACE FUNCTION ledger_settles_batch() RETURNS trigger LANGUAGE plpgsql AS $fn${body}$fn$"


def upgrade() -> None:
    op.execute("""
        ALTER TABLE tenants
            ADD COLUMN max_call_usd numeric, ADD COLUMN fit_floor_tokens integer,
            ADD COLUMN daily_request_quota bigint, ADD COLUMN monthly_request_quota bigint,
            ADD COLUMN enforcement text NOT NULL DEFAULT 'hard' CHECK (enforcement IN ('hard', 'soft'))
    """)
    op.execute("""
        ALTER TABLE api_keys
            ADD COLUMN max_call_usd numeric, ADD COLUMN fit_floor_tokens integer,
            ADD COLUMN daily_request_quota bigint, ADD COLUMN monthly_request_quota bigint
    """)
    op.execute("ALTER TABLE quota_usage ADD COLUMN requests bigint NOT NULL DEFAULT 0, "
               "ADD COLUMN reserved_requests bigint NOT NULL DEFAULT 0")
    op.execute("ALTER TABLE reservations ADD COLUMN requests integer NOT NULL DEFAULT 0")
    op.execute(_ADD_REQUESTS)
    op.execute(_UNRESERVE)
    op.execute("DROP FUNCTION quota_admit(uuid, bigint, bigint, timestamptz, numeric, bigint, timestamptz)")
    op.execute(_ADMIT)
    op.execute(_settle_function(op.get_bind()))
    # The calls of the periods under way, so that a request quota set now counts them.
    op.execute("""
        UPDATE quota_usage q SET requests = x.calls FROM (
            SELECT s.scope, s.scope_id, w.win, w.period, count(*) AS calls
            FROM ledger_entries e
            JOIN tenants t ON t.id = e.tenant_id
            CROSS JOIN LATERAL quota_periods(e.started_at, t.time_zone) p
            CROSS JOIN LATERAL (VALUES ('day', p.day_start), ('week', p.week_start),
                                       ('month', coalesce(e.quota_period, p.month_start))) w(win, period)
            CROSS JOIN LATERAL (VALUES ('tenant', e.tenant_id), ('key', e.key_id)) s(scope, scope_id)
            WHERE e.started_at >= now() - interval '32 days' AND e.status <> 'credit'
            GROUP BY 1, 2, 3, 4
        ) x
        WHERE q.scope = x.scope AND q.scope_id = x.scope_id AND q."window" = x.win AND q.period_start = x.period
    """)


def downgrade() -> None:
    raise NotImplementedError("0018 changes admission and settlement; restore a backup to go back")
