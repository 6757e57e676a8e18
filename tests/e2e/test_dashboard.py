"""The dashboard and statements show the report's numbers, behind the admin token (the same
pages in a browser: test_dashboard_browser.py)."""

import calendar
import re
from datetime import datetime, timezone
from decimal import Decimal

import aiohttp
import pytest

from billing.db.reports import monthly_report
from billing.display import readable, to_cents
from billing.report import money
from tests.e2e.test_admin_api import ADMIN_TOKEN
from tests.e2e.test_reports_reconcile import mixed_traffic


def figure(html: str, name: str) -> tuple[str, str]:
    """(the exact value, what a reader sees) of a figure on a page."""
    found = re.search(rf'<data data-figure="{name}" value="([^"]*)"[^>]*>([^<]*)</data>', html)
    return found.group(1), found.group(2)


def cell(value: Decimal) -> str:
    """A table cell holding an amount, as the pages render it."""
    return (f'<td class="n"><data value="{money(value)}" title="{money(value)} USD exactly">{readable(value)}'
            f'</data></td>')


async def test_dashboard_shows_the_report_numbers(dashboard_proxy, proxy, engine):
    await mixed_traffic(dashboard_proxy, engine)
    month = datetime.now(timezone.utc).strftime("%Y-%m")
    total = await monthly_report(engine, month)
    by_tenant = await monthly_report(engine, month, by=("tenant",))
    base = dashboard_proxy.url
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:  # unsafe: IP hosts
        async with http.get(proxy.url + "/admin/dashboard") as reply:
            assert reply.status == 404  # no admin token configured there
        async with http.get(base + "/admin/dashboard", allow_redirects=False) as reply:
            assert reply.status == 302 and reply.headers["Location"] == "/admin/login"
        async with http.post(base + "/admin/login", data={"token": "wrong"}) as reply:
            assert reply.status == 401
        async with http.post(base + "/admin/login", data={"token": ADMIN_TOKEN}, allow_redirects=False) as reply:
            assert reply.status == 302
            cookie = reply.cookies["bp_admin_session"]
            assert ADMIN_TOKEN not in cookie.value and cookie["httponly"]
        async with http.get(base + f"/admin/dashboard?month={month}") as reply:  # the session cookie opens it
            assert reply.status == 200
            html = await reply.text()

    assert figure(html, "charge") == (money(total.total_charge), readable(total.total_charge))
    assert figure(html, "cost") == (money(total.total_cost), readable(total.total_cost))
    assert figure(html, "cache_savings")[0] == money(total.total_cache_savings) != "0.00"
    assert figure(html, "requests")[0] == str(total.total_requests)
    for row in by_tenant.rows:
        assert f'<td class="">{row.group["tenant"]}</td><td class="n">{row.requests}</td>{cell(row.charge)}' in html
    assert html.count("<svg") == 4 and "<script" not in html  # per tenant, per day, per component, savings
    # the upstream cost by component adds up to the month's cost, exactly
    components = re.search(r"<h2>Upstream cost by component</h2>(.*?)<h2>", html, re.S).group(1)
    assert sum(Decimal(v) for v in re.findall(r'<data value="([^"]+)"', components.split("The cache saved")[0])) \
        == total.total_cost
    assert f'The cache saved <data value="{money(total.total_cache_savings)}"' in components
    # against an empty previous month every tenant is new
    movers, model_movers = re.search(r"<h2>Top movers against [0-9-]+</h2>(.*?)<h3>Models</h3>(.*?)<h2>", html,
                                     re.S).groups()
    assert movers.count(">new</td>") == min(len(by_tenant.rows), 5)
    assert model_movers.count(">new</td>") >= 1 and "<th scope=\"col\" class=\"\">Model</th>" in model_movers
    # the daily chart spans the whole month, stacked by tenant, each segment named and priced
    last_day = calendar.monthrange(*(int(part) for part in month.split("-")))[1]
    assert f'class="label">{last_day}</text>' in html and "Stacked by tenant" in html
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    for row in by_tenant.rows:
        assert f"<title>{today}, {row.group['tenant']}: {readable(row.charge)}</title>" in html

    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.get(base + f"/admin/reports.csv?month={month}&by=tenant,model") as reply:
            assert reply.status == 200 and reply.content_type == "text/csv"
            lines = (await reply.text()).strip().splitlines()
        header = lines[0].split(",")
        assert header[:3] == ["tenant", "model", "requests"] and lines[1:]
        cost = header.index("cost")
        assert sum(Decimal(line.split(",")[cost]) for line in lines[1:]) == total.total_cost
        for row in by_tenant.rows:
            tenant = row.group["tenant"]
            async with http.get(base + f"/admin/dashboard/statement?tenant={tenant}&month={month}&format=csv") as r:
                lines = (await r.text()).strip().splitlines()
            assert lines[0].startswith("model,requests") and lines[-1].startswith("TOTAL,")
            assert lines[-1].split(",")[-1] == money(row.charge)
            assert sum(Decimal(line.split(",")[-1]) for line in lines[1:-1]) == row.charge
            async with http.get(base + f"/admin/dashboard/statement?tenant={tenant}&month={month}") as r:
                page = await r.text()
            # rounded once, at the total, half to even; the exact lines and the rounding line add up to it
            due, rounding = to_cents(row.charge), to_cents(row.charge) - row.charge
            assert figure(page, "total_due") == (money(due), readable(due))
            assert figure(page, "rounding")[0] == money(rounding) and row.charge + rounding == due
            assert f"Statement ST-{month.replace('-', '')}-{tenant}" in page and "(UTC)" in page


