"""The ledger write path: requests hand entries over without waiting; a background task
writes them in batches.

Every entry is first appended to the spool (`proxy/durability/spool.py`), so from the moment a call
is billed it survives a database outage and the process's death. `submit` never blocks and
never fails, so billing cannot slow or break a response. An entry is encoded once, as
the JSON line the spool keeps; the writer inserts up to `batch_size` of those same bytes
per statement, joined into one JSON array the database parses, so no batch is encoded on
the event loop (idempotent on the request id, so a batch retried after an ambiguous
failure never bills twice; one rolled back by a deadlock is tried once more).

A batch the database refuses for what it holds (a value it cannot store) is split until
the refused row is found; that row goes to `ledger_dead_letters` with the error, and the
rest are written. Any other failure means the database is down: the entries held in memory are
dropped (they are on disk), new ones are only spooled, and the writer probes the database
with backoff. Once it answers, the spooled segments are replayed from disk and the writer
goes back to batches from memory. Memory stays bounded however long the outage lasts.
"""

import asyncio
import logging
import time
from collections import deque
from datetime import datetime
from typing import Any

import orjson

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from billing.db.background import register
from billing.db.dead_letters import describe, keep
from billing.db.errors import refused_by_database, rolled_back
from billing.db.ledger import encode_row, entry_row, insert_encoded
from billing.db.prices import load_pricebook
from billing.ledger import LedgerEntry, build_entry, call_from_record
from billing.reasoning_share import ReasoningHistory
from billing.unreported import unreported_usage
from proxy.observability import metrics
from proxy.durability.spool import Replay, Segment, Spool, collect, read_records

log = logging.getLogger(__name__)

ORPHAN_SCAN_SECONDS = 30.0  # how often segments of dead sibling processes are looked for
UNLEARNT = ReasoningHistory()  # a replay after a crash knows no model's habits: the defaults
ENTRY, BACKGROUND, INTERRUPTED = "entry", "background", "interrupted"  # kinds of rows (and of dead letters)
# What the writer stores: (ENTRY, the row as JSON bytes, its start) or (BACKGROUND, the row, None).
Item = tuple[str, Any, datetime | None]
SYNC_SECONDS = 0.1  # the spool is fsynced this often while it is written to (a machine crash loses at most this)


def interrupted_entry(call, record: dict) -> LedgerEntry:
    """A call its process died in: billed from an estimate (`billing.unreported`) of its
    input and of the output its last progress record saw, and, as the upstream's end was
    never seen, the most it may have billed beyond that (its output cap and tools' worst
    case, what its admission reserved)."""
    usage = unreported_usage(call, UNLEARNT, saw_all=False, output_text_bytes=record.get("output_text_bytes", 0))
    return build_entry(call, usage, status="interrupted", upstream_response_id=record.get("upstream_response_id"),
                       finished_at=call.started_at, first_byte_ms=None, estimated=True)


def _read_replay(paths, own: bool) -> tuple[Replay, list[Item]]:
    """What the segments say must be stored, with the final entries ready to insert (run
    in a thread: reading and parsing a spool can take a while)."""
    replay = collect(read_records(paths), own=own)
    return replay, [(ENTRY, orjson.dumps(row), datetime.fromisoformat(row["started_at"]))
                    for row in replay.entries.values()]


