"""The ledger write path: requests hand entries over without waiting; a background task
writes them in batches.

`submit` never blocks and never fails, so billing cannot slow or break a response. The
writer inserts up to `batch_size` entries per statement (idempotent on the request id, so
a batch retried after an ambiguous failure never bills twice) and keeps entries it could
not write, retrying with backoff. Entries are dropped from memory only after their batch
committed.
"""

import asyncio
import logging
from collections import deque

from sqlalchemy.ext.asyncio import AsyncEngine

from billing.db.ledger import insert_entries
from billing.ledger import LedgerEntry

log = logging.getLogger(__name__)


class LedgerWriter:
    def __init__(self, engine: AsyncEngine, *, batch_size: int = 500, max_delay: float = 0.02,
                 max_backoff: float = 5.0):
        self._engine = engine
        self.batch_size = batch_size
        self.max_delay = max_delay
        self.max_backoff = max_backoff
        self._pending: deque[LedgerEntry] = deque()
        self._wake = asyncio.Event()
        self._written = asyncio.Condition()
        self._submitted = 0
        self._done = 0  # entries taken off the queue and committed (or found already there)
        self._task: asyncio.Task | None = None

    @property
    def backlog(self) -> int:
        return self._submitted - self._done

    def submit(self, entry: LedgerEntry) -> None:
        self._pending.append(entry)
        self._submitted += 1
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ledger-writer")

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until everything submitted so far is committed."""
        target = self._submitted
        self._wake.set()
        async with self._written:
            await asyncio.wait_for(self._written.wait_for(lambda: self._done >= target), timeout)

    async def close(self, timeout: float = 10.0) -> None:
        """Flush what is pending, then stop. Entries still unwritten after `timeout` are logged."""
        try:
            await self.flush(timeout)
        except asyncio.TimeoutError:
            log.error("ledger writer stopped with %d entries unwritten", self.backlog)
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        backoff = 0.05
        while True:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
                await asyncio.sleep(self.max_delay)  # let a batch gather
            batch = [self._pending[i] for i in range(min(self.batch_size, len(self._pending)))]
            try:
                async with self._engine.begin() as conn:
                    await insert_entries(conn, batch)
            except Exception:
                log.warning("ledger write of %d entries failed; retrying in %.2fs", len(batch), backoff,
                            exc_info=True)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            backoff = 0.05
            for _ in batch:
                self._pending.popleft()
            async with self._written:
                self._done += len(batch)
                self._written.notify_all()
