"""The export outbox: sinks, the events waiting for them, and tenants held back."""

from sqlalchemy import BigInteger, Boolean, Column, DateTime, ForeignKey, Integer, Table, Text, func
from sqlalchemy.dialects.postgresql import UUID

from billing.db.tables.base import metadata


export_sinks = Table(
    "export_sinks",
    metadata,
    Column("name", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("enabled", Boolean, nullable=False, server_default="true"),
    Column("registered_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

export_outbox = Table(
    "export_outbox",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("sink", Text, ForeignKey("export_sinks.name"), nullable=False),
    Column("kind", Text, nullable=False),  # usage | adjustment
    Column("event_id", UUID(as_uuid=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("tenant_id", BigInteger, nullable=False),
    Column("queued_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    Column("last_error", Text, nullable=True),
)

export_holds = Table(
    "export_holds",
    metadata,
    Column("sink", Text, primary_key=True),
    Column("tenant_id", BigInteger, primary_key=True),
    Column("until", DateTime(timezone=True), nullable=False),
    Column("failures", Integer, nullable=False),
    Column("last_error", Text, nullable=False),
)
