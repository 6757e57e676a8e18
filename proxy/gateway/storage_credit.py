"""Deleting a stored BytePlus response ends its cache storage early. The ledger booked the
storage of its whole lifetime (until `expire_at`) with the call; the hours it will no
longer be stored are credited in an entry of their own (negative `cache_storage_hours`),
at the price the call was billed at. Entries are never changed.
"""

import logging
import time
from datetime import datetime, timezone
from uuid import uuid4

import orjson

from billing.keys import KeyGrant
from billing.ledger import CallContext, LedgerEntry, build_entry
from billing.quota import period_start
from billing.reply import storage_credit_of
from billing.usage import Usage
from proxy.errors import ApiError
from proxy.gateway.headers import upstream_request_headers
from proxy.config.routing import Upstream
from proxy.gateway.state import ProxyState
from proxy.gateway.upstream import call_upstream, read_body

log = logging.getLogger(__name__)


async def storage_credit(state: ProxyState, grant: KeyGrant, target: Upstream, response_id: str) -> LedgerEntry | None:
    """The credit a deletion earns (the response is read first, with the operator's key), or
    None. A read that fails leaves the deletion uncredited (logged), never blocked."""
    try:
        return await _credit(state, grant, target, response_id)
    except ApiError as error:
        log.warning("could not read response %s before deleting it (%s): no storage credit", response_id,
                    error.code)
        return None


async def _credit(state: ProxyState, grant: KeyGrant, target: Upstream, response_id: str) -> LedgerEntry | None:
    settings = state.settings
    upstream = await call_upstream(state.http, "GET", f"{target.base_url}/responses/{response_id}",
                                   upstream_request_headers((), target.api_key),
                                   first_byte_timeout=settings.first_byte_timeout(target))
    try:
        body = await read_body(upstream, settings.max_upstream_body_bytes, settings.idle_timeout(target))
    finally:
        upstream.release()
    try:
        reply = orjson.loads(body) if 200 <= upstream.status < 300 else None
    except orjson.JSONDecodeError:
        reply = None
    stored = storage_credit_of(reply, time.time())
    if stored is None:
        return None
    now = datetime.now(timezone.utc)
    price = state.mirror.pricebook.resolve(stored.model, datetime.fromtimestamp(stored.created_at, timezone.utc),
                                           grant.tenant_id)
    if price is None:
        return None
    call = CallContext(request_id=uuid4(), tenant_id=grant.tenant_id, key_id=grant.key_id,
                       endpoint="responses.delete", stream=False, started_at=now, price=price,
                       price_multiplier=grant.price_multiplier, quota_period=period_start(now, grant.time_zone),
                       upstream=target.name)
    credit = Usage(cache_storage_tokens=stored.tokens, cache_storage_hours=-stored.hours,
                   flags=("cache_storage_credit",), raw={"credited_storage_hours": stored.hours})
    return build_entry(call, credit, status="credit", upstream_response_id=response_id, finished_at=now,
                       first_byte_ms=None)
