"""A row the database refuses (a number out of its column's range) goes to the dead letters with its
error; every other call, of every tenant, is still billed: from memory, and after a
restart from the spool the dead process left behind."""

import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import orjson
from sqlalchemy import func, select

from billing.db.keys import issue_key
from billing.db.ledger import entry_row
from billing.db.quota import admit
from billing.db.tables import ledger_dead_letters, ledger_entries, reservations
from billing.db.tenants import create_tenant
from billing.ledger import CallContext, build_entry
from billing.pricebook import ResolvedPrice
from billing.quota import Estimate
from billing.usage import parse_usage
from proxy.observability import metrics
from proxy.durability.ledger_writer import LedgerWriter
from proxy.durability.spool import Spool
from tests.integration.test_database import NOW, priced_version

POISON = 2**31  # first_byte_ms is an integer column (a NUL in text, once the usual poison, is stored as U+FFFD)


def entry(tenant_id: int, key_id: int, version, model: str = "m", first_byte_ms: int = 3):
    call = CallContext(request_id=uuid.uuid4(), tenant_id=tenant_id, key_id=key_id, endpoint="responses",
                       stream=False, started_at=NOW, price=ResolvedPrice(model, "m", version))
    return build_entry(call, parse_usage({"input_tokens": 10, "output_tokens": 5}), status="completed",
                       upstream_response_id="resp_x", finished_at=NOW, first_byte_ms=first_byte_ms)


async def calls_of_two_tenants(engine, tenant_key, version):
    tenant = await create_tenant(engine, "team-b")
    other = await issue_key(engine, "team-b", label="b")
    good = [entry(tenant_key.tenant_id, tenant_key.key_id, version) for _ in range(3)]
    good += [entry(tenant.id, other.id, version) for _ in range(3)]
    bad = entry(tenant_key.tenant_id, tenant_key.key_id, version, first_byte_ms=POISON)
    return good[:3] + [bad] + good[3:], bad


async def write_through_a_writer(engine, tmp_path, entries) -> None:
    """Submit the entries to a ledger writer, wait until it has written them all, and stop it;
    it must never have found the database down."""
    spool = Spool(tmp_path / "spool")
    spool.open()
    writer = LedgerWriter(engine, spool)
    writer.start()
    try:
        for one in entries:
            writer.submit(one)
        await writer.flush(timeout=10)
        assert writer.database_up and writer.backlog == 0
    finally:
        await writer.close()


async def ledger_state(engine):
    async with engine.connect() as conn:
        billed = set((await conn.execute(select(ledger_entries.c.request_id))).scalars())
        dead = (await conn.execute(select(ledger_dead_letters))).all()
    return billed, dead


async def test_a_refused_row_is_dead_lettered_and_everyone_else_is_billed(engine, tenant_key, tmp_path):
    version, _ = await priced_version(engine)
    entries, bad = await calls_of_two_tenants(engine, tenant_key, version)
    await admit(engine, request_id=bad.request_id, tenant_id=tenant_key.tenant_id, key_id=tenant_key.key_id,
                at=NOW, estimate=Estimate(10, 10, Decimal("0.01")),
                expires_at=datetime.now(timezone.utc) + timedelta(minutes=15))
    dead_before = metrics.DEAD_LETTERS.labels("entry")._value.get()
    await write_through_a_writer(engine, tmp_path, entries)  # it does not retry the refused batch forever
    billed, dead = await ledger_state(engine)
    assert billed == {e.request_id for e in entries if e is not bad}
    [letter] = dead
    assert (letter.kind, letter.request_id, letter.tenant_id) == ("entry", str(bad.request_id), tenant_key.tenant_id)
    # the database names what it refused
    assert "out of range" in letter.error and orjson.loads(letter.row_json)["first_byte_ms"] == POISON
    assert metrics.DEAD_LETTERS.labels("entry")._value.get() == dead_before + 1
    async with engine.connect() as conn:  # its reservation is given back, not left to expire
        assert (await conn.execute(select(func.count()).select_from(reservations))).scalar_one() == 0
    assert list((tmp_path / "spool").glob("*.spool")) == []


async def test_a_replayed_spool_with_a_refused_row_bills_the_rest(engine, tenant_key, tmp_path):
    version, _ = await priced_version(engine)
    entries, bad = await calls_of_two_tenants(engine, tenant_key, version)
    directory = tmp_path / "spool"
    directory.mkdir()
    # what a process that died with the poisoned row unwritten left behind
    (directory / "00000000000000000001-99999.spool").write_bytes(b"".join(
        b'{"k":"e","row":' + orjson.dumps(entry_row(one), default=str) + b"}\n" for one in entries))
    for attempt in range(2):  # a second start finds nothing left, and dead-letters nothing twice
        spool = Spool(directory)
        spool.open()
        writer = LedgerWriter(engine, spool)
        try:
            await writer._replay_orphans()
            assert writer.database_up
        finally:
            spool.close()
        billed, dead = await ledger_state(engine)
        assert billed == {e.request_id for e in entries if e is not bad}
        assert [(d.kind, d.request_id) for d in dead] == [("entry", str(bad.request_id))]
        assert list(directory.glob("*.spool")) == []


async def test_a_batch_rolled_back_by_a_deadlock_is_tried_again_not_taken_for_an_outage(engine, tenant_key, tmp_path,
                                                                                     caplog):
    """The server aborts the first batch with SQLSTATE 40P01 (a one-shot trigger counting on a
    sequence, which a rollback does not undo): the writer stores it on the second try, once,
    and never goes into its outage mode."""
    version, _ = await priced_version(engine)
    entries = [entry(tenant_key.tenant_id, tenant_key.key_id, version) for _ in range(5)]
    async with engine.begin() as conn:
        await conn.exec_driver_sql("CREATE SEQUENCE batch_attempts")
        await conn.exec_driver_sql(
            "CREATE FUNCTION fail_first_batch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF nextval('batch_attempts') = 1 THEN "
            "RAISE EXCEPTION 'simulated deadlock' USING ERRCODE = 'deadlock_detected'; END IF; "
            "RETURN NULL; END $$")
        await conn.exec_driver_sql("CREATE TRIGGER fail_first AFTER INSERT ON ledger_entries "
                                   "FOR EACH STATEMENT EXECUTE FUNCTION fail_first_batch()")
    try:
        await write_through_a_writer(engine, tmp_path, entries)
    finally:
        async with engine.begin() as conn:
            attempts = (await conn.exec_driver_sql("SELECT last_value FROM batch_attempts")).scalar_one()
            await conn.exec_driver_sql("DROP TRIGGER fail_first ON ledger_entries")
            await conn.exec_driver_sql("DROP FUNCTION fail_first_batch()")
            await conn.exec_driver_sql("DROP SEQUENCE batch_attempts")
    billed, dead = await ledger_state(engine)
    assert billed == {e.request_id for e in entries} and dead == [] and attempts == 2
    assert "trying it once more" in caplog.text and "database unreachable" not in caplog.text
