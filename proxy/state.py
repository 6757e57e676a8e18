"""What the running app holds, reached through one typed AppKey."""

import asyncio
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from billing.offline_quota import LastKnownQuota
from billing.quota_lease import LeaseBook
from proxy.ledger_writer import LedgerWriter
from proxy.mirror import Mirror
from proxy.routing import Router
from proxy.sessions import ResponseOwners
from proxy.settings import Settings


@dataclass
class ProxyState:
    settings: Settings
    engine: AsyncEngine
    http: aiohttp.ClientSession
    mirror: Mirror
    writer: LedgerWriter
    owners: ResponseOwners
    router: Router
    last_known: LastKnownQuota = field(default_factory=LastKnownQuota)  # quota state: outages and leases
    leases: LeaseBook = field(default_factory=lambda: LeaseBook(max_age=300.0))
    lease_locks: dict = field(default_factory=dict)
    inflight: set[asyncio.Task] = field(default_factory=set)  # upstream exchanges and releases under way

    def spawn(self, work) -> asyncio.Task:
        """Run `work` in the background; shutdown waits for it."""
        task = asyncio.create_task(work)
        self.inflight.add(task)
        task.add_done_callback(self.inflight.discard)
        return task


STATE = web.AppKey("state", ProxyState)