class LedgerWriter:
    def __init__(self, engine: AsyncEngine, spool: Spool, *, batch_size: int = 500, max_delay: float = 0.02,
                 max_backoff: float = 5.0):
        self._engine = engine
        self.spool = spool
        self.batch_size = batch_size
        self.max_delay = max_delay
        self.max_backoff = max_backoff
        self.database_up = True
        # (what to store, its segment or None when the disk failed)
        self._pending: deque[tuple[Item, Segment | None]] = deque()
        self._memory_only = 0
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()  # nothing pending, nothing spooled
        self._tasks: list[asyncio.Task] = []
        self._next_orphan_scan = 0.0

    @property
    def backlog(self) -> int:
        """Entries billed and not yet in the database (in memory or only in the spool)."""
        return self.spool.depth + self._memory_only

    def submit(self, entry: LedgerEntry) -> None:
        encoded = encode_row(entry_row(entry))  # once: the same bytes go to the spool and to the database
        self._submit(str(entry.request_id), b"e", encoded, (ENTRY, encoded, entry.started_at))

    def submit_background(self, row: dict) -> None:
        """A background response still running upstream: registered to be polled and billed
        when it ends (`billing.db.background`), with the same durability as an entry."""
        self._submit(str(row["request_id"]), b"q", encode_row(row), (BACKGROUND, row, None))

    def _submit(self, request_id: str, kind: bytes, encoded: bytes, item: Item) -> None:
        segment = self.spool.append_entry(request_id, encoded, kind)
        if self.database_up or segment is None:
            self._pending.append((item, segment))
            self._memory_only += segment is None
        else:
            self.spool.drop_from_memory([segment])
        self._idle.clear()
        self._wake.set()

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(), name="ledger-writer"),
                       asyncio.create_task(self._sync_spool(), name="spool-fsync")]

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until everything submitted so far is in the database."""
        self._wake.set()
        await asyncio.wait_for(self._idle.wait(), timeout)

    async def close(self, timeout: float = 10.0) -> None:
        """Flush what is pending, then stop. What is still unwritten stays in the spool for
        the next start."""
        try:
            await self.flush(timeout)
        except asyncio.TimeoutError:
            log.error("ledger writer stopped with %d entries unwritten; they stay in the spool %s",
                      self.backlog, self.spool.directory)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.to_thread(self.spool.sync)
        self.spool.close()

    async def _run(self) -> None:
        backoff = 0.05
        while True:
            try:
                if time.monotonic() >= self._next_orphan_scan:
                    await self._replay_orphans()
                    self._next_orphan_scan = time.monotonic() + ORPHAN_SCAN_SECONDS
                if not self.database_up:
                    await self._recover()
                await self._write_pending()
                backoff = 0.05
            except Exception:
                self._database_down()
                log.warning("ledger write failed (database unreachable?); %d entries spooled, retrying in "
                            "%.2fs", self.backlog, backoff, exc_info=log.isEnabledFor(logging.DEBUG))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            if not self._pending:
                if self.backlog == 0:
                    self._idle.set()
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), ORPHAN_SCAN_SECONDS)
                except asyncio.TimeoutError:
                    continue
            await asyncio.sleep(self.max_delay)  # let a batch gather: one insert per batch, not per entry

    async def _write_pending(self) -> None:
        """Everything pending now, in batches of at most `batch_size`."""
        for _ in range(-(-len(self._pending) // self.batch_size)):
            batch = [self._pending[i] for i in range(min(self.batch_size, len(self._pending)))]
            started = time.perf_counter()
            await self._store([item for item, _ in batch])
            metrics.LEDGER_FLUSH_SECONDS.observe(time.perf_counter() - started)
            for _ in batch:
                self._pending.popleft()
            per_segment: dict[Segment, int] = {}
            for _, segment in batch:
                if segment is None:
                    self._memory_only -= 1
                else:
                    per_segment[segment] = per_segment.get(segment, 0) + 1
            for segment, count in per_segment.items():
                self.spool.written(segment, count)

    async def _store(self, items: list[Item], *, retried: bool = False) -> int:
        """Insert entries and register background responses, in one transaction; returns how
        many entries were new. A batch the database refuses for what it holds (not for being
        down) is split in halves until the refused rows are found: they go to the dead
        letters, and every other row is stored. A batch rolled back by a deadlock or a
        serialization failure is tried once more."""
        entries = [(payload, at) for kind, payload, at in items if kind == ENTRY]
        try:
            async with self._engine.begin() as conn:
                new = await insert_encoded(conn, [payload for payload, _ in entries], [at for _, at in entries])
                await register(conn, [payload for kind, payload, _ in items if kind == BACKGROUND])
            return new
        except Exception as error:
            if rolled_back(error) and not retried:
                log.warning("a ledger batch was rolled back (%s); trying it once more", describe(error)[:200])
                return await self._store(items, retried=True)
            if not refused_by_database(error):
                raise
            if len(items) == 1:
                kind, payload, _ = items[0]
                await self._dead_letter(kind, orjson.loads(payload) if kind == ENTRY else payload, error)
                return 0
        middle = len(items) // 2
        return await self._store(items[:middle]) + await self._store(items[middle:])

    async def _dead_letter(self, kind: str, row: dict, error: BaseException) -> None:
        async with self._engine.begin() as conn:
            await keep(conn, kind, row, error)
        metrics.DEAD_LETTERS.labels(kind).inc()
        log.error("the database refused the ledger row of call %s (%s): kept in ledger_dead_letters; billing goes "
                  "on for every other call", str(row.get("request_id"))[:64], describe(error)[:300])

    async def _sync_spool(self) -> None:
        while True:
            await asyncio.sleep(SYNC_SECONDS)
            if not self.spool.synced:
                await asyncio.to_thread(self.spool.sync)

    def _database_down(self) -> None:
        if self.database_up:
            log.error("database unreachable: ledger entries go to the spool in %s until it is back",
                      self.spool.directory)
        self.database_up = False
        # Spooled entries are let go (replayed from disk later); one the spool could not take stays.
        self.spool.drop_from_memory({segment for _, segment in self._pending if segment is not None})
        self._pending = deque(pending for pending in self._pending if pending[1] is None)

    async def _recover(self) -> None:
        """The database answers again: replay what was spooled meanwhile, from disk."""
        async with self._engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        self.spool.rotate()  # entries spooled from here on are held in memory again
        self.database_up = True
        replayed = 0
        for segment in self.spool.segments_needing_replay:
            replayed += await self._insert_replay([segment.path], own=True)
            self.spool.replayed(segment)
        log.warning("database reachable again: %d spooled entries replayed", replayed)

    async def _replay_orphans(self) -> None:
        claimed = self.spool.claim_orphans()
        if not claimed:
            return
        try:
            new = await self._insert_replay([path for path, _ in claimed], own=False)
        except BaseException:
            self.spool.release_orphans(claimed, replayed=False)
            raise
        self.spool.release_orphans(claimed, replayed=True)
        log.warning("replayed %d spool segments left by stopped processes: %d entries were missing from the "
                    "ledger", len(claimed), new)

    async def _insert_replay(self, paths, *, own: bool) -> int:
        replay, rows = await asyncio.to_thread(_read_replay, paths, own)
        if replay.interrupted:
            async with self._engine.connect() as conn:
                versions = {v.id: v for v in (await load_pricebook(conn)).all_versions()}
            for record in replay.interrupted.values():
                try:
                    entry = interrupted_entry(call_from_record(record, versions), record)
                    rows.append((ENTRY, encode_row(entry_row(entry)), entry.started_at))
                except (KeyError, TypeError, ValueError) as error:  # a begin record that cannot be priced
                    await self._dead_letter(INTERRUPTED, record, error)
        rows += [(BACKGROUND, row, None) for row in replay.background.values()]
        new = 0
        for start in range(0, len(rows), self.batch_size):
            new += await self._store(rows[start:start + self.batch_size])
        return new
