"""Rate-limit buckets and concurrency slots in the database (functions of migration 0013):
each call here is one statement, atomic however many replicas run."""

from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from billing.rate_limit import BucketKey, Withdrawal


@dataclass(frozen=True)
class Withdrawn:
    key: BucketKey
    granted: int  # 0 for every bucket when any could not give what the call needs
    level: int  # requests or tokens left in the bucket after this statement (whole ones)
    wait_seconds: float  # until it holds what the call needs (0: it did)


async def withdraw(engine: AsyncEngine, asks: list[Withdrawal]) -> list[Withdrawn]:
    """Take `want` (at least `need`) from each bucket, or nothing from any."""
    async with engine.begin() as conn:
        rows = (await conn.execute(
            text("SELECT * FROM rate_take(:scopes, :ids, :measures, :limits, :needs, :wants)"),
            {"scopes": [a.key[0] for a in asks], "ids": [a.key[1] for a in asks], "measures": [a.key[2] for a in asks],
             "limits": [a.limit for a in asks], "needs": [a.need for a in asks], "wants": [a.want for a in asks]},
        )).all()
    return [Withdrawn((r.scope, r.scope_id, r.measure), int(r.granted), int(r.level), r.wait_seconds)
            for r in rows]


async def give_back(engine: AsyncEngine, shares: list[tuple[BucketKey, int, int]]) -> None:
    """Return unused (or owed: negative) units of shares: (bucket, limit, units)."""
    if not shares:
        return
    async with engine.begin() as conn:
        await conn.execute(
            text("SELECT rate_return(:scopes, :ids, :measures, :limits, :amounts)"),
            {"scopes": [k[0] for k, _, _ in shares], "ids": [k[1] for k, _, _ in shares],
             "measures": [k[2] for k, _, _ in shares], "limits": [limit for _, limit, _ in shares],
             "amounts": [units for _, _, units in shares]})


async def claim_slot(engine: AsyncEngine, key_id: int, holder: UUID, cap: int, ttl_seconds: float) -> bool:
    async with engine.begin() as conn:
        return (await conn.execute(text("SELECT concurrency_claim(:key, :holder, :cap, :ttl)"),
                                   {"key": key_id, "holder": holder, "cap": cap, "ttl": ttl_seconds})).scalar_one()


async def return_slots(engine: AsyncEngine, key_id: int, holder: UUID, slots: int) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("SELECT concurrency_return(:key, :holder, :slots)"),
                           {"key": key_id, "holder": holder, "slots": slots})


async def renew_slots(engine: AsyncEngine, holder: UUID, ttl_seconds: float) -> None:
    """This replica is alive: its claims last another `ttl_seconds`."""
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE concurrency_claims SET expires_at = now() + make_interval(secs => :ttl) "
                                "WHERE holder = :holder"), {"holder": holder, "ttl": ttl_seconds})
