"""Header rules for both directions of the proxy. Pure functions.

Hop-by-hop fields (RFC 9110 section 7.6.1) and everything naming the connection are
dropped; the client's credential is replaced by the upstream key; nothing that describes
the upstream account travels back to the client.
"""

from typing import Iterable, Mapping

HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "transfer-encoding", "upgrade",
})
# Set again by the proxy or its HTTP client, or describing the client's own credentials.
_NOT_FORWARDED_UP = frozenset({
    "host", "content-length", "authorization", "cookie", "accept-encoding", "x-api-key",
    "api-key", "openai-organization", "openai-project",
})
# Re-framed by the proxy (bodies are decompressed), or about the upstream account.
_NOT_RELAYED_DOWN = frozenset({
    "content-length", "content-encoding", "set-cookie", "openai-organization", "openai-project",
    "x-request-id", "server", "date",
})


def _connection_tokens(headers: Iterable[tuple[str, str]]) -> set[str]:
    tokens: set[str] = set()
    for name, value in headers:
        if name.lower() == "connection":
            tokens.update(t.strip().lower() for t in value.split(",") if t.strip())
    return tokens


def _filtered(headers: Iterable[tuple[str, str]], dropped: frozenset[str]) -> list[tuple[str, str]]:
    headers = list(headers)
    named = _connection_tokens(headers)
    return [
        (name, value)
        for name, value in headers
        if (lower := name.lower()) not in HOP_BY_HOP and lower not in dropped and lower not in named
    ]


def upstream_request_headers(client_headers: Iterable[tuple[str, str]], upstream_key: str | None) -> dict[str, str]:
    """Headers to send upstream: the client's, minus hop-by-hop and credentials, plus ours."""
    headers = dict(_filtered(client_headers, _NOT_FORWARDED_UP))
    headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
    headers["Content-Type"] = "application/json"
    if upstream_key:
        headers["Authorization"] = f"Bearer {upstream_key}"
    return headers


def client_response_headers(upstream_headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Headers to relay to the client; the upstream's request id is kept under its own name."""
    headers = list(upstream_headers)
    relayed = _filtered(headers, _NOT_RELAYED_DOWN)
    relayed += [("x-upstream-request-id", v) for k, v in headers if k.lower() == "x-request-id"]
    return relayed


def bearer_token(headers: Mapping[str, str]) -> str | None:
    value = headers.get("Authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    return token or None
