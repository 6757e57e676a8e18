"""Entries for streams that ended without usage (an `error` event, or cut before any
terminal event): priced from a token estimate, flagged `estimated`, and counted
separately in the rollups so reports can show them apart.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TOKENS = ("input_tokens", "cached_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")
MONEY = ("cost_uncached_input", "cost_cached_input", "cost_cache_write", "cost_output", "cost_reasoning",
         "cost_total", "charge_total", "cache_savings")


def _rollup_function(extra_columns: str, extra_values: str, extra_updates: str) -> str:
    names = ", ".join(TOKENS + MONEY)
    new_values = ", ".join(f"NEW.{c}" for c in TOKENS + MONEY)
    increments = ", ".join(f"{c} = d.{c} + EXCLUDED.{c}" for c in ("requests",) + TOKENS + MONEY)
    return f"""
        CREATE OR REPLACE FUNCTION ledger_rolls_up() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO ledger_daily AS d (day, tenant_id, key_id, model, requests, {names}{extra_columns})
            VALUES ((NEW.started_at AT TIME ZONE 'UTC')::date, NEW.tenant_id, NEW.key_id, NEW.model, 1,
                    {new_values}{extra_values})
            ON CONFLICT (day, tenant_id, key_id, model) DO UPDATE SET {increments}{extra_updates};
            RETURN NULL;
        END $$
    """


def upgrade() -> None:
    op.execute("ALTER TABLE ledger_entries ADD COLUMN estimated boolean NOT NULL DEFAULT false")
    op.execute("ALTER TABLE ledger_daily ADD COLUMN estimated_requests bigint NOT NULL DEFAULT 0")
    op.execute("ALTER TABLE ledger_daily ADD COLUMN estimated_charge numeric NOT NULL DEFAULT 0")
    op.execute(_rollup_function(
        ", estimated_requests, estimated_charge",
        ", CASE WHEN NEW.estimated THEN 1 ELSE 0 END, CASE WHEN NEW.estimated THEN NEW.charge_total ELSE 0 END",
        ", estimated_requests = d.estimated_requests + EXCLUDED.estimated_requests"
        ", estimated_charge = d.estimated_charge + EXCLUDED.estimated_charge"))


def downgrade() -> None:
    op.execute(_rollup_function("", "", ""))
    op.execute("ALTER TABLE ledger_daily DROP COLUMN estimated_charge")
    op.execute("ALTER TABLE ledger_daily DROP COLUMN estimated_requests")
    op.execute("ALTER TABLE ledger_entries DROP COLUMN estimated")
