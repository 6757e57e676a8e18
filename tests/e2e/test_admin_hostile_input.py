"""What an attacker tried on the admin side: locking the operator out with wrong tokens,
control characters in free text, hostile dashboard parameters, look-alike tenant names.
Each is refused with a 4xx in the OpenAI error shape, never a 5xx."""

import aiohttp
import pytest

from tests.conftest import METRICS_AUTH
from tests.e2e.test_admin_api import ADMIN_TOKEN, Admin

ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
WRONG_AUTH = {"Authorization": "Bearer wrong-" + "w" * 30}


async def test_wrong_tokens_never_lock_out_the_right_ones(dashboard_proxy):
    """25 wrong tokens from one address (the limit is 10 a minute): the wrong ones are
    refused with 429 once past the limit, the right admin and metrics tokens still get in."""
    base = dashboard_proxy.url
    async with aiohttp.ClientSession() as http:
        wrong = []
        for path in ["/admin/tenants", "/admin/dashboard", "/metrics"] * 8 + ["/admin/tenants"]:
            async with http.get(base + path, headers=WRONG_AUTH, allow_redirects=False) as reply:
                wrong.append(reply.status)
        assert len(wrong) == 25 and set(wrong[10:]) == {429}
        assert wrong[:10].count(429) == 0 and {401, 302} >= set(wrong[:10])
        for path, auth in (("/admin/tenants", ADMIN_AUTH), ("/admin/dashboard", ADMIN_AUTH),
                           ("/metrics", ADMIN_AUTH), ("/metrics", METRICS_AUTH), ("/admin/openapi.json", ADMIN_AUTH)):
            async with http.get(base + path, headers=auth, allow_redirects=False) as reply:
                assert reply.status == 200, (path, reply.status)
        async with http.get(base + "/admin/tenants", headers=WRONG_AUTH) as reply:  # still throttled
            assert reply.status == 429 and int(reply.headers["Retry-After"]) >= 1
        async with http.post(base + "/admin/login", data={"token": ADMIN_TOKEN}, allow_redirects=False) as reply:
            assert reply.status == 302  # signing in with the right token works too
        async with http.post(base + "/admin/login", data={"token": "wrong"}, allow_redirects=False) as reply:
            assert reply.status == 429


@pytest.fixture
async def admin(dashboard_proxy):
    async with aiohttp.ClientSession() as http:
        yield Admin(http, dashboard_proxy.url)


CONTROLS = ["\u0000", "a\u0000b", "\u0007", "\u001b[31m", "a\rb", "\u007f", "\u0085", "\u009b"]


@pytest.mark.parametrize("text", CONTROLS)
async def test_control_characters_in_admin_free_text_are_a_400_naming_the_field(admin, text):
    status, tenant = await admin.call("POST", "/admin/tenants", {"name": "texts"})
    assert status == 201
    tenant_id = tenant["id"]
    attempts = [
        ("POST", f"/admin/tenants/{tenant_id}/credits", {"amount_usd": "5.00", "reason": f"top-up {text}"}, "reason"),
        ("POST", f"/admin/tenants/{tenant_id}/adjustments", {"amount_usd": "-1.00", "reason": text}, "reason"),
        ("POST", "/admin/tenants", {"name": f"team{text}"}, "name"),
        ("PATCH", f"/admin/tenants/{tenant_id}", {"name": f"{text}team"}, "name"),
        ("POST", "/admin/keys", {"tenant_id": tenant_id, "label": f"laptop{text}"}, "label"),
    ]
    for method, path, body, field in attempts:
        status, answer = await admin.call(method, path, body)
        assert status == 400, (path, status, answer)
        assert answer["error"]["param"] == field and answer["error"]["type"] == "invalid_request_error"
        assert "control" in answer["error"]["message"] and field in answer["error"]["message"]
    for path, query in (("/admin/reports", {"month": "2026-01", "tenant": f"x{text}"}),
                        ("/admin/audit", {"target": f"x{text}"}), ("/admin/alerts", {"tenant": f"x{text}"})):
        param = [name for name in query if name != "month"][0]
        status, answer = await admin.call("GET", path, **query)
        assert status == 400 and answer["error"]["param"] == param, (path, status, answer)
    status, credit = await admin.call("GET", f"/admin/tenants/{tenant_id}/credits")
    assert status == 200 and credit["topups"] == []


