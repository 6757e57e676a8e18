"""Header rules for both directions of the proxy. Pure functions.

Both directions use allow-lists: a header travels only if it is named here. Upstream, the
tenant's credential is replaced by the operator's key, and nothing that could act on the
shared account for one tenant travels (`Idempotency-Key` would let one tenant replay
another's reply, `X-HTTP-Method-Override` would turn a call into another,
`X-Forwarded-For` would speak for the proxy). Back to the client, nothing that describes
the operator's account travels (its organization, project, and its own `x-ratelimit-*`
standing); the upstream's request id is kept as `x-upstream-request-id`.
"""

import hmac
from typing import Iterable, Mapping

# What a client's SDK sends that the upstream may use; `x-stainless-*` is the OpenAI SDKs'
# description of themselves (language, version, retry count, timeout).
_FORWARDED_UP = frozenset({"accept", "user-agent", "openai-beta"})
_FORWARDED_UP_PREFIXES = ("x-stainless-",)
# What an upstream reply says that is about the reply, not about the account.
_RELAYED_DOWN = frozenset({
    "content-type", "cache-control", "openai-processing-ms", "openai-version", "retry-after", "retry-after-ms",
    "x-should-retry",
})


def forwarded_header_rule(names: Iterable[str]) -> tuple[frozenset[str], tuple[str, ...]]:
    """The allow-list extended by the operator's `forward_headers` (`name`, or `prefix*`)."""
    names = [n.strip().lower() for n in names if n.strip()]
    return (_FORWARDED_UP | {n for n in names if not n.endswith("*")},
            _FORWARDED_UP_PREFIXES + tuple(n[:-1] for n in names if n.endswith("*")))


_DEFAULT_RULE = forwarded_header_rule(())


def upstream_request_headers(client_headers: Iterable[tuple[str, str]], upstream_key: str | None,
                             rule: tuple[frozenset[str], tuple[str, ...]] = _DEFAULT_RULE) -> dict[str, str]:
    """Headers to send upstream: the allowed ones of the client's, plus ours. The body is
    always sent as plain JSON (a compressed request body was decompressed on arrival)."""
    names, prefixes = rule
    headers = {name: value for name, value in client_headers
               if (lower := name.lower()) in names or lower.startswith(prefixes)}
    headers["Content-Type"] = "application/json"
    if upstream_key:
        headers["Authorization"] = f"Bearer {upstream_key}"
    return headers


def client_response_headers(upstream_headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Headers to relay to the client; the upstream's request id is kept under its own name."""
    headers = list(upstream_headers)
    relayed = [(name, value) for name, value in headers if name.lower() in _RELAYED_DOWN]
    relayed += [("x-upstream-request-id", v) for k, v in headers if k.lower() == "x-request-id"]
    return relayed


def _printable_ascii(value: str) -> bool:
    return value.isascii() and value.isprintable()


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of `Authorization: Bearer <token>`; None when absent or not printable
    ASCII (no key the proxy issues is anything else)."""
    value = headers.get("Authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    return token if token and _printable_ascii(token) else None


def same_secret(given: str | None, expected: str) -> bool:
    """Compare a secret in constant time; a value that is not printable ASCII never matches
    (and cannot make the comparison raise)."""
    return given is not None and _printable_ascii(given) and hmac.compare_digest(given.encode(), expected.encode())