async def test_dashboard_shows_prepaid_balances_and_top_ups(dashboard_proxy, engine):
    from billing.db.credits import add_credit
    from billing.db.tenants import create_tenant

    await create_tenant(engine, "prepaid-team", prepaid=True)
    await create_tenant(engine, "postpaid-team")
    await add_credit(engine, "prepaid-team", Decimal("40"), "PO 12 & more", actor="finance")
    await add_credit(engine, "prepaid-team", Decimal("2.5"), "bonus", actor="finance")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as http:
        async with http.get(dashboard_proxy.url + "/admin/dashboard") as reply:
            html = await reply.text()
    assert ('<td class="">prepaid-team</td>' + cell(Decimal("42.5")) + cell(Decimal(0)) + cell(Decimal(0))
            + cell(Decimal("42.5"))) in html
    assert "PO 12 &amp; more" in html and "bonus" in html and "postpaid-team" not in html


async def capped_tenant(engine):
    """A tenant near its limits: a budget of 1 USD and 10,000 tokens, one key with 0.5 USD of its
    own (past it), 950 tokens billed at 1 USD per 1,000, one of them from an estimate."""
    import uuid
    from datetime import timedelta

    from billing.db.keys import issue_key
    from billing.db.ledger import insert_entries
    from billing.db.prices import load_pricebook, set_price
    from billing.db.tenants import create_tenant
    from billing.ledger import CallContext, build_entry
    from billing.pricing import PriceVersion, Tier
    from billing.quota import period_start
    from billing.usage import parse_usage

    now = datetime.now(timezone.utc)
    await set_price(engine, PriceVersion("priced-by-the-thousand", now - timedelta(days=40),
                                         (Tier(Decimal("1000"), Decimal("1000")),), source="test"))
    async with engine.connect() as conn:
        price = (await load_pricebook(conn)).resolve("priced-by-the-thousand", now)
    tenant = await create_tenant(engine, "capped", monthly_budget_usd=Decimal("1"), monthly_token_quota=10_000,
                                 daily_budget_usd=Decimal("2"))
    plain = await issue_key(engine, "capped")
    limited = await issue_key(engine, "capped", monthly_budget_usd=Decimal("0.5"))

    def entry(key, tokens, estimated=False):  # 1,000 tokens cost 1 USD
        call = CallContext(request_id=uuid.uuid4(), tenant_id=tenant.id, key_id=key.id, endpoint="responses",
                           stream=False, started_at=now, price=price, quota_period=period_start(now))
        return build_entry(call, parse_usage({"input_tokens": tokens, "output_tokens": 0}), status="completed",
                           upstream_response_id=None, finished_at=now, first_byte_ms=1, estimated=estimated)
    async with engine.begin() as conn:  # the settlement trigger moves the counters and records the alerts
        await insert_entries(conn, [entry(plain, 300), entry(limited, 600), entry(plain, 50, estimated=True)])

    return plain, limited


