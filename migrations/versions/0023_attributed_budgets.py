"""Budgets inside a team: for its end users, its tag values and its runs.

- `spend_limits`: a budget per window. `kind` 'user' with no subject is the cap of every
  end user of the tenant; with a subject, that user's own (it replaces the cap for its
  window). `kind` 'tag' names `name=value`. `kind` 'run' is a run budget a key created: its
  subject is the id calls name, its window the whole run, until `expires_at` or `closed_at`.
- `spend_subjects`: the end users, tag values and runs that have counters, so that
  `quota_usage` keeps them under scopes 'user', 'tag' and 'run' (scope_id: the subject).
- `tenants.budgeted_attribution`: what a call must carry for admission to consult these
  ('user', 'tag:NAME'), kept by a trigger so that the proxy's mirror of keys learns it.
- `quota_admit` takes the call's end user, tags and run: their counters are locked after
  the tenant's and the key's (the global lock order: tenant, key, then the subjects by
  scope, id and window), checked and fitted like the others, and held in
  `reservation_holds` (the reservation itself is deleted by the ledger's settlement before
  these are reached). A run budget that is not the key's, or is over, refuses the call.
- `ledger_settles_scoped`, a statement trigger after `ledger_settles_batch` (triggers fire
  in name order), moves each entry's charge into the counters of the subjects it names and
  releases their holds; `quota_unreserve` and `quota_settle` release and shrink holds too.
- Alerts for these counters are recorded like the tenant's: once per threshold and period.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-04
"""

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

EPOCH = "'1970-01-01 00:00:00+00'::timestamptz"

_TABLES = """
    CREATE TABLE spend_limits (
        id bigserial PRIMARY KEY,
        tenant_id bigint NOT NULL REFERENCES tenants(id),
        kind text NOT NULL CHECK (kind IN ('user', 'tag', 'run')),
        subject text,
        "window" text NOT NULL CHECK ("window" IN ('day', 'month', 'run')),
        amount_usd numeric NOT NULL CHECK (amount_usd >= 0),
        label text,
        key_id bigint REFERENCES api_keys(id),
        expires_at timestamptz,
        closed_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        CHECK ((kind = 'run') = ("window" = 'run')),
        CHECK (kind = 'user' OR subject IS NOT NULL),
        CHECK (kind <> 'run' OR (key_id IS NOT NULL AND expires_at IS NOT NULL))
    );
    CREATE UNIQUE INDEX spend_limits_one ON spend_limits (tenant_id, kind, coalesce(subject, ''), "window");
    CREATE UNIQUE INDEX spend_limits_run_id ON spend_limits (subject) WHERE kind = 'run';
    CREATE TABLE spend_subjects (
        id bigserial PRIMARY KEY,
        tenant_id bigint NOT NULL REFERENCES tenants(id),
        kind text NOT NULL CHECK (kind IN ('user', 'tag', 'run')),
        name text NOT NULL,
        UNIQUE (tenant_id, kind, name)
    );
    CREATE TABLE reservation_holds (
        request_id uuid NOT NULL,
        scope text NOT NULL,
        scope_id bigint NOT NULL,
        "window" text NOT NULL,
        period_start timestamptz NOT NULL,
        amount_usd numeric NOT NULL,
        finished boolean NOT NULL DEFAULT false,
        PRIMARY KEY (request_id, scope, scope_id, "window")
    );
    ALTER TABLE tenants ADD COLUMN budgeted_attribution text[] NOT NULL DEFAULT '{}';
    ALTER TABLE ledger_entries ADD COLUMN run_budget text;
    CREATE TYPE wanted_limit AS (kind text, subject text, win text, usd numeric, ends timestamptz);
    CREATE TYPE scoped_limit AS (scope text, scope_id bigint, win text, period timestamptz, name text,
                                 usd_limit numeric, next_start timestamptz, subject text)
"""

