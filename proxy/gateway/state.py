"""What the running app holds, reached through one typed AppKey."""

import asyncio
from dataclasses import dataclass, field
from uuid import UUID, uuid4

import aiohttp
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from billing.attribution import AttributionRules
from billing.concurrency import SlotBook
from billing.offline_quota import LastKnownQuota
from billing.quota import ModelLimits
from billing.reasoning_share import ReasoningHistory
from billing.quota_lease import LeaseBook
from billing.rate_limit import RateBook
from proxy.gateway.headers import forwarded_header_rule
from proxy.durability.ledger_writer import LedgerWriter
from proxy.gateway.mirror import Mirror
from proxy.config.routing import Router
from proxy.gateway.sessions import ResponseOwners
from proxy.config.settings import Settings
from proxy.gateway.refusals import RefusalTally
from proxy.gateway.unpriced import UnpricedTally


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
    rates: RateBook = field(default_factory=RateBook)  # shares of rate-limit buckets
    rate_locks: dict[tuple, asyncio.Lock] = field(default_factory=dict)  # one withdrawal at a time per bucket set
    slots: SlotBook = field(default_factory=SlotBook)  # concurrency slots this replica holds
    holder: UUID = field(default_factory=uuid4)  # this replica, in concurrency claims
    inflight: set[asyncio.Task] = field(default_factory=set)  # upstream exchanges and releases under way
    refusals: RefusalTally = field(default_factory=RefusalTally)  # 429s, added to the database every few seconds
    reasoning: ReasoningHistory = field(default_factory=ReasoningHistory)  # how much each model reasons, for estimates
    unpriced: UnpricedTally = field(default_factory=UnpricedTally)  # unpriced calls, added to the database likewise
    header_rule: tuple = field(init=False)  # the client headers that go upstream
    limits: ModelLimits = field(init=False)  # what bounds a call's worst case besides its body
    attribution_rules: AttributionRules = field(init=False)  # how end users and tags are kept

    def __post_init__(self) -> None:
        self.header_rule = forwarded_header_rule(self.settings.forward_headers)
        self.limits = ModelLimits(default_output_cap=self.settings.default_max_output_tokens,
                                  context_window=self.settings.max_context_tokens,
                                  image_tokens=self.settings.max_image_tokens,
                                  tool_calls=self.settings.default_max_tool_calls,
                                  default_service_tier=self.settings.default_service_tier)
        key, kept = self.settings.user_hash_key, self.settings.kept_tags
        self.attribution_rules = AttributionRules(user_hash_key=key.encode() if key else None,
                                                  kept_tags=frozenset(kept) if kept is not None else None)

    def spawn(self, work) -> asyncio.Task:
        """Run `work` in the background; shutdown waits for it."""
        task = asyncio.create_task(work)
        self.inflight.add(task)
        task.add_done_callback(self.inflight.discard)
        return task


STATE = web.AppKey("state", ProxyState)
