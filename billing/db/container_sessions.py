"""Container sessions: which containers a reply runs in start a session it must pay for.

The upstream bills a container of code interpreter or hosted shell once per session of
`SESSION` from the session's start. One statement per reply claims, for its tenant, each
container with no session or whose session is over, and returns those: every replica sees
the same answer, and two replies racing for one container pay for it once.
"""

from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

SESSION = timedelta(minutes=20)
_CLAIM = text("""
    INSERT INTO container_sessions AS s (tenant_id, container_id, session_started_at)
    SELECT :tenant, c, :at FROM unnest(CAST(:containers AS text[])) AS c
    ON CONFLICT (tenant_id, container_id) DO UPDATE SET session_started_at = EXCLUDED.session_started_at
        WHERE s.session_started_at <= EXCLUDED.session_started_at - CAST(:session AS interval)
    RETURNING container_id
""")


async def claim_sessions(engine: AsyncEngine, tenant_id: int, containers: list[str], at: datetime) -> set[str]:
    """The containers among `containers` whose session starts now (bill them); the others
    run in a session an earlier reply paid for."""
    claimable = sorted({c for c in containers if 0 < len(c) <= 128 and "\x00" not in c})
    if not claimable:
        return set(containers)  # no name it can be kept under: paid for
    async with engine.begin() as conn:
        rows = await conn.execute(_CLAIM, {"tenant": tenant_id, "containers": claimable, "at": at,
                                           "session": SESSION})
        return {row.container_id for row in rows} | (set(containers) - set(claimable))