# What a call must carry for admission to consult a tenant's attributed budgets.
_BUDGETED = (
    """CREATE FUNCTION spend_limits_mark_tenant() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE tenants t SET budgeted_attribution = coalesce((
            SELECT array_agg(DISTINCT CASE WHEN l.kind = 'user' THEN 'user'
                                           ELSE 'tag:' || split_part(l.subject, '=', 1) END)
            FROM spend_limits l WHERE l.tenant_id = t.id AND l.kind IN ('user', 'tag')), '{}')
        WHERE t.id IN (SELECT tenant_id FROM changed);
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER spend_limits_mark_insert AFTER INSERT ON spend_limits REFERENCING NEW TABLE AS changed
       FOR EACH STATEMENT EXECUTE FUNCTION spend_limits_mark_tenant()""",
    """CREATE TRIGGER spend_limits_mark_delete AFTER DELETE ON spend_limits REFERENCING OLD TABLE AS changed
       FOR EACH STATEMENT EXECUTE FUNCTION spend_limits_mark_tenant()""",
)

# The budgets that weigh one call, each with its counter; subjects made where missing.
_SCOPED_LIMITS = f"""
    CREATE FUNCTION scoped_limits(p_tenant_id bigint, p_key_id bigint, p_user text, p_tags text[], p_run text,
                                  p_day timestamptz, p_month timestamptz, p_day_end timestamptz,
                                  p_month_end timestamptz)
    RETURNS SETOF scoped_limit LANGUAGE plpgsql AS $$
    DECLARE wanted wanted_limit[];
    BEGIN
        SELECT coalesce(array_agg(w), '{{}}') INTO wanted FROM (
            SELECT * FROM (  -- the end user's own budget for a window, else every user's
                SELECT DISTINCT ON (l."window") 'user', p_user, l."window", l.amount_usd, NULL::timestamptz
                FROM spend_limits l
                WHERE p_user IS NOT NULL AND l.tenant_id = p_tenant_id AND l.kind = 'user'
                  AND (l.subject IS NULL OR l.subject = p_user)
                ORDER BY l."window", l.subject NULLS LAST) own
            UNION ALL
            SELECT 'tag', l.subject, l."window", l.amount_usd, NULL
            FROM spend_limits l WHERE p_tags IS NOT NULL AND l.tenant_id = p_tenant_id AND l.kind = 'tag'
                                  AND l.subject = ANY (p_tags)
            UNION ALL
            SELECT 'run', l.subject, 'run', l.amount_usd, l.expires_at
            FROM spend_limits l WHERE p_run IS NOT NULL AND l.kind = 'run' AND l.subject = p_run
                                  AND l.tenant_id = p_tenant_id AND l.key_id = p_key_id
        ) w(kind, subject, win, usd, ends);
        IF cardinality(wanted) = 0 THEN
            RETURN;
        END IF;
        INSERT INTO spend_subjects (tenant_id, kind, name)
            SELECT DISTINCT p_tenant_id, w.kind, w.subject FROM unnest(wanted) w
            WHERE NOT EXISTS (SELECT 1 FROM spend_subjects s
                              WHERE s.tenant_id = p_tenant_id AND s.kind = w.kind AND s.name = w.subject)
            ON CONFLICT DO NOTHING;
        RETURN QUERY
            SELECT w.kind, s.id, w.win,
                   CASE w.win WHEN 'day' THEN p_day WHEN 'month' THEN p_month ELSE {EPOCH} END,
                   CASE WHEN w.win = 'day' THEN w.kind || '_daily' ELSE w.kind END, w.usd,
                   CASE w.win WHEN 'day' THEN p_day_end WHEN 'month' THEN p_month_end ELSE w.ends END, w.subject
            FROM unnest(wanted) w
            JOIN spend_subjects s ON s.tenant_id = p_tenant_id AND s.kind = w.kind AND s.name = w.subject
            ORDER BY w.kind, s.id, w.win;
    END $$
"""

