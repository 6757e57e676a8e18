"""Calling the upstream: one shared ClientSession, explicit timeouts (connect, first byte,
idle between chunks), and the one place where transport failures become 502 (unreachable)
or 504 (timed out).

A call is retried only when the connection could not be made at all: then nothing was sent
upstream, so nothing can be billed twice. Any later failure is final.
"""

import asyncio
import io
from typing import AsyncIterator

import aiohttp

from proxy.observability import metrics
from proxy.errors import ApiError
from proxy.config.settings import Settings

LARGE_BODY_BYTES = 512 * 1024
CONNECT_ATTEMPTS = 2
RETRY_PAUSE_SECONDS = 0.1


def make_client_session(settings: Settings) -> aiohttp.ClientSession:
    timeout = aiohttp.ClientTimeout(
        total=None,  # streams may run for minutes; first byte and idle time are bounded per call
        connect=settings.upstream_connect_timeout,
        sock_connect=settings.upstream_connect_timeout,
    )
    connector = aiohttp.TCPConnector(limit=4096, limit_per_host=0, keepalive_timeout=30)
    return aiohttp.ClientSession(timeout=timeout, connector=connector, auto_decompress=True,
                                 skip_auto_headers=("User-Agent",))


def upstream_timeout() -> ApiError:
    metrics.UPSTREAM_ERRORS.labels("timeout").inc()
    return ApiError(504, "The upstream API did not answer in time.", type="upstream_error", code="upstream_timeout")


async def call_upstream(session: aiohttp.ClientSession, method: str, url: str, headers: dict[str, str],
                        body: bytes | None = None, *, first_byte_timeout: float) -> aiohttp.ClientResponse:
    """The upstream's reply, once its status and headers arrived."""
    for attempt in range(1, CONNECT_ATTEMPTS + 1):
        # aiohttp writes a large body in chunks only when given a file-like object.
        data = body if body is None or len(body) < LARGE_BODY_BYTES else io.BytesIO(body)
        try:
            async with asyncio.timeout(first_byte_timeout):
                return await session.request(method, url, data=data, headers=headers, allow_redirects=False)
        except asyncio.TimeoutError:
            raise upstream_timeout() from None
        except aiohttp.ClientConnectorError:
            if attempt < CONNECT_ATTEMPTS:  # no connection, so nothing was sent: safe to retry
                await asyncio.sleep(RETRY_PAUSE_SECONDS)
                continue
            metrics.UPSTREAM_ERRORS.labels("unreachable").inc()
            # Nothing reached the upstream, so nothing was billed: a retry in a second is safe.
            raise ApiError(502, "The upstream API is unreachable (could not connect).",
                           type="upstream_error", code="upstream_unreachable", headers=RETRY_SOON) from None
        except aiohttp.ClientError as exc:
            metrics.UPSTREAM_ERRORS.labels("unreachable").inc()
            raise ApiError(502, f"The upstream API is unreachable ({type(exc).__name__}).",
                           type="upstream_error", code="upstream_unreachable") from None
    raise AssertionError("unreachable")


RETRY_SOON = {"x-should-retry": "true", "retry-after": "1"}


async def chunks(response: aiohttp.ClientResponse, idle_timeout: float) -> AsyncIterator[bytes]:
    """The reply's body as it arrives; asyncio.TimeoutError when the upstream says nothing for
    `idle_timeout` seconds, aiohttp.ClientError when the connection breaks."""
    content = response.content
    while True:
        chunk = content.read_nowait()  # what already arrived needs no timer
        if not chunk:
            if content.is_eof():
                return
            async with asyncio.timeout(idle_timeout):
                chunk = await content.readany()
            if not chunk:
                return
        yield chunk


async def read_body(response: aiohttp.ClientResponse, limit: int, idle_timeout: float) -> bytes:
    """The whole upstream body, refusing (502) one larger than `limit`."""
    body = bytearray()
    try:
        async for chunk in chunks(response, idle_timeout):
            body += chunk
            if len(body) > limit:
                metrics.UPSTREAM_ERRORS.labels("malformed").inc()
                raise ApiError(502, "The upstream reply is larger than the proxy accepts.",
                               type="upstream_error", code="upstream_body_too_large")
    except asyncio.TimeoutError:
        metrics.UPSTREAM_ERRORS.labels("idle_timeout").inc()
        raise ApiError(504, "The upstream API stopped answering.", type="upstream_error",
                       code="upstream_timeout") from None
    except aiohttp.ClientError as exc:
        metrics.UPSTREAM_ERRORS.labels("stream_cut").inc()
        raise ApiError(502, f"The upstream reply broke off ({type(exc).__name__}).",
                       type="upstream_error", code="upstream_unreachable") from None
    return bytes(body)
