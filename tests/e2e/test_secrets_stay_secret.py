"""Key secrets appear only in the one response that issued them: not in the database, not
in logs, metrics or the spool, not in listings, not in the audit log. The upstream key never
reaches a client. Bodies are not logged or spooled."""

import json
import logging

import aiohttp
import openai
from sqlalchemy import text

from billing.keys import hash_secret
from proxy.cli import main
from proxy.observability.logs import JsonFormatter
from tests.conftest import METRICS_AUTH, UPSTREAM_KEY

BODY_TEXT = "a-distinctive-prompt-that-must-not-be-logged"


async def database_text(engine) -> str:
    async with engine.connect() as conn:
        tables = (await conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))).scalars()
        dump = []
        for table in list(tables):
            dump += (await conn.execute(text(f'SELECT t::text FROM "{table}" t'))).scalars().all()
    return "\n".join(dump)


async def test_secrets_are_nowhere_but_the_issuing_response(proxy, engine, tenant_key, caplog):
    caplog.set_level(logging.DEBUG)
    from billing.db.keys import rotate_key
    rotated = await rotate_key(engine, tenant_key.key_id)
    async with openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=rotated.secret, max_retries=0) as client:
        await client.responses.create(model="gpt-4o-mini", input=BODY_TEXT)
        stream = await client.responses.create(model="gpt-4o-mini", input=BODY_TEXT, stream=True)
        async for _ in stream:
            pass
    async with aiohttp.ClientSession() as http:  # a wrong key, and a body that fails validation
        await http.post(proxy.url + "/v1/responses", headers={"Authorization": f"Bearer {tenant_key.secret}x"},
                        data=b"{}")
        async with http.post(proxy.url + "/v1/responses", headers={"Authorization": f"Bearer {rotated.secret}"},
                             json={"model": "gpt-4o-mini", "input": "x"}) as reply:
            relayed = str(dict(reply.headers)) + await reply.text()
        async with http.get(proxy.url + "/metrics", headers=METRICS_AUTH) as reply:
            metrics = await reply.text()
    await proxy.state.writer.flush(timeout=5)
    spooled = "".join(path.read_text() for path in (proxy.settings.home / "spool").glob("*.spool"))

    stored = await database_text(engine)
    assert hash_secret(rotated.secret) in stored  # the dump really covers the keys
    logs = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert 'billing_proxy_requests_total{endpoint="responses"' in metrics and '"request_id"' in spooled
    for secret in (tenant_key.secret, rotated.secret, UPSTREAM_KEY):
        assert secret not in stored
        assert secret not in logs and secret not in metrics and secret not in spooled
    assert BODY_TEXT not in logs and BODY_TEXT not in spooled
    assert UPSTREAM_KEY not in relayed and "Bearer" not in relayed


def test_cli_prints_a_secret_once_and_never_again(database_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["tenants", "create", "cli-secrets", "--format", "json"]) == 0
    capsys.readouterr()
    assert main(["keys", "issue", "--tenant", "cli-secrets", "--models", "gpt-4o*", "--format", "json"]) == 0
    issued = json.loads(capsys.readouterr().out)
    assert main(["keys", "rotate", str(issued["id"]), "--grace", "1h", "--format", "json"]) == 0
    rotated = json.loads(capsys.readouterr().out)
    assert rotated["id"] == issued["id"] and rotated["old_key_valid_until"]

    for command in (["keys", "list", "--format", "json"], ["keys", "show", str(issued["id"]), "--format", "json"],
                    ["keys", "list"], ["audit", "--format", "json"], ["audit"], ["tenants", "list"]):
        assert main(command) == 0
        out = capsys.readouterr().out
        assert issued["key"] not in out and rotated["key"] not in out
    assert main(["keys", "show", str(issued["id"]), "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["allowed_models"] == ["gpt-4o*"] and shown["display_prefix"] == rotated["prefix"]
    assert main(["audit", "--target", f"key:{issued['id']}", "--format", "json"]) == 0
    audit = json.loads(capsys.readouterr().out)
    assert [r["action"] for r in audit] == ["key.rotate", "key.issue"]
    assert all(r["actor"].startswith("cli") for r in audit)


async def test_malformed_credential_headers_leave_no_secret_in_any_log(aiohttp_server, proxy_settings, database_url,
                                                                      engine, tenant_key, caplog):
    """aiohttp's own "Error handling request" quotes a header line it cannot parse: a key or
    admin token ending in a NUL or DEL byte must not reach a log line, nor must a cookie."""
    from dataclasses import replace

    from proxy.app import create_app
    from tests.e2e.test_admin_api import ADMIN_TOKEN
    from tests.e2e.test_hostile_input import raw_exchange

    caplog.set_level(logging.DEBUG)
    server = await aiohttp_server(create_app(replace(proxy_settings, admin_token=ADMIN_TOKEN), database_url))
    cookie = "bp_admin_session=4102444800.cookie-signature-that-must-not-be-logged"
    for path, secret in (("/v1/responses", tenant_key.secret), ("/admin/tenants", ADMIN_TOKEN),
                         ("/admin/dashboard", ADMIN_TOKEN)):
        for tail in (b"\x00", b"\x7f", b"\xff", b"\x01"):
            request = (f"GET {path} HTTP/1.1\r\nHost: x\r\n".encode() + b"Authorization: Bearer " + secret.encode()
                       + tail + b"\r\nCookie: " + cookie.encode() + tail + b"\r\n\r\n")
            reply = await raw_exchange(server.host, server.port, request)
            assert reply.startswith((b"HTTP/1.0 4", b"HTTP/1.1 4", b"HTTP/1.1 3")), reply[:80]
    records = [r for r in caplog.records]
    assert any(r.name == "aiohttp.server" for r in records)  # the parser did complain
    logs = "\n".join(JsonFormatter().format(r) for r in records) + caplog.text
    for secret in (tenant_key.secret, ADMIN_TOKEN, "cookie-signature-that-must-not-be-logged"):
        assert secret not in logs