async def test_a_reason_may_span_lines_and_hold_tabs(admin):
    status, tenant = await admin.call("POST", "/admin/tenants", {"name": "lines"})
    status, credit = await admin.call("POST", f"/admin/tenants/{tenant['id']}/credits",
                                      {"amount_usd": "5.00", "reason": "invoice 12\n\tpaid by wire"})
    assert status == 201 and credit["topups"][0]["reason"] == "invoice 12\n\tpaid by wire"
    for blank in (" ", "\n\t"):
        status, answer = await admin.call("POST", f"/admin/tenants/{tenant['id']}/credits",
                                          {"amount_usd": "5.00", "reason": blank})
        assert status == 400 and answer["error"]["param"] == "reason"


HOSTILE = ["\u0000", "%00", "x" * 5000, "0000-00", "0001-01", "9999-12", "10000-01", "2026-13", "2026-1", "٢٠٢٦-١١",
           "２０２６-１１", "2026-11\u0000", "ä", "\u202e2026-11", "-1", "1969-12", "9900-01", ""]


@pytest.mark.parametrize("value", HOSTILE)
async def test_hostile_dashboard_parameters_are_a_4xx(dashboard_proxy, engine, value):
    from billing.db.tenants import create_tenant

    await create_tenant(engine, "dash")
    pages = ["/admin/dashboard", "/admin/dashboard/tenant", "/admin/dashboard/statement"]
    async with aiohttp.ClientSession() as http:
        for page in pages:
            for name in ("month", "tenant", "stack", "format"):
                params = {"tenant": "dash", "month": "2026-11", name: value}
                async with http.get(dashboard_proxy.url + page, params=params, headers=ADMIN_AUTH) as reply:
                    body = await reply.text()
                    assert reply.status < 500, (page, name, value, reply.status, body[:300])
                    if name == "month" and value:
                        assert reply.status == 400 and '"param":"month"' in body, (page, value, reply.status)
                    if name == "tenant" and page != "/admin/dashboard":
                        assert reply.status in (400, 404) and '"param":"tenant"' in body, (page, value)


async def test_good_dashboard_parameters_still_work(dashboard_proxy, engine):
    from billing.db.tenants import create_tenant

    await create_tenant(engine, "dash")
    async with aiohttp.ClientSession() as http:
        for page, params in (("/admin/dashboard", {"month": "1970-01"}), ("/admin/dashboard", {"month": "9899-12"}),
                             ("/admin/dashboard", {"stack": "model"}), ("/admin/dashboard/tenant", {"tenant": "dash"}),
                             ("/admin/dashboard/statement", {"tenant": "dash", "format": "csv"}),
                             ("/admin/dashboard/statement", {"tenant": "dash", "month": "2026-02"})):
            async with http.get(dashboard_proxy.url + page, params=params, headers=ADMIN_AUTH) as reply:
                assert reply.status == 200, (page, params, reply.status, (await reply.text())[:300])


LOOK_ALIKES = ["alpha ", " alpha", "Alpha", "ALPHA", "ａｌｐｈａ", "alpha\u200b", "al\u2060pha", "\ufeffalpha",
               "\u202ealpha", "alpha\u2066", "\u2067alpha\u2069", "alp\u00adha", "alpha\u3164"]


async def test_look_alike_tenant_names_are_refused(admin):
    status, alpha = await admin.call("POST", "/admin/tenants", {"name": "alpha"})
    assert status == 201 and alpha["name"] == "alpha"
    for name in LOOK_ALIKES:
        status, answer = await admin.call("POST", "/admin/tenants", {"name": name})
        assert status in (400, 409), (name, status, answer)
        assert answer["error"]["param"] == "name" or "'alpha'" in answer["error"]["message"], (name, answer)
        if status == 409:  # a name that is alpha's once normalised and case folded
            assert "'alpha'" in answer["error"]["message"]
    status, answer = await admin.call("POST", "/admin/tenants", {"name": "Alpha"})
    assert "too like the existing tenant 'alpha'" in answer["error"]["message"]
    status, beta = await admin.call("POST", "/admin/tenants", {"name": " Beta\u3000"})  # trimmed, NFKC
    assert status == 201 and beta["name"] == "Beta"
    status, answer = await admin.call("PATCH", f"/admin/tenants/{beta['id']}", {"name": "ALPHA"})
    assert status == 409 and "'alpha'" in answer["error"]["message"]
    status, renamed = await admin.call("PATCH", f"/admin/tenants/{beta['id']}", {"name": "BETA"})  # its own key
    assert status == 200 and renamed["name"] == "BETA"
    status, listing = await admin.call("GET", "/admin/tenants")
    assert sorted(t["name"] for t in listing["data"]) == ["BETA", "alpha"]
