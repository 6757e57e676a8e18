"""Container sessions: which containers a reply runs in start a session it must pay for,
and which containers a tenant's calls made (the only ones it may name).

The upstream bills a container of code interpreter or hosted shell once per session of
`SESSION` from the session's start. One statement per reply claims, for its tenant, each
container with no session or whose session is over, and answers for each container the
unit it was made as and whether this reply starts a session: every replica sees the same
answer, and two replies racing for one container pay for it once.

The clock is conservative both ways: a session is taken to start when the call that
claimed it started (the upstream's began no earlier), and a later call is within it only
if that call ended before the session's end (it may have used the container at its end).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

SESSION = timedelta(minutes=20)
MAX_CONTAINER_CHARS = 128
_CLAIM = text("""
    WITH claimed AS (
        INSERT INTO container_sessions AS s (tenant_id, container_id, session_started_at, unit, claimed_by)
        SELECT :tenant, c.id, :started, c.unit, :request
        FROM unnest(CAST(:containers AS text[]), CAST(:units AS text[])) AS c(id, unit)
        ON CONFLICT (tenant_id, container_id) DO UPDATE
            SET session_started_at = EXCLUDED.session_started_at, claimed_by = EXCLUDED.claimed_by
            WHERE s.claimed_by IS NOT DISTINCT FROM EXCLUDED.claimed_by
               OR s.session_started_at <= CAST(:ended AS timestamptz) - CAST(:session AS interval)
        RETURNING container_id, unit
    )
    SELECT container_id, unit, true AS starts FROM claimed
    UNION ALL
    SELECT container_id, unit, false FROM container_sessions
    WHERE tenant_id = :tenant AND container_id = ANY(CAST(:containers AS text[]))
      AND container_id NOT IN (SELECT container_id FROM claimed)
""")
_OWNED = text("""
    SELECT container_id, unit FROM container_sessions
    WHERE tenant_id = :tenant AND container_id = ANY(CAST(:containers AS text[]))
""")


@dataclass(frozen=True)
class ContainerCall:
    tenant_id: int
    request_id: UUID
    started_at: datetime
    ended_at: datetime


def claimable(container: str) -> bool:
    return 0 < len(container) <= MAX_CONTAINER_CHARS and "\x00" not in container


async def claim_sessions(engine: AsyncEngine, call: ContainerCall,
                         containers: tuple[tuple[str, str], ...]) -> dict[str, tuple[str, bool]]:
    """For each of `containers` ((id, unit) a reply ran in): the unit it was made as, and
    whether this call starts its session (bill it). A container no name can be kept under
    is billed as it is."""
    kept = {container: unit for container, unit in containers if claimable(container)}
    known = {container: (unit, True) for container, unit in containers if container not in kept}
    if not kept:
        return known
    async with engine.begin() as conn:
        rows = await conn.execute(_CLAIM, {
            "tenant": call.tenant_id, "containers": list(kept), "units": list(kept.values()),
            "started": call.started_at, "ended": call.ended_at, "session": SESSION, "request": call.request_id})
        seen = {row.container_id: (row.unit, row.starts) for row in rows}
    # A container missing from both answers was claimed by a call racing this one (its row
    # is newer than this statement's snapshot): that call pays for the session.
    return known | {container: seen.get(container, (unit, False)) for container, unit in kept.items()}


async def owned_containers(engine: AsyncEngine, tenant_id: int, containers: list[str]) -> dict[str, str]:
    """The containers among `containers` that the tenant's calls made, with the unit each
    was made as."""
    wanted = sorted({c for c in containers if claimable(c)})
    if not wanted:
        return {}
    async with engine.connect() as conn:
        rows = await conn.execute(_OWNED, {"tenant": tenant_id, "containers": wanted})
        return {row.container_id: row.unit for row in rows}
