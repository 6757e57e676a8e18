"""An in-memory mirror of keys and prices, so no request waits on the database.

Kept fresh three ways:
- a Postgres LISTEN on the change channel wakes a sync the moment a key, tenant or
  price changes on any replica or from the CLI;
- a sync runs at least every `interval` seconds anyway (a lost notification, a broken
  LISTEN connection), asking only for rows whose revision moved;
- an unknown key triggers one coalesced sync before it is refused, so a key issued a
  moment ago works at once, while a flood of bad keys costs at most one sync per
  `MIN_RESYNC_SECONDS`.
Each sync re-reads the changes of the previous interval too (a transaction that took
its revision before a sync but committed after it is still seen), and a full reload
runs every `full_reload_every` syncs.
"""

import asyncio
import logging
import time

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from billing.db.engine import plain_url
from billing.db.keys import grants_changed_since
from billing.db.prices import load_pricebook, prices_revision
from billing.db.tables import CHANGES_CHANNEL
from billing.keys import KeyGrant
from billing.pricebook import PriceBook

log = logging.getLogger(__name__)

MIN_RESYNC_SECONDS = 0.1


class Mirror:
    def __init__(self, engine: AsyncEngine, database_url: str, *, interval: float = 1.0,
                 full_reload_every: int = 60):
        self._engine = engine
        self._database_url = database_url
        self.interval = interval
        self._full_reload_every = full_reload_every
        self._grants: dict[str, KeyGrant] = {}
        self.pricebook = PriceBook([], {})
        self._grant_revision = 0
        self._since_previous = 0
        self._prices_revision = -1
        self._wake = asyncio.Event()
        self._sync_lock = asyncio.Lock()
        self._last_sync = 0.0
        self._syncs = 0
        self._task: asyncio.Task | None = None
        self._listener: asyncpg.Connection | None = None

    def grant(self, secret_hash: str) -> KeyGrant | None:
        return self._grants.get(secret_hash)

    async def start(self) -> None:
        await self.sync(full=True)
        self._task = asyncio.create_task(self._run(), name="mirror-sync")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._close_listener()

    async def grant_after_sync(self, secret_hash: str) -> KeyGrant | None:
        """For a key not in the mirror: sync once (shared with concurrent callers), look again."""
        wait = self._last_sync + MIN_RESYNC_SECONDS - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        try:
            await self.sync()
        except Exception:
            log.warning("key sync failed; answering from the mirror", exc_info=True)
        return self._grants.get(secret_hash)

    async def sync(self, full: bool = False) -> None:
        started = time.monotonic()
        async with self._sync_lock:
            if not full and self._last_sync > started:
                return  # a sync that began after we asked has just finished
            await self._sync(full)
            self._last_sync = time.monotonic()

    async def _sync(self, full: bool) -> None:
        since = 0 if full else self._since_previous
        async with self._engine.connect() as conn:
            grants, newest = await grants_changed_since(conn, since)
            revision = await prices_revision(conn)
            if revision != self._prices_revision:
                self.pricebook = await load_pricebook(conn)
                self._prices_revision = revision
        if full:
            self._grants = dict(grants)
        else:
            self._grants.update(grants)
        self._since_previous = self._grant_revision  # re-read one interval back next time
        self._grant_revision = max(self._grant_revision, newest)
        self._syncs += 1

    async def _run(self) -> None:
        while True:
            await self._ensure_listener()
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.sync(full=self._syncs % self._full_reload_every == 0)
            except Exception:
                log.warning("mirror sync failed; serving from the last state", exc_info=True)

    async def _ensure_listener(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        try:
            self._listener = await asyncpg.connect(plain_url(self._database_url), timeout=5)
            await self._listener.add_listener(CHANGES_CHANNEL, self._on_notify)
        except Exception:
            self._listener = None
            log.warning("cannot LISTEN for changes; polling every %ss", self.interval, exc_info=True)

    def _on_notify(self, *_args) -> None:
        self._wake.set()

    async def _close_listener(self) -> None:
        if self._listener is not None:
            await asyncio.gather(self._listener.close(timeout=2), return_exceptions=True)
            self._listener = None
