"""What the upstream bills besides tokens: the service tier that served a call, built-in tool
calls and BytePlus cache storage, as ledger columns, rollup sums and prices.

- ledger_entries: service_tier, tool_calls (calls per tool, JSON), cache_storage_tokens and
  cache_storage_hours, cost_tool_calls and cost_cache_storage (both in cost_total);
- ledger_daily: tool_calls (all tools), cost_tool_calls, cost_cache_storage, and the
  service tier as part of its key (an entry without one rolls up as 'default');
- price_versions: tools (USD per 1,000 calls per tool) and cache_storage (USD per 1M
  tokens per hour); price_tiers: the service tier each tier prices ('default' for the
  standard prices every earlier version has).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TOKENS = ("input_tokens", "cached_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")
MONEY = ("cost_uncached_input", "cost_cached_input", "cost_cache_write", "cost_output", "cost_reasoning",
         "cost_total", "charge_total", "cache_savings")
NEW_MONEY = ("cost_tool_calls", "cost_cache_storage")


def _rollup_function(money: tuple[str, ...], with_tools: bool) -> str:
    tokens = TOKENS + (("tool_calls",) if with_tools else ())
    names = ", ".join(tokens + money)
    values = [f"NEW.{c}" for c in TOKENS]
    if with_tools:
        values.append("(SELECT coalesce(sum(value::bigint), 0) FROM jsonb_each_text(NEW.tool_calls))")
    values += [f"NEW.{c}" for c in money]
    increments = ", ".join(f"{c} = d.{c} + EXCLUDED.{c}" for c in ("requests",) + tokens + money +
                           ("estimated_requests", "estimated_charge"))
    tier_column, tier_value = (", service_tier", ", coalesce(NEW.service_tier, 'default')") if with_tools else ("", "")
    return f"""
        CREATE OR REPLACE FUNCTION ledger_rolls_up() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO ledger_daily AS d (day, tenant_id, key_id, model{tier_column}, requests, {names},
                                           estimated_requests, estimated_charge)
            VALUES ((NEW.started_at AT TIME ZONE 'UTC')::date, NEW.tenant_id, NEW.key_id, NEW.model{tier_value}, 1,
                    {", ".join(values)},
                    CASE WHEN NEW.estimated THEN 1 ELSE 0 END, CASE WHEN NEW.estimated THEN NEW.charge_total ELSE 0 END)
            ON CONFLICT (day, tenant_id, key_id, model{tier_column}) DO UPDATE SET {increments};
            RETURN NULL;
        END $$
    """


def upgrade() -> None:
    op.execute("""
        ALTER TABLE ledger_entries
            ADD COLUMN service_tier text,
            ADD COLUMN tool_calls jsonb NOT NULL DEFAULT '{}',
            ADD COLUMN cache_storage_tokens bigint NOT NULL DEFAULT 0,
            ADD COLUMN cache_storage_hours integer NOT NULL DEFAULT 0,
            ADD COLUMN cost_tool_calls numeric NOT NULL DEFAULT 0,
            ADD COLUMN cost_cache_storage numeric NOT NULL DEFAULT 0
    """)
    op.execute("""
        ALTER TABLE ledger_daily
            ADD COLUMN service_tier text NOT NULL DEFAULT 'default',
            ADD COLUMN tool_calls bigint NOT NULL DEFAULT 0,
            ADD COLUMN cost_tool_calls numeric NOT NULL DEFAULT 0,
            ADD COLUMN cost_cache_storage numeric NOT NULL DEFAULT 0,
            DROP CONSTRAINT ledger_daily_pkey,
            ADD PRIMARY KEY (day, tenant_id, key_id, model, service_tier)
    """)
    op.execute(_rollup_function(MONEY + NEW_MONEY, with_tools=True))
    op.execute("ALTER TABLE price_versions ADD COLUMN tools jsonb NOT NULL DEFAULT '{}', "
               "ADD COLUMN cache_storage numeric")
    op.execute("ALTER TABLE price_tiers ADD COLUMN service_tier text NOT NULL DEFAULT 'default'")


def downgrade() -> None:
    op.execute("ALTER TABLE price_tiers DROP COLUMN service_tier")
    op.execute("ALTER TABLE price_versions DROP COLUMN cache_storage, DROP COLUMN tools")
    op.execute(_rollup_function(MONEY, with_tools=False))
    op.execute("ALTER TABLE ledger_daily DROP CONSTRAINT ledger_daily_pkey, DROP COLUMN service_tier, "
               "DROP COLUMN cost_cache_storage, DROP COLUMN cost_tool_calls, DROP COLUMN tool_calls, "
               "ADD PRIMARY KEY (day, tenant_id, key_id, model)")
    op.execute("ALTER TABLE ledger_entries DROP COLUMN cost_cache_storage, DROP COLUMN cost_tool_calls, "
               "DROP COLUMN cache_storage_hours, DROP COLUMN cache_storage_tokens, DROP COLUMN tool_calls, "
               "DROP COLUMN service_tier")
