"""The admin pages in a real browser: drawn by headless Chromium, printed to PDF, and checked
by axe-core against WCAG 2 A and AA."""

import asyncio
import json
import os
import re
import shutil
import subprocess
from datetime import datetime, timezone
from decimal import Decimal
from html import unescape
from pathlib import Path

import aiohttp
import pytest
from pypdf import PdfReader

from billing.db.reports import monthly_report
from billing.display import readable, to_cents
from tests.e2e.test_admin_api import ADMIN_TOKEN
from tests.e2e.test_dashboard import capped_tenant, refused_calls
from tests.e2e.test_reports_reconcile import mixed_traffic


def chromium(tmp_path, *args: str) -> subprocess.CompletedProcess:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Chromium is not installed (apt-get install chromium); .ci/run installs it")
    return subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         *args], capture_output=True, timeout=120)


async def screenshot(tmp_path, html: str, name: str) -> bytes:
    """The page as Chromium draws it, saved as `name`.png (and into $DASHBOARD_SCREENSHOTS, if set)."""
    page, shot = tmp_path / f"{name}.html", tmp_path / f"{name}.png"
    page.write_text(html)
    done = await asyncio.get_running_loop().run_in_executor(
        None, lambda: chromium(tmp_path, "--window-size=1000,2200", f"--screenshot={shot}", page.as_uri()))
    assert shot.exists(), done.stderr.decode()[-2000:]
    if os.environ.get("DASHBOARD_SCREENSHOTS"):
        shutil.copy(shot, Path(os.environ["DASHBOARD_SCREENSHOTS"]) / shot.name)
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000  # an empty white page compresses to a few KB
    return png


async def pdf_pages(tmp_path, html: str, name: str) -> list[str]:
    """The page printed to PDF by Chromium, as the text of each of its pages."""
    page, pdf = tmp_path / f"{name}.html", tmp_path / f"{name}.pdf"
    page.write_text(html)
    done = await asyncio.get_running_loop().run_in_executor(
        None, lambda: chromium(tmp_path, "--no-pdf-header-footer", f"--print-to-pdf={pdf}", page.as_uri()))
    assert pdf.exists(), done.stderr.decode()[-2000:]
    return [p.extract_text() for p in PdfReader(pdf).pages]


def axe_core() -> Path:
    """axe-core's browser build: $AXE_CORE_JS, or ./node_modules (npm install axe-core)."""
    found = Path(os.environ.get("AXE_CORE_JS") or "node_modules/axe-core/axe.min.js")
    if not found.exists():
        pytest.skip("axe-core is not installed (npm install axe-core); .ci/run installs it")
    return found.resolve()


async def accessibility_violations(tmp_path, html: str, name: str) -> list[dict]:
    """What axe-core finds against WCAG 2 A and AA in the page, run in headless Chromium (the
    checker is added to a copy of the page; the pages themselves carry no script)."""
    script = ('<script src="' + axe_core().as_uri() + '"></script><script>'
              'axe.run(document, {runOnly: ["wcag2a", "wcag2aa"]}).then(function (r) {'
              'var out = document.createElement("pre"); out.id = "axe-result";'
              'out.textContent = JSON.stringify({passes: r.passes.length, violations: r.violations.map('
              'function (v) { return {id: v.id, help: v.help, nodes: v.nodes.map(function (n) {'
              'return n.target.join(" "); }).slice(0, 5)}; })}); document.body.appendChild(out); });</script>')
    page = tmp_path / f"{name}-axe.html"
    page.write_text(html.replace("</body>", script + "</body>"))
    done = await asyncio.get_running_loop().run_in_executor(None, lambda: chromium(
        tmp_path, "--allow-file-access-from-files", "--virtual-time-budget=15000", "--dump-dom", page.as_uri()))
    found = re.search(r'<pre id="axe-result">(.*?)</pre>', done.stdout.decode())
    assert found, done.stderr.decode()[-2000:]
    result = json.loads(unescape(found.group(1)))
    assert result["passes"] > 0  # it did check the page
    return result["violations"]


async def a_full_month(dashboard_proxy, engine) -> dict[str, str]:
    """A month with several tenants, limits, crossed thresholds, an estimated entry and
    refusals; the dashboard, a tenant page and a statement of it, as served."""
    await mixed_traffic(dashboard_proxy, engine)
    await capped_tenant(engine)
    await refused_calls(dashboard_proxy, engine, 2)
    pages = {}
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as http:
        for name, path, params in (("dashboard", "/admin/dashboard", {}),
                                   ("tenant", "/admin/dashboard/tenant", {"tenant": "capped"}),
                                   ("statement", "/admin/dashboard/statement", {"tenant": "alpha"})):
            async with http.get(dashboard_proxy.url + path, params=params) as reply:
                assert reply.status == 200
                pages[name] = await reply.text()
    return pages


async def test_the_pages_meet_wcag_2_a_and_aa(dashboard_proxy, engine, tmp_path):
    """axe-core in headless Chromium: labels, contrast, table headers, names."""
    for name, html in (await a_full_month(dashboard_proxy, engine)).items():
        assert await accessibility_violations(tmp_path, html, name) == [], name
    broken = '<!doctype html><html lang="en"><head><title>x</title></head><body><img src="x.png"></body></html>'
    assert [v["id"] for v in await accessibility_violations(tmp_path, broken, "broken")] == ["image-alt"]


async def test_dashboard_tenant_page_and_statement_in_a_browser(dashboard_proxy, engine, tmp_path):
    """A month with several tenants, limits, crossed thresholds and an estimated entry: the
    dashboard and a tenant page drawn by Chromium, and a statement printed to PDF whose pages
    say what the report says."""
    pages = await a_full_month(dashboard_proxy, engine)
    month = datetime.now(timezone.utc).strftime("%Y-%m")
    report = await monthly_report(engine, month, tenant="alpha", by=("model",))
    # the refusals are shown: none spent, 2 whose worst case is over what is left
    assert "<td class=\"\">broke</td><td class=\"n\">0</td><td class=\"n\">2</td>" in pages["dashboard"]
    assert "50%, 80%, 100%" in pages["dashboard"] and "<h3>Billed from estimates</h3>" in pages["dashboard"]
    await screenshot(tmp_path, pages["dashboard"], "dashboard")
    await screenshot(tmp_path, pages["tenant"], "tenant")
    text = "\n".join(await pdf_pages(tmp_path, pages["statement"], "statement"))
    due = to_cents(report.total_charge)
    assert f"ST-{month.replace('-', '')}-alpha" in text and f"Total due: {readable(due)} USD" in text
    for row in report.rows:
        assert row.group["model"] in text and readable(row.charge) in text


async def test_a_long_statement_prints_on_several_pages_each_with_its_header(tmp_path):
    from billing.statement import Statement
    from proxy.admin.pages import statement_page

    lines = [{"model": f"model-{n:03d}", "requests": n, "input_tokens": 10 * n, "cached_tokens": 0,
              "output_tokens": n, "reasoning_tokens": 0, "charge_usd": Decimal(n) / 1000} for n in range(1, 121)]
    statement = Statement("big-team", "2026-11", lines, sum((line["charge_usd"] for line in lines), Decimal(0)))
    pages = await pdf_pages(tmp_path, statement_page(statement, "2026-12-01"), "long")
    assert len(pages) >= 3
    assert all("Model" in page and "Charge USD" in page for page in pages)  # the table's header on every page
    assert "model-001" in pages[0] and "model-120" in "".join(pages[-2:])
    assert "Total due: 7.26 USD" in pages[-1]  # 1/1000 + 2/1000 + ... + 120/1000 = 7,260/1000
