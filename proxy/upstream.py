"""Calling the upstream: one shared ClientSession, explicit timeouts, and the one place
where transport failures become 502 (unreachable) or 504 (timed out)."""

import asyncio
import io

import aiohttp

from proxy.errors import ApiError
from proxy.settings import Settings

LARGE_BODY_BYTES = 512 * 1024


def make_client_session(settings: Settings) -> aiohttp.ClientSession:
    timeout = aiohttp.ClientTimeout(
        total=None,  # streams may run for minutes; idle time is bounded by sock_read
        connect=settings.upstream_connect_timeout,
        sock_connect=settings.upstream_connect_timeout,
        sock_read=settings.upstream_read_timeout,
    )
    connector = aiohttp.TCPConnector(limit=4096, limit_per_host=0, keepalive_timeout=30)
    return aiohttp.ClientSession(timeout=timeout, connector=connector, auto_decompress=True,
                                 skip_auto_headers=("User-Agent",))


async def call_upstream(session: aiohttp.ClientSession, method: str, url: str, headers: dict[str, str],
                        body: bytes | None = None, read_timeout: float | None = None) -> aiohttp.ClientResponse:
    # aiohttp writes a large body in chunks only when given a file-like object.
    data = body if body is None or len(body) < LARGE_BODY_BYTES else io.BytesIO(body)
    timeout = aiohttp.ClientTimeout(total=None, connect=session.timeout.connect,
                                    sock_connect=session.timeout.sock_connect,
                                    sock_read=read_timeout) if read_timeout else None
    try:
        return await session.request(method, url, data=data, headers=headers, allow_redirects=False,
                                     **({"timeout": timeout} if timeout else {}))
    except asyncio.TimeoutError:
        raise ApiError(504, "The upstream API did not answer in time.", type="upstream_error",
                       code="upstream_timeout") from None
    except aiohttp.ClientError as exc:
        raise ApiError(502, f"The upstream API is unreachable ({type(exc).__name__}).",
                       type="upstream_error", code="upstream_unreachable") from None


async def read_body(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole upstream body, refusing (502) one larger than `limit`."""
    body = bytearray()
    try:
        async for chunk in response.content.iter_any():
            body += chunk
            if len(body) > limit:
                raise ApiError(502, "The upstream reply is larger than the proxy accepts.",
                               type="upstream_error", code="upstream_body_too_large")
    except asyncio.TimeoutError:
        raise ApiError(504, "The upstream API stopped answering.", type="upstream_error",
                       code="upstream_timeout") from None
    except aiohttp.ClientError as exc:
        raise ApiError(502, f"The upstream reply broke off ({type(exc).__name__}).",
                       type="upstream_error", code="upstream_unreachable") from None
    return bytes(body)
