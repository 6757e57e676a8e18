"""The audit log: who changed which key, tenant or price, when, and how.

Every change is recorded in the same transaction as the change itself, so the log can
neither miss a change nor record one that did not happen. Secrets never appear in it.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from billing.db.tables import audit_log


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    details: dict[str, Any]


async def record(conn: AsyncConnection, actor: str, action: str, target: str, **details: Any) -> None:
    plain = {k: (str(v) if v is not None and not isinstance(v, (int, str, bool, list)) else v)
             for k, v in details.items()}
    await conn.execute(insert(audit_log).values(actor=actor, action=action, target=target, details=plain))


async def list_audit(engine: AsyncEngine, *, target: str | None = None, limit: int = 100) -> list[AuditRecord]:
    query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if target is not None:
        query = query.where(audit_log.c.target == target)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [AuditRecord(r.id, r.at, r.actor, r.action, r.target, r.details) for r in rows]
