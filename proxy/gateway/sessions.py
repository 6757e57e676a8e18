"""Response ownership: a tenant may continue, read, cancel or delete only the responses (and
conversations) its own keys created. Any other id gets exactly the 404 of an id that does not exist, so a guess
reveals nothing, and it is never forwarded.

Owners are remembered in memory as soon as this replica sees a response id (so a
follow-up needs no database round trip), and recorded in the database with the call's
ledger entry (so every replica finds them). An id not found yet is looked up once more
after a short pause: its entry may still be in another replica's ledger batch."""

import asyncio
import logging
import time
from collections import OrderedDict
from typing import NamedTuple

from sqlalchemy.ext.asyncio import AsyncEngine

from billing.db.sessions import record_context, record_owner, response_owner
from proxy.errors import ApiError

log = logging.getLogger(__name__)

RECENT_OWNERS = 20_000  # about 4 MiB; older ids are looked up in the database (one round trip)
LEDGER_BATCH_GRACE_SECONDS = 0.15
# Every "not found" is answered this long after the lookup began, whether the id is someone
# else's (found at once) or unknown (looked up twice, with the grace between): the time
# must not tell a tenant that an id exists.
NOT_FOUND_SECONDS = 0.3


class Owner(NamedTuple):
    tenant_id: int
    upstream: str
    context_tokens: int | None = None  # input + output of the response, once its usage is known


class ResponseOwners:
    def __init__(self, engine: AsyncEngine, capacity: int = RECENT_OWNERS):
        self._engine = engine
        self._capacity = capacity
        self._recent: OrderedDict[str, Owner] = OrderedDict()

    def remember(self, response_id: str, tenant_id: int, upstream: str, context_tokens: int | None = None) -> None:
        self._recent[response_id] = Owner(tenant_id, upstream, context_tokens)
        self._recent.move_to_end(response_id)
        while len(self._recent) > self._capacity:
            self._recent.popitem(last=False)

    async def record(self, resource_id: str, tenant_id: int, upstream: str) -> None:
        """An id no ledger entry will name (a conversation): remembered here and stored now."""
        self.remember(resource_id, tenant_id, upstream)
        await record_owner(self._engine, resource_id, tenant_id, upstream)

    async def record_context(self, resource_id: str, context_tokens: int) -> None:
        """A conversation's context after a turn, for every replica (a response's is
        recorded with its entry; `remember` it here first)."""
        try:
            await record_context(self._engine, resource_id, context_tokens)
        except Exception as error:  # noqa: BLE001 - other replicas then estimate it from the context window
            log.warning("context of conversation %s not recorded (%s)", resource_id, type(error).__name__)

    async def owner(self, response_id: str) -> Owner | None:
        if response_id in self._recent:
            return self._recent[response_id]
        found = await response_owner(self._engine, response_id)
        if found is None:
            await asyncio.sleep(LEDGER_BATCH_GRACE_SECONDS)
            found = await response_owner(self._engine, response_id)
        if found is None:
            return None
        self.remember(response_id, *found)
        return Owner(*found)

    async def require(self, response_id: object, tenant_id: int, param: str | None) -> Owner:
        """Who made `response_id` (and where); ApiError 404 unless `tenant_id` did."""
        started = time.monotonic()
        owner = await self.owner(response_id) if isinstance(response_id, str) else None
        if owner is None or owner.tenant_id != tenant_id:
            await asyncio.sleep(max(0.0, started + NOT_FOUND_SECONDS - time.monotonic()))
            raise not_found(str(response_id), param)
        return owner

    async def context_tokens(self, response_id: str, owner: Owner) -> int | None:
        """The context a continuation of the response reads: known once its entry is written
        (asked again of the database while this replica has not seen it)."""
        if owner.context_tokens is not None:
            return owner.context_tokens
        found = await response_owner(self._engine, response_id)
        if found is not None and found[2] is not None:
            self.remember(response_id, *found)
            return found[2]
        return None


def not_found(response_id: str, param: str | None) -> ApiError:
    if response_id.startswith("conv_") or param == "conversation":
        return ApiError(404, f"Conversation with id '{response_id}' not found.", code=None, param=param)
    prefix = "Previous response" if param == "previous_response_id" else "Response"
    return ApiError(404, f"{prefix} with id '{response_id}' not found.", code=None, param=param)
