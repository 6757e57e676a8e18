"""Who may call and at what price: tenants, their keys and secrets, prices and aliases, prepaid
credit, threshold alerts, and the audit log of changes to them."""

from sqlalchemy import BigInteger, Boolean, Column, DateTime, ForeignKey, Integer, Numeric, Table, Text, func
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from billing.db.tables.base import metadata, revision_column


tenants = Table(
    "tenants",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("name_key", Text, nullable=False, unique=True),  # the name as compared: NFKC, case folded
    Column("status", Text, nullable=False, server_default="active"),
    Column("monthly_budget_usd", Numeric, nullable=True),
    Column("monthly_token_quota", BigInteger, nullable=True),
    Column("price_multiplier", Numeric, nullable=False, server_default="1"),  # markup or discount
    Column("time_zone", Text, nullable=False, server_default="UTC"),  # where its month begins
    Column("alert_thresholds", ARRAY(Integer), nullable=False, server_default="{50,80,100}"),  # percent
    Column("daily_budget_usd", Numeric, nullable=True),
    Column("weekly_budget_usd", Numeric, nullable=True),
    Column("daily_token_quota", BigInteger, nullable=True),
    Column("weekly_token_quota", BigInteger, nullable=True),
    Column("requests_per_minute", Integer, nullable=True),
    Column("tokens_per_minute", BigInteger, nullable=True),
    Column("prepaid", Boolean, nullable=False, server_default="false"),  # spends a credit balance
    Column("credit_usd", Numeric, nullable=False, server_default="0"),  # every top-up so far
    Column("max_call_usd", Numeric, nullable=True),  # the most one call may cost
    Column("fit_floor_tokens", Integer, nullable=True),  # a call is not fitted below this output cap
    Column("daily_request_quota", BigInteger, nullable=True),  # calls
    Column("monthly_request_quota", BigInteger, nullable=True),
    Column("enforcement", Text, nullable=False, server_default="hard"),  # hard | soft
    # what it budgets inside it ('user', 'tag:NAME'), kept from spend_limits by a trigger
    Column("budgeted_attribution", ARRAY(Text), nullable=False, server_default="{}"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    revision_column(),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("tenant_id", BigInteger, ForeignKey("tenants.id"), nullable=False, index=True),
    Column("display_prefix", Text, nullable=False),  # of the newest secret
    Column("label", Text, nullable=True),
    Column("allowed_models", ARRAY(Text), nullable=True),  # names or patterns; None: any model
    Column("monthly_budget_usd", Numeric, nullable=True),
    Column("daily_budget_usd", Numeric, nullable=True),
    Column("weekly_budget_usd", Numeric, nullable=True),
    Column("requests_per_minute", Integer, nullable=True),
    Column("tokens_per_minute", BigInteger, nullable=True),
    Column("max_concurrent", Integer, nullable=True),
    Column("max_call_usd", Numeric, nullable=True),
    Column("fit_floor_tokens", Integer, nullable=True),
    Column("daily_request_quota", BigInteger, nullable=True),
    Column("monthly_request_quota", BigInteger, nullable=True),
    Column("status", Text, nullable=False, server_default="active"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    revision_column(),
)

api_key_secrets = Table(
    "api_key_secrets",
    metadata,
    Column("secret_hash", Text, primary_key=True),  # SHA-256 of the secret; the secret is never stored
    Column("key_id", BigInteger, ForeignKey("api_keys.id"), nullable=False, index=True),
    Column("display_prefix", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("valid_until", DateTime(timezone=True), nullable=True),  # a rotated-away secret's grace end
    revision_column(),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("target", Text, nullable=False),
    Column("details", JSONB, nullable=False, server_default="{}"),
)

price_versions = Table(
    "price_versions",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("model", Text, nullable=False, index=True),
    Column("effective_from", DateTime(timezone=True), nullable=False),
    Column("source", Text, nullable=False),
    Column("fingerprint", Text, nullable=True, unique=True),
    Column("tenant_id", BigInteger, ForeignKey("tenants.id"), nullable=True),  # a tenant's own price
    Column("max_output_tokens", BigInteger, nullable=True),  # the model's output cap, for quota estimates
    Column("tools", JSONB, nullable=False, server_default="{}"),  # USD per 1,000 calls per tool (0009)
    Column("cache_storage", Numeric, nullable=True),  # USD per 1M tokens per hour stored
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    revision_column(),
)

price_tiers = Table(
    "price_tiers",
    metadata,
    Column("version_id", BigInteger, ForeignKey("price_versions.id"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("service_tier", Text, nullable=False, server_default="default"),  # default | flex | priority | ...
    Column("up_to_input_tokens", BigInteger, nullable=True),
    Column("input", Numeric, nullable=False),
    Column("output", Numeric, nullable=False),
    Column("cached", Numeric, nullable=True),
    Column("cache_write", Numeric, nullable=True),
    Column("reasoning", Numeric, nullable=True),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("alias", Text, primary_key=True),
    Column("model", Text, nullable=False),
    Column("source", Text, nullable=False),
    revision_column(),
)


credit_topups = Table(
    "credit_topups",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("tenant_id", BigInteger, ForeignKey("tenants.id"), nullable=False),
    Column("amount_usd", Numeric, nullable=False),
    Column("reason", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Budgets inside a tenant (migration 0023): every end user's cap, a named user's, a tag
# value's, and run budgets made with a key; their counters are kept per subject.
spend_limits = Table(
    "spend_limits",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("tenant_id", BigInteger, ForeignKey("tenants.id"), nullable=False),
    Column("kind", Text, nullable=False),  # user | tag | run
    Column("subject", Text, nullable=True),  # the user (None: every user), `name=value`, or the run's id
    Column("window", Text, nullable=False),  # day | month | run
    Column("amount_usd", Numeric, nullable=False),
    Column("label", Text, nullable=True),
    Column("key_id", BigInteger, ForeignKey("api_keys.id"), nullable=True),  # a run's: the key that made it
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("closed_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

spend_subjects = Table(
    "spend_subjects",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("tenant_id", BigInteger, ForeignKey("tenants.id"), nullable=False),
    Column("kind", Text, nullable=False),
    Column("name", Text, nullable=False),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("tenant_id", BigInteger, ForeignKey("tenants.id"), nullable=False),
    Column("scope", Text, nullable=False),
    Column("scope_id", BigInteger, nullable=False),
    Column("period_start", DateTime(timezone=True), nullable=False),
    Column("limit_kind", Text, nullable=False),
    Column("threshold", Integer, nullable=False),
    Column("limit_value", Numeric, nullable=False),
    Column("spent", Numeric, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("planned_at", DateTime(timezone=True), nullable=True),  # its delivery rows made
    Column("forecast_usd", Numeric, nullable=True),  # a forecast alert's projected month end
)

# One per alert, channel and destination: each retried on its own.
alert_deliveries = Table(
    "alert_deliveries",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("alert_id", BigInteger, ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False),
    Column("channel", Text, nullable=False),  # webhook | slack | email
    Column("destination", Text, nullable=False),  # 'operator' | 'tenant' (a URL's owner) | an address
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# A tenant's own alert destinations, besides the operator's.
alert_destinations = Table(
    "alert_destinations",
    metadata,
    Column("tenant_id", BigInteger, ForeignKey("tenants.id"), primary_key=True),
    Column("slack_url", Text, nullable=True),  # an incoming webhook: a secret, never listed in full
    Column("emails", ARRAY(Text), nullable=False, server_default="{}"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
