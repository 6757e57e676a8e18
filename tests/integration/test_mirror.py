"""Keys are checked from memory, yet changes reach the mirror within about a second."""

import asyncio
import time

from billing.db.keys import issue_key, revoke_key
from billing.db.tenants import update_tenant
from billing.keys import hash_secret
from proxy.gateway.mirror import Mirror


async def wait_until(predicate, timeout=3.0) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)
    return time.monotonic() - started


async def test_revocation_and_suspension_reach_the_mirror_quickly(engine, database_url, tenant_key):
    mirror = Mirror(engine, database_url, interval=1.0)
    await mirror.start()
    try:
        secret_hash = hash_secret(tenant_key.secret)
        assert mirror.grant(secret_hash).key_status == "active"

        await revoke_key(engine, tenant_key.key_id)
        took = await wait_until(lambda: mirror.grant(secret_hash).key_status == "revoked")
        assert took < 1.5

        other = await issue_key(engine, tenant_key.tenant)
        await update_tenant(engine, tenant_key.tenant, status="suspended")
        await wait_until(lambda: (g := mirror.grant(hash_secret(other.secret))) is not None
                         and g.tenant_status == "suspended")
    finally:
        await mirror.stop()


async def test_a_key_issued_a_moment_ago_is_found_by_one_sync(engine, database_url, tenant_key):
    mirror = Mirror(engine, database_url, interval=30.0)  # no periodic sync would come in time
    await mirror.start()
    try:
        fresh = await issue_key(engine, tenant_key.tenant)
        grant = mirror.grant(hash_secret(fresh.secret)) or await mirror.grant_after_sync(hash_secret(fresh.secret))
        assert grant is not None and grant.key_id == fresh.id
        assert await mirror.grant_after_sync(hash_secret("bpk_unknown")) is None
    finally:
        await mirror.stop()
