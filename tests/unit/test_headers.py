import pytest

from proxy.gateway.headers import bearer_token, client_response_headers, same_secret, upstream_request_headers


@pytest.mark.parametrize(("client", "expected"), [
    ([("Authorization", "Bearer bpk_client"), ("Content-Type", "application/json")],
     {"Authorization": "Bearer up", "Content-Type": "application/json"}),
    ([("Connection", "keep-alive, X-Trace"), ("Keep-Alive", "5"), ("X-Trace", "1"), ("TE", "trailers"),
      ("Transfer-Encoding", "chunked"), ("Upgrade", "h2c"), ("Proxy-Authorization", "Basic x")],
     {"Authorization": "Bearer up", "Content-Type": "application/json"}),
    ([("Host", "proxy:8080"), ("Content-Length", "12"), ("Cookie", "a=b"), ("OpenAI-Organization", "org-client"),
      ("Accept-Encoding", "br")],
     {"Authorization": "Bearer up", "Content-Type": "application/json"}),
    ([("User-Agent", "OpenAI/Python 1.0"), ("X-Stainless-Lang", "python"), ("OpenAI-Beta", "x")],
     {"User-Agent": "OpenAI/Python 1.0", "X-Stainless-Lang": "python", "OpenAI-Beta": "x",
      "Authorization": "Bearer up", "Content-Type": "application/json"}),
    # what would act on the shared account for one tenant, or was undone on arrival
    ([("Idempotency-Key", "k1"), ("X-HTTP-Method-Override", "DELETE"), ("X-Forwarded-For", "10.0.0.1"),
      ("Forwarded", "for=10.0.0.1"), ("Content-Encoding", "gzip"), ("Content-Type", "text/plain"),
      ("X-Api-Key", "bpk_x"), ("OpenAI-Project", "proj_x"), ("X-Anything", "1")],
     {"Authorization": "Bearer up", "Content-Type": "application/json"}),
])
def test_upstream_request_headers(client, expected):
    assert upstream_request_headers(client, "up") == expected


@pytest.mark.parametrize(("upstream", "expected"), [
    ([("Content-Type", "text/event-stream"), ("Transfer-Encoding", "chunked"), ("Connection", "keep-alive")],
     [("Content-Type", "text/event-stream")]),
    ([("Content-Encoding", "gzip"), ("Content-Length", "10"), ("Set-Cookie", "__cf=1"),
      ("OpenAI-Organization", "org-ours"), ("openai-processing-ms", "12")],
     [("openai-processing-ms", "12")]),
    # the operator account's own rate-limit standing is not the tenant's
    ([("x-request-id", "req_up"), ("x-ratelimit-remaining-requests", "99"), ("x-ratelimit-limit-tokens", "9"),
      ("openai-project", "proj_ours"), ("x-anything", "1"), ("retry-after", "2")],
     [("retry-after", "2"), ("x-upstream-request-id", "req_up")]),
])
def test_client_response_headers(upstream, expected):
    assert client_response_headers(upstream) == expected


@pytest.mark.parametrize(("value", "token"), [
    ("Bearer abc", "abc"), ("bearer abc ", "abc"), ("Basic abc", None), ("Bearer ", None), ("", None),
    ("Bearer ab\udcffc", None), ("Bearer abc\x7f", None), ("Bearer ab\x00c", None), ("Bearer abé", None),
])
def test_bearer_token(value, token):
    assert bearer_token({"Authorization": value} if value else {}) == token


@pytest.mark.parametrize(("given", "matches"), [
    ("secret-token", True), ("secret-tokeN", False), (None, False), ("", False), ("secret-token\udcff", False),
    ("sécret-token", False),
])
def test_same_secret(given, matches):
    assert same_secret(given, "secret-token") is matches