# 0018's quota_admit, with the call's end user, tags and run (the three new parameters),
# their counters locked after the key's, and their holds recorded.
_ADMIT = f"""
    CREATE FUNCTION quota_admit(p_request_id uuid, p_tenant_id bigint, p_key_id bigint, p_at timestamptz,
                                p_usd numeric, p_tokens bigint, p_expires_at timestamptz,
                                p_requests integer DEFAULT 0, p_base_usd numeric DEFAULT NULL,
                                p_unit_usd numeric DEFAULT NULL, p_base_tokens bigint DEFAULT NULL,
                                p_unit_tokens bigint DEFAULT NULL, p_max_units bigint DEFAULT NULL,
                                p_min_units bigint DEFAULT NULL, p_shares integer DEFAULT 1,
                                p_user text DEFAULT NULL, p_tags text[] DEFAULT NULL, p_run text DEFAULT NULL)
    RETURNS TABLE (admitted boolean, refused text, held_by_calls_in_flight boolean, resets_at timestamptz,
                   budget_remaining numeric, tokens_remaining bigint, key_budget_remaining numeric,
                   requests_remaining bigint, units bigint, fitted_by text, refusal_cause text,
                   left_usd numeric, left_tokens bigint, room_usd numeric, room_tokens bigint,
                   refused_subject text, scoped_remaining numeric)
    LANGUAGE plpgsql AS $$
    #variable_conflict use_column
    DECLARE
        ten tenants%ROWTYPE; ky api_keys%ROWTYPE; p record; c record; run spend_limits%ROWTYPE;
        soft boolean; fits boolean; allowed bigint; need_usd numeric; need_tokens bigint;
        reserve_usd numeric; reserve_tokens bigint; scoped scoped_limit[] := '{{}}';
        fitting boolean := p_min_units IS NOT NULL AND p_max_units IS NOT NULL AND p_min_units <= p_max_units;
    BEGIN
        IF p_run IS NOT NULL THEN  -- a run budget narrows only the key that made it, until it ends
            SELECT * INTO run FROM spend_limits l
                WHERE l.kind = 'run' AND l.subject = p_run AND l.tenant_id = p_tenant_id AND l.key_id = p_key_id;
            IF run.id IS NULL OR run.closed_at IS NOT NULL OR run.expires_at <= p_at THEN
                admitted := false; refused := 'run_budget'; refused_subject := p_run;
                refusal_cause := CASE WHEN run.id IS NULL THEN 'unknown' ELSE 'ended' END;
                resets_at := run.expires_at;
                RETURN NEXT;
                RETURN;
            END IF;
        END IF;
        PERFORM quota_expire(p_tenant_id);
        SELECT * INTO ten FROM tenants WHERE id = p_tenant_id;
        SELECT * INTO ky FROM api_keys WHERE id = p_key_id;
        SELECT * INTO p FROM quota_periods(p_at, ten.time_zone);
        INSERT INTO quota_usage (scope, scope_id, "window", period_start, spent_usd, spent_tokens, reserved_usd,
                                 reserved_tokens)
            SELECT scope, scope_id, win, period, 0, 0, 0, 0
            FROM quota_rows(p_tenant_id, p_key_id, p.day_start, p.week_start, p.month_start, ten.prepaid)
            ON CONFLICT DO NOTHING;
        IF p_user IS NOT NULL OR p_tags IS NOT NULL OR p_run IS NOT NULL THEN
            SELECT coalesce(array_agg(s), '{{}}') INTO scoped
                FROM scoped_limits(p_tenant_id, p_key_id, p_user, p_tags, p_run, p.day_start, p.month_start,
                                   p.day_end, p.month_end) s;
            INSERT INTO quota_usage (scope, scope_id, "window", period_start, spent_usd, spent_tokens,
                                     reserved_usd, reserved_tokens)
                SELECT u.scope, u.scope_id, u.win, u.period, 0, 0, 0, 0 FROM unnest(scoped) u
                ON CONFLICT DO NOTHING;
        END IF;
        admitted := true;
        units := p_max_units;
        -- the least a fitted call needs (its input and the floor), else its whole worst case
        need_usd := CASE WHEN fitting THEN p_base_usd + p_min_units * p_unit_usd ELSE p_usd END;
        need_tokens := CASE WHEN fitting THEN p_base_tokens + p_min_units * p_unit_tokens ELSE p_tokens END;
        FOR c IN
            SELECT l.name, l.usd_limit, l.token_limit, l.request_limit, l.next_start, q.spent_usd, q.reserved_usd,
                   q.spent_tokens, q.reserved_tokens, q.finished_usd, q.finished_tokens, q.requests,
                   q.reserved_requests, l.scope, l.subject
            FROM (SELECT * FROM (VALUES
                (1, 'tenant', p_tenant_id, 'day', p.day_start, 'tenant_daily', ten.daily_budget_usd,
                 ten.daily_token_quota, ten.daily_request_quota, p.day_end, NULL::text),
                (2, 'tenant', p_tenant_id, 'week', p.week_start, 'tenant_weekly', ten.weekly_budget_usd,
                 ten.weekly_token_quota, NULL::bigint, p.week_end, NULL),
                (3, 'tenant', p_tenant_id, 'month', p.month_start, 'tenant', ten.monthly_budget_usd,
                 ten.monthly_token_quota, ten.monthly_request_quota, p.month_end, NULL),
                (4, 'tenant', p_tenant_id, 'credit', {EPOCH}, 'tenant_credit',
                 CASE WHEN ten.prepaid THEN ten.credit_usd END, NULL::bigint, NULL::bigint, NULL::timestamptz, NULL),
                (5, 'key', p_key_id, 'day', p.day_start, 'key_daily', ky.daily_budget_usd, NULL::bigint,
                 ky.daily_request_quota, p.day_end, NULL),
                (6, 'key', p_key_id, 'week', p.week_start, 'key_weekly', ky.weekly_budget_usd, NULL::bigint,
                 NULL::bigint, p.week_end, NULL),
                (7, 'key', p_key_id, 'month', p.month_start, 'key', ky.monthly_budget_usd, NULL::bigint,
                 ky.monthly_request_quota, p.month_end, NULL)
            ) v(rank, scope, scope_id, win, period, name, usd_limit, token_limit, request_limit, next_start, subject)
            UNION ALL
            SELECT 8, u.scope, u.scope_id, u.win, u.period, u.name, u.usd_limit, NULL::bigint, NULL::bigint,
                   u.next_start, u.subject FROM unnest(scoped) u
            ) l(rank, scope, scope_id, win, period, name, usd_limit, token_limit, request_limit, next_start, subject)
            JOIN quota_usage q ON q.scope = l.scope AND q.scope_id = l.scope_id AND q."window" = l.win
                              AND q.period_start = l.period
            ORDER BY l.rank, l.scope, l.scope_id, l.win FOR UPDATE OF q
        LOOP
            soft := ten.enforcement = 'soft' AND c.name <> 'tenant_credit';
            IF c.usd_limit IS NOT NULL THEN
                IF c.scope = 'tenant' THEN
                    budget_remaining := least(budget_remaining, c.usd_limit - c.spent_usd - c.reserved_usd);
                ELSIF c.scope = 'key' THEN
                    key_budget_remaining := least(key_budget_remaining, c.usd_limit - c.spent_usd - c.reserved_usd);
                ELSE
                    scoped_remaining := least(scoped_remaining, c.usd_limit - c.spent_usd - c.reserved_usd);
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
                        refused_subject := c.subject;
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
            IF cardinality(scoped) > 0 THEN  -- their counters are held already, in the lock order
                INSERT INTO reservation_holds (request_id, scope, scope_id, "window", period_start, amount_usd)
                    SELECT p_request_id, u.scope, u.scope_id, u.win, u.period, reserve_usd FROM unnest(scoped) u;
                UPDATE quota_usage q SET reserved_usd = q.reserved_usd + reserve_usd,
                                         reserved_requests = q.reserved_requests + 1
                    FROM unnest(scoped) u
                    WHERE q.scope = u.scope AND q.scope_id = u.scope_id AND q."window" = u.win
                      AND q.period_start = u.period;
            END IF;
            budget_remaining := budget_remaining - reserve_usd;
            tokens_remaining := tokens_remaining - reserve_tokens;
            key_budget_remaining := key_budget_remaining - reserve_usd;
            scoped_remaining := scoped_remaining - reserve_usd;
            requests_remaining := requests_remaining - p_requests;
        END IF;
        RETURN NEXT;
    END $$
"""

