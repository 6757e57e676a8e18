"""Deleting a stored BytePlus response ends its cache storage early. The ledger booked the
storage of its whole lifetime (until `expire_at`) with the call; the hours it will no
longer be stored are credited in an entry of their own (negative `cache_storage_hours`),
at the price the call was billed at. Entries are never changed.
"""

import time
from datetime import datetime, timezone
from uuid import uuid4

from billing.keys import KeyGrant
from billing.ledger import CallContext, LedgerEntry, build_entry
from billing.quota import period_start
from billing.reply import storage_credit_of
from billing.usage import Usage
from proxy.gateway.state import ProxyState


def storage_credit(state: ProxyState, grant: KeyGrant, upstream: str, response_id: str,
                   reply: dict | None) -> LedgerEntry | None:
    """The credit deleting `response_id` (on `upstream`) earns, from `reply`: the upstream's
    copy, read first with the operator's key (None when it could not be read: no credit)."""
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
                       upstream=upstream)
    credit = Usage(cache_storage_tokens=stored.tokens, cache_storage_hours=-stored.hours,
                   flags=("cache_storage_credit",), raw={"credited_storage_hours": stored.hours})
    return build_entry(call, credit, status="credit", upstream_response_id=response_id, finished_at=now,
                       first_byte_ms=None)
