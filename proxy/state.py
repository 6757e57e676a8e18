"""What the running app holds, reached through one typed AppKey."""

import asyncio
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from billing.offline_quota import LastKnownQuota
from billing.quota_lease import LeaseBook
from proxy.admin_guard import AdminGuard
from proxy.headers import forwarded_header_rule
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
    leases: LeaseBook  # budget leases of this replica
    last_known: LastKnownQuota = field(default_factory=LastKnownQuota)  # quota state: outages and leases
    lease_locks: dict[tuple, asyncio.Lock] = field(default_factory=dict)  # one lease taken at a time per scope
    inflight: set[asyncio.Task] = field(default_factory=set)  # upstream exchanges and releases under way
    admin_guard: AdminGuard = field(init=False)  # wrong admin tokens, per address
    header_rule: tuple = field(init=False)  # the client headers that go upstream

    def __post_init__(self) -> None:
        self.admin_guard = AdminGuard(self.settings.admin_failures_per_minute)
        self.header_rule = forwarded_header_rule(self.settings.forward_headers)

    def spawn(self, work) -> asyncio.Task:
        """Run `work` in the background; shutdown waits for it."""
        task = asyncio.create_task(work)
        self.inflight.add(task)
        task.add_done_callback(self.inflight.discard)
        return task


STATE = web.AppKey("state", ProxyState)