# A hold leaves its counter with the reservation it belongs to (expired or released).
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
        PERFORM scoped_release(r.request_id);
    END $$
"""

_RELEASE_HOLDS = """
    CREATE FUNCTION scoped_release(p_request_id uuid) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM 1 FROM quota_usage q JOIN reservation_holds h
            ON q.scope = h.scope AND q.scope_id = h.scope_id AND q."window" = h."window"
               AND q.period_start = h.period_start
            WHERE h.request_id = p_request_id ORDER BY q.scope, q.scope_id, q."window" FOR UPDATE OF q;
        WITH released AS (DELETE FROM reservation_holds WHERE request_id = p_request_id RETURNING *)
        UPDATE quota_usage q SET reserved_usd = q.reserved_usd - h.amount_usd,
                                 finished_usd = q.finished_usd - CASE WHEN h.finished THEN h.amount_usd ELSE 0 END,
                                 reserved_requests = q.reserved_requests - 1
        FROM released h
        WHERE q.scope = h.scope AND q.scope_id = h.scope_id AND q."window" = h."window"
          AND q.period_start = h.period_start;
    END $$
"""

# 0013's quota_settle, shrinking the holds of its reservation by the same amount.
_SETTLE = """
    CREATE OR REPLACE FUNCTION quota_settle(p_request_id uuid, p_usd numeric, p_tokens bigint) RETURNS boolean
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
        -- its holds likewise, their counters taken in the lock order (after the reservation,
        -- as the ledger's settlement takes them)
        PERFORM 1 FROM quota_usage q JOIN reservation_holds h
            ON q.scope = h.scope AND q.scope_id = h.scope_id AND q."window" = h."window"
               AND q.period_start = h.period_start
            WHERE h.request_id = p_request_id ORDER BY q.scope, q.scope_id, q."window" FOR UPDATE OF q;
        WITH shrunk AS (UPDATE reservation_holds SET amount_usd = amount_usd - freed_usd, finished = true
                        WHERE request_id = p_request_id RETURNING *)
        UPDATE quota_usage q SET reserved_usd = q.reserved_usd - freed_usd,
                                 finished_usd = q.finished_usd + h.amount_usd
        FROM shrunk h
        WHERE q.scope = h.scope AND q.scope_id = h.scope_id AND q."window" = h."window"
          AND q.period_start = h.period_start;
        RETURN true;
    END $$
"""


def _entry_counters() -> str:
    """Each new entry's charge in the counters of the subjects it names that have one: its
    end user and tag values per day and month (the month its reservation counted in), and
    its run for the whole run."""
    local = "n.started_at AT TIME ZONE n.zone"
    return f"""
        SELECT s.kind AS scope, s.id AS scope_id, w.win, w.period, n.charge_total AS usd,
               n.input_tokens + n.output_tokens AS tokens, (n.status <> 'credit')::int AS calls
        FROM (SELECT n.*, coalesce(t.time_zone, 'UTC') AS zone
              FROM new_rows n LEFT JOIN tenants t ON t.id = n.tenant_id) n
        JOIN LATERAL (
            SELECT 'user' AS kind, n.end_user AS name WHERE n.end_user IS NOT NULL
            UNION ALL SELECT 'run', n.run_budget WHERE n.run_budget IS NOT NULL
            UNION ALL SELECT 'tag', e.key || '=' || e.value
                FROM jsonb_each_text(CASE WHEN jsonb_typeof(n.tags) = 'object' THEN n.tags END) e
                WHERE position('=' IN e.key) = 0
        ) named ON true
        JOIN spend_subjects s ON s.tenant_id = n.tenant_id AND s.kind = named.kind AND s.name = named.name
        CROSS JOIN LATERAL (
            SELECT 'day' AS win, date_trunc('day', {local}) AT TIME ZONE n.zone AS period WHERE s.kind <> 'run'
            UNION ALL SELECT 'month', coalesce(n.quota_period, date_trunc('month', {local}) AT TIME ZONE n.zone)
                WHERE s.kind <> 'run'
            UNION ALL SELECT 'run', {EPOCH} WHERE s.kind = 'run'
        ) w
    """


_SETTLE_SCOPED = f"""
    CREATE FUNCTION ledger_settles_scoped() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE touched quota_usage[];
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM spend_subjects) THEN
            RETURN NULL;  -- no tenant has a budget inside it: nothing to count, nothing held
        END IF;
        WITH released AS (DELETE FROM reservation_holds h USING new_rows n WHERE h.request_id = n.request_id
                          RETURNING h.*),
        moves AS (
            SELECT scope, scope_id, win, period, usd, tokens, calls, 0 AS held, 0 AS finished, 0 AS held_calls
            FROM ({_entry_counters()}) spent
            UNION ALL
            SELECT scope, scope_id, "window", period_start, 0, 0, 0, amount_usd,
                   CASE WHEN finished THEN amount_usd ELSE 0 END, 1
            FROM released),
        moved AS (
            INSERT INTO quota_usage AS q (scope, scope_id, "window", period_start, spent_usd, spent_tokens,
                                          reserved_usd, reserved_tokens, finished_usd, finished_tokens, requests,
                                          reserved_requests)
            SELECT scope, scope_id, win, period, sum(usd), sum(tokens), -sum(held), 0, -sum(finished), 0, sum(calls),
                   -sum(held_calls)
            FROM moves GROUP BY scope, scope_id, win, period ORDER BY scope, scope_id, win, period
            ON CONFLICT (scope, scope_id, "window", period_start) DO UPDATE SET
                spent_usd = q.spent_usd + EXCLUDED.spent_usd, spent_tokens = q.spent_tokens + EXCLUDED.spent_tokens,
                reserved_usd = q.reserved_usd + EXCLUDED.reserved_usd,
                finished_usd = q.finished_usd + EXCLUDED.finished_usd,
                requests = q.requests + EXCLUDED.requests,
                reserved_requests = q.reserved_requests + EXCLUDED.reserved_requests
            RETURNING q.*)
        SELECT array_agg(m) INTO touched FROM moved m;
        PERFORM quota_record_alerts(s.tenant_id, c.scope, c.scope_id, c.period_start,
                                    CASE WHEN c."window" = 'day' THEN 'daily_budget' ELSE 'budget' END,
                                    scoped_limit_of(s.tenant_id, s.kind, s.name, c."window"), c.spent_usd,
                                    t.alert_thresholds)
            FROM unnest(touched) c JOIN spend_subjects s ON s.id = c.scope_id JOIN tenants t ON t.id = s.tenant_id
            WHERE c.spent_usd > 0;
        RETURN NULL;
    END $$
