"""Reading a stored response from the upstream with the operator's key: what the poller,
a deletion's storage credit and a deletion's settlement all read, in one place."""

import orjson

from proxy.config.routing import Upstream
from proxy.gateway.headers import upstream_request_headers
from proxy.gateway.state import ProxyState
from proxy.gateway.upstream import call_upstream, read_body


async def upstream_reply(state: ProxyState, target: Upstream, method: str, path: str) -> tuple[int, dict | None]:
    """(status, the reply's JSON object, or None when it is not one) of `method path`."""
    settings = state.settings
    upstream = await call_upstream(state.http, method, target.base_url + path,
                                   upstream_request_headers((), target.api_key),
                                   first_byte_timeout=settings.first_byte_timeout(target))
    try:
        body = await read_body(upstream, settings.max_upstream_body_bytes, settings.idle_timeout(target))
    finally:
        upstream.release()
    try:
        reply = orjson.loads(body)
    except orjson.JSONDecodeError:
        reply = None
    return upstream.status, reply if isinstance(reply, dict) and 200 <= upstream.status < 300 else None


async def stored_reply(state: ProxyState, target: Upstream, response_id: str) -> tuple[int, dict | None]:
    return await upstream_reply(state, target, "GET", f"/responses/{response_id}")
