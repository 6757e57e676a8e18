"""A background response queued while the database was unreachable, or by a process that
died, reaches `background_responses` from the spool, once, keeping its reservation."""

import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import orjson
from sqlalchemy import select

from billing.catalog import load_catalog, shipped_catalog_path
from billing.db.background import claim_due, register
from billing.db.prices import load_pricebook, sync_catalog
from billing.db.quota import admit
from billing.db.tables import background_responses, reservations, response_owners
from billing.ledger import CallContext, call_record
from billing.quota import Estimate
from proxy.durability.ledger_writer import LedgerWriter
from proxy.durability.spool import Spool

NOW = datetime.now(timezone.utc)


async def queued_row(engine, tenant_key, response_id: str) -> dict:
    await sync_catalog(engine, load_catalog(shipped_catalog_path()))
    async with engine.connect() as conn:
        price = (await load_pricebook(conn)).resolve("gpt-5", NOW)
    call = CallContext(uuid.uuid4(), tenant_key.tenant_id, tenant_key.key_id, "responses", False, NOW, price)
    return {"request_id": str(call.request_id), "response_id": response_id, "tenant_id": call.tenant_id,
            "upstream": "default", "call": call_record(call), "first_byte_ms": 3}


async def test_an_orphaned_spool_registers_its_queued_background_responses(engine, tenant_key, tmp_path):
    row = await queued_row(engine, tenant_key, "resp_orphaned")
    await admit(engine, request_id=uuid.UUID(row["request_id"]), tenant_id=tenant_key.tenant_id,
                key_id=tenant_key.key_id, at=NOW, estimate=Estimate(10, 10, Decimal("0.01")),
                expires_at=datetime.now(timezone.utc) + timedelta(minutes=15))
    directory = tmp_path / "spool"
    directory.mkdir()
    # what a process that died after queueing the call left behind: a begin and a queued record
    (directory / "00000000000000000001-99999.spool").write_bytes(
        b'{"k":"b","row":' + orjson.dumps(row["call"]) + b'}\n{"k":"q","row":' + orjson.dumps(row) + b"}\n")
    spool = Spool(directory)
    spool.open()
    writer = LedgerWriter(engine, spool)
    try:
        await writer._replay_orphans()
        await writer._replay_orphans()  # nothing left to replay, and nothing twice
    finally:
        spool.close()
    async with engine.connect() as conn:
        queued = (await conn.execute(select(background_responses))).all()
        owner = (await conn.execute(select(response_owners.c.tenant_id))).scalar_one()
        held = (await conn.execute(select(reservations.c.expires_at))).scalar_one()
    assert [(q.response_id, q.settled_at) for q in queued] == [("resp_orphaned", None)]
    assert owner == tenant_key.tenant_id
    assert held > NOW + timedelta(hours=23)  # the reservation outlives the usual expiry
    assert list(directory.glob("*.spool")) == []  # the orphan was replayed and removed
    [claimed] = await claim_due(engine, 10, 60)
    assert claimed["response_id"] == "resp_orphaned" and await claim_due(engine, 10, 60) == []  # one poller


async def test_registering_twice_changes_nothing(engine, tenant_key):
    row = await queued_row(engine, tenant_key, "resp_twice")
    for _ in range(2):
        async with engine.begin() as conn:
            await register(conn, [row])
    async with engine.connect() as conn:
        assert len((await conn.execute(select(background_responses))).all()) == 1
