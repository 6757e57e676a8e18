"""Finance: adjustments, closed months with late entries, and an outbox of exports.

- ledger_adjustments: a credit or a charge to a tenant's month, append-only like the ledger
  (a mistake is corrected by another adjustment, never by an edit).
- month_closes: a month whose statements are frozen, with the totals it was closed at.
  An entry that arrives later for a closed month (a spool replayed days later, a background
  response that ended late) is booked on the day it arrived (`booked_on`, flag `late`):
  the rollups count it in the open month, so a closed statement never changes.
  `ledger_guard_closed_months()` (called by close-month) keeps the trigger that does it.
- ledger_daily: late_requests and late_charge, the part of a day that came late.
- export_sinks and export_outbox: every ledger entry and adjustment is queued for each
  enabled sink in the transaction that writes it (statement-level triggers: one insert
  per batch, nothing when no sink is configured). export_holds: a tenant whose delivery
  to a sink failed waits there, so its later events never overtake the failed one.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-25
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

TOKENS = ("input_tokens", "cached_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")
MONEY = ("cost_uncached_input", "cost_cached_input", "cost_cache_write", "cost_output", "cost_reasoning",
         "cost_total", "charge_total", "cache_savings", "cost_tool_calls", "cost_cache_storage")
COUNTERS = ("requests", *TOKENS, "tool_calls", *MONEY, "estimated_requests", "estimated_charge")


def _rollup_function(day: str, late: bool) -> str:
    late_columns = ", late_requests, late_charge" if late else ""
    late_values = (", CASE WHEN NEW.booked_on IS NULL THEN 0 ELSE 1 END, "
                   "CASE WHEN NEW.booked_on IS NULL THEN 0 ELSE NEW.charge_total END") if late else ""
    counters = COUNTERS + (("late_requests", "late_charge") if late else ())
    increments = ", ".join(f"{c} = d.{c} + EXCLUDED.{c}" for c in counters)
    return f"""
        CREATE OR REPLACE FUNCTION ledger_rolls_up() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO ledger_daily AS d (day, tenant_id, key_id, model, service_tier, requests, {", ".join(TOKENS)},
                                           tool_calls, {", ".join(MONEY)}, estimated_requests, estimated_charge
                                           {late_columns})
            VALUES ({day}, NEW.tenant_id, NEW.key_id, NEW.model, coalesce(NEW.service_tier, 'default'), 1,
                    {", ".join(f"NEW.{c}" for c in TOKENS)},
                    (SELECT coalesce(sum(value::bigint), 0) FROM jsonb_each_text(NEW.tool_calls)),
                    {", ".join(f"NEW.{c}" for c in MONEY)},
                    CASE WHEN NEW.estimated THEN 1 ELSE 0 END, CASE WHEN NEW.estimated THEN NEW.charge_total ELSE 0 END
                    {late_values})
            ON CONFLICT (day, tenant_id, key_id, model, service_tier) DO UPDATE SET {increments};
            RETURN NULL;
        END $$
    """


def upgrade() -> None:
    op.execute("""
        CREATE FUNCTION finance_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% is append-only (% refused)', TG_TABLE_NAME, TG_OP;
        END $$
    """)
    op.execute("""
        CREATE TABLE ledger_adjustments (
            id bigserial PRIMARY KEY,
            event_id uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
            tenant_id bigint NOT NULL REFERENCES tenants(id),
            month date NOT NULL,
            amount_usd numeric NOT NULL,
            reason text NOT NULL,
            actor text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        )
    """)
    op.execute("CREATE INDEX ix_ledger_adjustments_month ON ledger_adjustments (month, tenant_id)")
    op.execute("CREATE TRIGGER ledger_adjustments_append_only BEFORE UPDATE OR DELETE ON ledger_adjustments "
               "FOR EACH ROW EXECUTE FUNCTION finance_is_append_only()")

    op.execute("""
        CREATE TABLE month_closes (
            month date PRIMARY KEY,
            closed_at timestamptz NOT NULL DEFAULT now(),
            actor text NOT NULL,
            totals jsonb NOT NULL
        )
    """)
    op.execute("ALTER TABLE ledger_entries ADD COLUMN booked_on date")
    op.execute("ALTER TABLE ledger_daily ADD COLUMN late_requests bigint NOT NULL DEFAULT 0, "
               "ADD COLUMN late_charge numeric NOT NULL DEFAULT 0")
    # An entry whose month is closed is booked today (UTC), in the open month. The trigger
    # exists only once a month is closed, and fires only for rows that start before the end
    # of the latest closed month (its WHEN clause, rewritten by close-month): entries of the
    # open month, nearly all of them, never call it.
    op.execute("""
        CREATE FUNCTION ledger_books_late() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF EXISTS (SELECT 1 FROM month_closes
                       WHERE month = date_trunc('month', NEW.started_at AT TIME ZONE 'UTC')::date) THEN
                NEW.booked_on := (now() AT TIME ZONE 'UTC')::date;
                NEW.usage_flags := array_append(NEW.usage_flags, 'late');
            END IF;
            RETURN NEW;
        END $$
    """)
    op.execute("""
        CREATE FUNCTION ledger_guard_closed_months() RETURNS void LANGUAGE plpgsql AS $$
        DECLARE boundary timestamptz;
        BEGIN
            SELECT (max(month) + interval '1 month') AT TIME ZONE 'UTC' INTO boundary FROM month_closes;
            DROP TRIGGER IF EXISTS ledger_entries_book_late ON ledger_entries;
            IF boundary IS NOT NULL THEN
                EXECUTE format('CREATE TRIGGER ledger_entries_book_late BEFORE INSERT ON ledger_entries '
                               'FOR EACH ROW WHEN (NEW.started_at < %L::timestamptz) '
                               'EXECUTE FUNCTION ledger_books_late()', boundary);
            END IF;
        END $$
    """)
    op.execute(_rollup_function("coalesce(NEW.booked_on, (NEW.started_at AT TIME ZONE 'UTC')::date)", late=True))

    op.execute("""
        CREATE TABLE export_sinks (
            name text PRIMARY KEY,
            kind text NOT NULL,
            enabled boolean NOT NULL DEFAULT true,
            registered_at timestamptz NOT NULL DEFAULT now()
        )
    """)
    op.execute("""
        CREATE TABLE export_outbox (
            id bigserial PRIMARY KEY,
            sink text NOT NULL REFERENCES export_sinks(name),
            kind text NOT NULL,                -- usage | adjustment
            event_id uuid NOT NULL,            -- the ledger's request id, or the adjustment's event id
            started_at timestamptz,            -- usage: with event_id, the ledger entry's key
            tenant_id bigint NOT NULL,
            queued_at timestamptz NOT NULL DEFAULT now(),
            attempts integer NOT NULL DEFAULT 0,
            delivered_at timestamptz,
            last_error text
        )
    """)
    op.execute("CREATE INDEX ix_export_outbox_pending ON export_outbox (sink, id) WHERE delivered_at IS NULL")
    op.execute("""
        CREATE TABLE export_holds (
            sink text NOT NULL,
            tenant_id bigint NOT NULL,
            until timestamptz NOT NULL,
            failures integer NOT NULL,
            last_error text NOT NULL,
            PRIMARY KEY (sink, tenant_id)
        )
    """)
    op.execute("""
        CREATE FUNCTION ledger_queues_exports() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO export_outbox (sink, kind, event_id, started_at, tenant_id)
            SELECT s.name, 'usage', n.request_id, n.started_at, n.tenant_id
            FROM export_sinks s CROSS JOIN (SELECT * FROM new_rows ORDER BY tenant_id, started_at) n
            WHERE s.enabled;
            RETURN NULL;
        END $$
    """)
    op.execute("CREATE TRIGGER ledger_entries_queue_exports AFTER INSERT ON ledger_entries "
               "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ledger_queues_exports()")
    op.execute("""
        CREATE FUNCTION adjustment_queues_exports() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO export_outbox (sink, kind, event_id, tenant_id)
            SELECT s.name, 'adjustment', n.event_id, n.tenant_id
            FROM export_sinks s CROSS JOIN new_rows n
            WHERE s.enabled AND s.kind <> 'stripe';  -- a Stripe meter counts usage; credits go on the invoice
            RETURN NULL;
        END $$
    """)
    op.execute("CREATE TRIGGER ledger_adjustments_queue_exports AFTER INSERT ON ledger_adjustments "
               "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION adjustment_queues_exports()")


def downgrade() -> None:
    op.execute("DROP TRIGGER ledger_adjustments_queue_exports ON ledger_adjustments")
    op.execute("DROP FUNCTION adjustment_queues_exports()")
    op.execute("DROP TRIGGER ledger_entries_queue_exports ON ledger_entries")
    op.execute("DROP FUNCTION ledger_queues_exports()")
    op.execute("DROP TABLE export_holds, export_outbox, export_sinks")
    op.execute(_rollup_function("(NEW.started_at AT TIME ZONE 'UTC')::date", late=False))
    op.execute("DROP TRIGGER IF EXISTS ledger_entries_book_late ON ledger_entries")
    op.execute("DROP FUNCTION ledger_guard_closed_months()")
    op.execute("DROP FUNCTION ledger_books_late()")
    op.execute("ALTER TABLE ledger_daily DROP COLUMN late_requests, DROP COLUMN late_charge")
    op.execute("ALTER TABLE ledger_entries DROP COLUMN booked_on")
    op.execute("DROP TABLE month_closes, ledger_adjustments")
    op.execute("DROP FUNCTION finance_is_append_only()")
