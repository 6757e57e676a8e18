import pytest

from proxy.headers import bearer_token, client_response_headers, upstream_request_headers


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
])
def test_upstream_request_headers(client, expected):
    assert upstream_request_headers(client, "up") == expected


@pytest.mark.parametrize(("upstream", "expected"), [
    ([("Content-Type", "text/event-stream"), ("Transfer-Encoding", "chunked"), ("Connection", "keep-alive")],
     [("Content-Type", "text/event-stream")]),
    ([("Content-Encoding", "gzip"), ("Content-Length", "10"), ("Set-Cookie", "__cf=1"),
      ("OpenAI-Organization", "org-ours"), ("openai-processing-ms", "12")],
     [("openai-processing-ms", "12")]),
    ([("x-request-id", "req_up"), ("x-ratelimit-remaining-requests", "99")],
     [("x-ratelimit-remaining-requests", "99"), ("x-upstream-request-id", "req_up")]),
])
def test_client_response_headers(upstream, expected):
    assert client_response_headers(upstream) == expected


@pytest.mark.parametrize(("value", "token"), [
    ("Bearer abc", "abc"), ("bearer abc ", "abc"), ("Basic abc", None), ("Bearer ", None), ("", None),
])
def test_bearer_token(value, token):
    assert bearer_token({"Authorization": value} if value else {}) == token
