"""What calls cost: the ledger, its daily roll-ups, adjustments and closed months, the quota
counters and reservations, response owners, background responses, dead letters."""

from sqlalchemy import BigInteger, Boolean, Column, Date, DateTime, ForeignKey, Integer, Numeric, Table, Text, func
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from billing.db.tables.base import metadata


ledger_entries = Table(
    "ledger_entries",
    metadata,
    # Partitioned by month of started_at (migration 0005), hence the two-column key.
    Column("request_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", BigInteger, ForeignKey("tenants.id"), nullable=False),
    Column("key_id", BigInteger, ForeignKey("api_keys.id"), nullable=False),
    Column("endpoint", Text, nullable=False),
    Column("requested_model", Text, nullable=False),
    Column("model", Text, nullable=False),
    Column("price_version_id", BigInteger, ForeignKey("price_versions.id"), nullable=True),
    Column("upstream_response_id", Text, nullable=True),
    Column("status", Text, nullable=False),
    Column("stream", Boolean, nullable=False),
    Column("started_at", DateTime(timezone=True), primary_key=True),
    Column("finished_at", DateTime(timezone=True), nullable=False),
    Column("first_byte_ms", Integer, nullable=True),
    Column("input_tokens", BigInteger, nullable=False),
    Column("cached_tokens", BigInteger, nullable=False),
    Column("cache_write_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("reasoning_tokens", BigInteger, nullable=False),
    Column("service_tier", Text, nullable=True),  # as the upstream reported it (migration 0009)
    Column("tool_calls", JSONB, nullable=False, server_default="{}"),  # calls per built-in tool
    Column("cache_storage_tokens", BigInteger, nullable=False, server_default="0"),  # kept cached upstream...
    Column("cache_storage_hours", Integer, nullable=False, server_default="0"),  # ...this long (< 0: credit)
    Column("cost_uncached_input", Numeric, nullable=False),
    Column("cost_cached_input", Numeric, nullable=False),
    Column("cost_cache_write", Numeric, nullable=False),
    Column("cost_output", Numeric, nullable=False),
    Column("cost_reasoning", Numeric, nullable=False),
    Column("cost_tool_calls", Numeric, nullable=False, server_default="0"),
    Column("cost_cache_storage", Numeric, nullable=False, server_default="0"),
    Column("cost_total", Numeric, nullable=False),  # what the upstream charges us
    Column("price_multiplier", Numeric, nullable=False, server_default="1"),
    Column("charge_price_version_id", BigInteger, ForeignKey("price_versions.id"), nullable=True),
    Column("charge_total", Numeric, nullable=False),  # what the tenant is charged
    Column("cache_savings", Numeric, nullable=False),  # cached tokens at the input price, minus their cost
    Column("estimated", Boolean, nullable=False, server_default="false"),  # usage_missing: priced from an estimate
    Column("upstream", Text, nullable=False, server_default="default"),  # which configured upstream served it
    Column("quota_period", DateTime(timezone=True), nullable=True),  # start of the tenant's month it counts in
    Column("usage_flags", ARRAY(Text), nullable=False, server_default="{}"),
    Column("booked_on", Date, nullable=True),  # set by a trigger when its month was closed (migration 0014)
    Column("raw_usage", JSONB, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("end_user", Text, nullable=True),  # who inside the team it was for (migration 0022)
    Column("tags", JSONB, nullable=True),  # its tags: name -> value (null: none, or spooled before tags)
    Column("run_budget", Text, nullable=True),  # the run budget it was charged to (migration 0023)
)

# Kept by the quota_* functions and the ledger's settlement trigger (migration 0004).
quota_usage = Table(
    "quota_usage",
    metadata,
    Column("scope", Text, primary_key=True),  # 'tenant' | 'key'
    Column("scope_id", BigInteger, primary_key=True),
    Column("window", Text, primary_key=True),  # day | week | month | credit (never resets)
    Column("period_start", DateTime(timezone=True), primary_key=True),
    Column("spent_usd", Numeric, nullable=False),
    Column("spent_tokens", BigInteger, nullable=False),
    Column("reserved_usd", Numeric, nullable=False),
    Column("reserved_tokens", BigInteger, nullable=False),
    # the part of what is reserved that calls already finished hold (their actual charge,
    # until their ledger entries settle it)
    Column("finished_usd", Numeric, nullable=False),
    Column("finished_tokens", BigInteger, nullable=False),
    Column("requests", BigInteger, nullable=False, server_default="0"),  # calls settled in the period
    Column("reserved_requests", BigInteger, nullable=False, server_default="0"),  # calls in flight
)

reservations = Table(
    "reservations",
    metadata,
    Column("request_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", BigInteger, nullable=False),
    Column("key_id", BigInteger, nullable=False),
    Column("period_start", DateTime(timezone=True), nullable=False),  # of its month
    Column("day_start", DateTime(timezone=True), nullable=True),
    Column("week_start", DateTime(timezone=True), nullable=True),
    Column("prepaid", Boolean, nullable=False),  # reserved against the credit balance too
    Column("finished", Boolean, nullable=False),  # the call ended: it holds its actual charge
    Column("amount_usd", Numeric, nullable=False),
    Column("tokens", BigInteger, nullable=False),
    Column("requests", Integer, nullable=False, server_default="0"),  # calls it counts against request quotas
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)


_DAILY_TOKENS = ("input_tokens", "cached_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens",
                 "tool_calls")
_DAILY_MONEY = ("cost_uncached_input", "cost_cached_input", "cost_cache_write", "cost_output", "cost_reasoning",
                "cost_tool_calls", "cost_cache_storage", "cost_total", "charge_total", "cache_savings")


def _daily_counters() -> list[Column]:
    """The counters of every daily roll-up: calls, tokens, money, and of which estimated
    (usage_missing, migration 0007) and booked late, their month closed (0014)."""
    return [Column("requests", BigInteger, nullable=False),
            *[Column(name, BigInteger, nullable=False) for name in _DAILY_TOKENS],
            *[Column(name, Numeric, nullable=False) for name in _DAILY_MONEY],
            Column("estimated_requests", BigInteger, nullable=False),
            Column("estimated_charge", Numeric, nullable=False),
            Column("late_requests", BigInteger, nullable=False), Column("late_charge", Numeric, nullable=False)]


# Daily rollups per tenant, key and model, kept by a ledger trigger (migration 0005).
ledger_daily = Table(
    "ledger_daily",
    metadata,
    Column("day", Date, primary_key=True),
    Column("tenant_id", BigInteger, primary_key=True),
    Column("key_id", BigInteger, primary_key=True),
    Column("model", Text, primary_key=True),
    Column("service_tier", Text, primary_key=True),  # as the reply reported it; 'default' when it did not
    *_daily_counters(),
)

# ledger_daily's key and counters per end user (null: entries without one; migration 0024).
ledger_daily_users = Table(
    "ledger_daily_users",
    metadata,
    Column("day", Date, nullable=False),
    Column("tenant_id", BigInteger, nullable=False),
    Column("key_id", BigInteger, nullable=False),
    Column("model", Text, nullable=False),
    Column("service_tier", Text, nullable=False),
    Column("end_user", Text, nullable=True),
    *_daily_counters(),
)

# ...and per tag name and value: an entry counts once per tag it has, not at all without (0024).
ledger_daily_tags = Table(
    "ledger_daily_tags",
    metadata,
    Column("tag_name", Text, primary_key=True),
    Column("day", Date, primary_key=True),
    Column("tenant_id", BigInteger, primary_key=True),
    Column("key_id", BigInteger, primary_key=True),
    Column("model", Text, primary_key=True),
    Column("service_tier", Text, primary_key=True),
    Column("tag_value", Text, primary_key=True),
    *_daily_counters(),
)

# Which tenant created a response id (filled by a ledger trigger, migration 0006).
response_owners = Table(
    "response_owners",
    metadata,
    Column("response_id", Text, primary_key=True),
    Column("tenant_id", BigInteger, ForeignKey("tenants.id"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("upstream", Text, nullable=False),
    Column("context_tokens", BigInteger, nullable=True),  # input + output of the response (migration 0012)
)

# Containers whose 20-minute session a ledger entry paid for, per tenant (migration 0020).
container_sessions = Table(
    "container_sessions",
    metadata,
    Column("tenant_id", BigInteger, ForeignKey("tenants.id"), primary_key=True),
    Column("container_id", Text, primary_key=True),
    Column("session_started_at", DateTime(timezone=True), nullable=False),
)

# Background responses waiting for their true usage (migration 0010).
background_responses = Table(
    "background_responses",
    metadata,
    Column("request_id", UUID(as_uuid=True), primary_key=True),
    Column("response_id", Text, nullable=False, unique=True),
    Column("tenant_id", BigInteger, ForeignKey("tenants.id"), nullable=False),
    Column("upstream", Text, nullable=False),
    Column("call", JSONB, nullable=False),  # the spool's begin record: enough to price the call
    Column("first_byte_ms", Integer, nullable=True),
    Column("queued_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("polls", Integer, nullable=False, server_default="0"),
    Column("next_poll_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("claimed_until", DateTime(timezone=True), nullable=True),
    Column("last_status", Text, nullable=True),
    Column("settled_at", DateTime(timezone=True), nullable=True),
)

# Rows the database refused for what they hold (migration 0011); see billing/db/dead_letters.py.
ledger_dead_letters = Table(
    "ledger_dead_letters",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("kind", Text, nullable=False),  # entry | background | interrupted
    Column("request_id", Text, nullable=False),
    Column("tenant_id", BigInteger, nullable=True),
    Column("row_json", Text, nullable=False),  # JSON text: it can hold what jsonb refuses (a NUL)
    Column("error", Text, nullable=False),
    Column("failed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Finance (migration 0014): adjustments, closed months, and the outbox of exports.
ledger_adjustments = Table(
    "ledger_adjustments",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),  # its id in exports
    Column("tenant_id", BigInteger, ForeignKey("tenants.id"), nullable=False),
    Column("month", Date, nullable=False),  # first day of the month it adjusts
    Column("amount_usd", Numeric, nullable=False),  # > 0 a charge, < 0 a credit
    Column("reason", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

month_closes = Table(
    "month_closes",
    metadata,
    Column("month", Date, primary_key=True),
    Column("closed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("actor", Text, nullable=False),
    Column("totals", JSONB, nullable=False),  # per tenant: requests, charge, adjustments, total
)
