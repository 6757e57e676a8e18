"""Fuzzing a running proxy (a real `serve` process, a real simulated upstream, real
PostgreSQL) with hostile headers, cookies, paths and bodies: whatever a client sends, the
answer is never a 5xx, and the proxy goes on serving. A fixed seed keeps CI reproducible.

Each case goes over a raw socket, so header values can hold any byte but CR and LF."""

import json
import socket
import urllib.parse

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.conftest import UPSTREAM_KEY
from tests.e2e.test_admin_api import ADMIN_TOKEN
from tests.processes import Process, cli, environment, free_port, serve


@pytest.fixture(scope="module")
def running(database_url, tmp_path_factory):
    home = tmp_path_factory.mktemp("fuzz")
    upstream_port, port = free_port(), free_port()
    env = environment(DATABASE_URL=database_url, UPSTREAM_BASE_URL=f"http://127.0.0.1:{upstream_port}/v1",
                      UPSTREAM_API_KEY=UPSTREAM_KEY, BILLING_PROXY_HOME=str(home),
                      BILLING_PROXY_ADMIN_TOKEN=ADMIN_TOKEN, BILLING_PROXY_LOG_LEVEL="ERROR",
                      BILLING_PROXY_ADMIN_FAILURES_PER_MINUTE="1000000")  # the guard would hide what it guards
    upstream = Process(env, "simulate-upstream", "--port", str(upstream_port), "--api-key", UPSTREAM_KEY)
    upstream.wait_for(f"http://127.0.0.1:{upstream_port}/_sim/requests")
    cli(env, "tenants", "create", "fuzzed", "--monthly-budget", "5")
    key = json.loads(cli(env, "keys", "issue", "--tenant", "fuzzed", "--format", "json"))["key"]
    server = serve(env, port)
    yield port, key
    server.stop()
    upstream.stop()


def exchange(port: int, request: bytes) -> int:
    """The reply's status; 400 when the server closed the connection without one (it
    refused to parse the request)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(request)
        reply = b""
        while b"\r\n" not in reply:
            piece = connection.recv(4096)
            if not piece:
                return 400 if not reply else int(reply.split()[1])
            reply += piece
    return int(reply.split()[1])


# Header values: any byte but CR and LF (which would end the header, not fill it).
header_bytes = st.binary(max_size=80).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))
json_value = st.recursive(json_leaf, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                             st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                          max_leaves=12)
READ_FIELDS = ["model", "stream", "input", "messages", "n", "max_output_tokens", "max_tokens", "max_completion_tokens",
               "extra_body", "previous_response_id", "conversation", "tools", "background", "stream_options",
               "service_tier", "max_tool_calls", "caching", "thinking"]


@st.composite
def bodies(draw) -> bytes:
    """JSON objects that touch every field the proxy reads, with values of any type, some
    nested hundreds deep (orjson writes at most 255 levels), or bytes that are not JSON."""
    kind = draw(st.sampled_from(["fields", "deep", "raw"]))
    if kind == "raw":
        return draw(st.binary(max_size=200))
    body = {"model": draw(st.sampled_from(["gpt-4o-mini", "seed-1-6-250915", "gpt-4o-mini-2\u0000", "x" * 300]))}
    for name in draw(st.lists(st.sampled_from(READ_FIELDS), max_size=5)):
        body[name] = draw(json_value)
    if kind == "deep":
        depth = draw(st.integers(min_value=200, max_value=900))
        nested = json.dumps(draw(json_value))
        for _ in range(depth):
            nested = "[" + nested + "]"
        field = draw(st.sampled_from(["extra_body", "messages", "input"]))
        body.pop(field, None)
        encoded = json.dumps(body)[:-1] + f', "{field}": ' + (
            '{"x": ' + nested + "}" if field == "extra_body" else nested) + "}"
        return encoded.encode()
    return json.dumps(body).encode()


TARGETS = ["POST /v1/responses", "POST /v1/chat/completions", "POST /v1/embeddings", "POST /v1/responses/compact",
           "POST /v1/responses/input_tokens", "GET /v1/responses/{}", "GET /admin/tenants", "GET /admin/tenants/{}",
           "GET /admin/dashboard", "POST /admin/login", "GET /metrics", "GET /admin/openapi.json", "GET /v1/models/{}",
           "GET /v1/dashboard/billing/usage?start_date={}", "GET /dashboard/billing/subscription", "GET /v1/usage",
           "GET /admin/dashboard?month={}&stack={}", "GET /admin/dashboard/tenant?tenant={}"]


@settings(max_examples=250, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(target=st.sampled_from(TARGETS), segment=st.text(max_size=30), credential=st.sampled_from(
       ["key", "admin", "garbage", "none"]), tail=header_bytes, cookie=header_bytes, body=bodies(),
       extra=st.lists(st.tuples(st.sampled_from([b"Content-Encoding", b"Content-Type", b"Authorization", b"Cookie",
                                                 b"X-Forwarded-For", b"Idempotency-Key"]), header_bytes), max_size=2))
def test_nothing_a_client_sends_gets_a_5xx(running, target, segment, credential, tail, cookie, body, extra):
    port, key = running
    method, path = target.split(" ")
    path = path.replace("{}", urllib.parse.quote(segment, safe="") or "x")
    token = {"key": key.encode(), "admin": ADMIN_TOKEN.encode(), "garbage": b"", "none": None}[credential]
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: proxy", b"Connection: close"]
    if token is not None:
        lines.append(b"Authorization: Bearer " + token + tail)
    lines.append(b"Cookie: bp_admin_session=" + cookie)
    lines += [name + b": " + value for name, value in extra]
    if method == "POST":
        lines += [b"Content-Type: application/json", f"Content-Length: {len(body)}".encode()]
    request = b"\r\n".join(lines) + b"\r\n\r\n" + (body if method == "POST" else b"")
    status = exchange(port, request)
    assert status < 500, (target, request[:300])


def test_still_serving_after_the_fuzzing(running):
    port, key = running
    body = b'{"model": "gpt-4o-mini", "input": "still here?"}'
    request = (b"POST /v1/responses HTTP/1.1\r\nHost: proxy\r\nConnection: close\r\nAuthorization: Bearer "
               + key.encode() + b"\r\nContent-Type: application/json\r\nContent-Length: "
               + str(len(body)).encode() + b"\r\n\r\n" + body)
    assert exchange(port, request) == 200