async def test_dashboard_shows_limits_forecasts_thresholds_and_estimates(dashboard_proxy, engine):
    plain, limited = await capped_tenant(engine)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as http:
        async with http.get(dashboard_proxy.url + "/admin/dashboard") as reply:
            html = await reply.text()
    limits = re.search(r"<h2>Limits</h2>(.*?)<h2>", html, re.S).group(1)
    rows = [re.sub(r"<[^>]+>", "|", row) for row in re.findall(r"<tr><td.*?</tr>", limits)]
    cells = [[cell for cell in row.split("|") if cell] for row in rows]
    tenant_budget = next(c for c in cells if c[:4] == ["tenant", "capped", "budget USD", "month"])
    assert tenant_budget[4:8] == ["1.00", "0.95", "95.0%", "0.00"] and tenant_budget[-1] == "50%, 80%"
    today = next(c for c in cells if c[:4] == ["tenant", "capped", "budget USD", "today"])
    assert today[4:8] == ["2.00", "0.95", "47.5%", "0.00"]  # the daily budget, in the tenant's day
    tokens = next(c for c in cells if c[:4] == ["tenant", "capped", "tokens", "month"])
    assert tokens[4:8] == ["10,000", "950", "9.5%", "0"]
    key_budget = next(c for c in cells if c[1] == limited.secret[:12])
    assert key_budget[0] == "key of capped" and key_budget[4:8] == ["0.50", "0.60", "120.0%", "0.00"]
    assert key_budget[-1] == "50%, 80%, 100%" and "yes" in key_budget  # over by the month's end
    estimated = re.search(r"<h3>Billed from estimates</h3>(.*?)</table>", limits, re.S).group(1)
    assert "<td class=\"\">capped</td><td class=\"n\">1</td>" in estimated and ">0.05<" in estimated
    # The tenant's own page: its figures, limits, keys and models, and its statement.
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as http:
        async with http.get(dashboard_proxy.url + "/admin/dashboard/tenant", params={"tenant": "capped"}) as reply:
            assert reply.status == 200
            page = await reply.text()
        async with http.get(dashboard_proxy.url + "/admin/dashboard/tenant", params={"tenant": "nobody"}) as reply:
            assert reply.status == 404
    assert figure(page, "charge") == ("0.95", "0.95") and figure(page, "requests")[0] == "3"
    assert "<h2>Limits</h2>" in page and "50%, 80%, 100%" in page
    keys = re.search(r"<h2>Keys</h2>(.*?)<h2>", page, re.S).group(1)
    assert plain.secret[:12] in keys and limited.secret[:12] in keys
    assert "/admin/dashboard/statement?tenant=capped" in page and page.count("<svg") == 1
    assert 'href="/admin/dashboard/tenant?tenant=capped&amp;month=' in html  # linked from the dashboard


async def refused_calls(dashboard_proxy, engine, calls: int) -> None:
    """A tenant whose budget refuses every call: `calls` refused SDK calls, counted."""
    import openai

    from billing.db.keys import issue_key
    from billing.db.tenants import create_tenant
    from proxy.gateway.state import STATE

    await create_tenant(engine, "broke", monthly_budget_usd=Decimal("0.000001"))
    key = await issue_key(engine, "broke")
    async with openai.AsyncOpenAI(base_url=dashboard_proxy.url + "/v1", api_key=key.secret, max_retries=0) as sdk:
        for _ in range(calls):
            with pytest.raises(openai.RateLimitError) as refused:
                await sdk.responses.create(model="gpt-4o-mini", input="Can I?")
            assert refused.value.body["code"] == "insufficient_quota"
    await dashboard_proxy.app[STATE].refusals.flush(engine)  # as its chore does every few seconds


async def test_refused_calls_are_counted_and_shown(dashboard_proxy, engine):
    await refused_calls(dashboard_proxy, engine, 3)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as http:
        async with http.get(dashboard_proxy.url + "/admin/dashboard") as reply:
            html = await reply.text()
        async with http.get(dashboard_proxy.url + "/admin/dashboard/tenant", params={"tenant": "broke"}) as reply:
            page = await reply.text()
    for shown in (html, page):
        refusals = re.search(r"<h3>Refused calls</h3>(.*?)</table>", shown, re.S).group(1)
        # not spent: $0.000001 is left, less than the call's input could cost
        assert ('<td class="">broke</td><td class="n">0</td><td class="n">3</td>' + '<td class="n">0</td>' * 4 +
                '<td class="n">3</td>') in refusals