"""

# The budget of one subject for one window (a user's own, else every user's).
_LIMIT_OF = """
    CREATE FUNCTION scoped_limit_of(p_tenant_id bigint, p_kind text, p_name text, p_window text)
    RETURNS numeric LANGUAGE sql STABLE AS $$
        SELECT l.amount_usd FROM spend_limits l
        WHERE l.tenant_id = p_tenant_id AND l.kind = p_kind AND l."window" = p_window
          AND (l.subject = p_name OR (p_kind = 'user' AND l.subject IS NULL))
        ORDER BY l.subject NULLS LAST LIMIT 1
    $$
"""


def upgrade() -> None:
    for statement in _TABLES.split(";\n"):
        op.execute(statement)
    for statement in _BUDGETED:
        op.execute(statement)
    op.execute(_SCOPED_LIMITS)
    op.execute(_LIMIT_OF)
    op.execute("DROP FUNCTION quota_admit(uuid, bigint, bigint, timestamptz, numeric, bigint, timestamptz, integer, "
               "numeric, numeric, bigint, bigint, bigint, bigint, integer)")
    op.execute(_ADMIT)
    op.execute(_RELEASE_HOLDS)
    op.execute(_UNRESERVE)
    op.execute(_SETTLE)
    op.execute(_SETTLE_SCOPED)
    op.execute("CREATE TRIGGER ledger_entries_settle_scoped AFTER INSERT ON ledger_entries "
               "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ledger_settles_scoped()")


def downgrade() -> None:
    raise NotImplementedError("0023 changes admission and settlement; restore a backup to go back")
