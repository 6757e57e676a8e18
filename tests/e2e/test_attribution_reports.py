"""Reports, statements and the tenant page by end user and by tag, end to end: calls through
the proxy with the official SDK name users and tags; `report --by user` / `--by tag:NAME`
(JSON, CSV, table), `statement --group-by`, the admin API and the dashboard show them, the
entries without one grouped under null, every total equal to the ledger's."""

import asyncio
import csv
import io
import json
from datetime import datetime, timezone
from decimal import Decimal

import aiohttp
import openai
import pytest
from sqlalchemy import func, select

from billing.db.keys import issue_key
from billing.db.tables import ledger_entries
from billing.db.tenants import create_tenant
from proxy.cli import main
from tests.e2e.test_admin_api import ADMIN_TOKEN

MONTH = datetime.now(timezone.utc).strftime("%Y-%m")
CALLS = [  # end user (field or header), tags (metadata or header)
    ({"user": "alice"}, {"metadata": {"project": "search"}}),
    ({"user": "alice"}, {"extra_headers": {"X-Billing-Tags": "project=ads,env=prod"}}),
    ({"extra_headers": {"X-Billing-User": "bob"}}, {"metadata": {"project": "search", "env": "dev"}}),
    ({}, {}),  # neither: grouped under null
    ({"safety_identifier": "carol"}, {}),
]


async def attributed_traffic(proxy, engine) -> tuple[int, Decimal]:
    await create_tenant(engine, "acme")
    key = await issue_key(engine, "acme", label="app")
    async with openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=key.secret, max_retries=0) as client:
        for user, tags in CALLS:
            headers = {**user.get("extra_headers", {}), **tags.get("extra_headers", {})}
            fields = {k: v for k, v in {**user, **tags}.items() if k != "extra_headers"}
            await client.responses.create(model="gpt-4o-mini", input="Count the ledger.", extra_headers=headers,
                                          **fields)
    await proxy.state.writer.flush(timeout=10)
    async with engine.connect() as conn:
        count, charge = (await conn.execute(select(func.count(), func.sum(ledger_entries.c.charge_total)))).one()
    assert count == len(CALLS)
    return count, charge


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


async def test_reports_and_statements_by_user_and_tag_through_the_cli(proxy, engine, database_url, monkeypatch,
                                                                     capsys):
    count, charge = await attributed_traffic(proxy, engine)
    monkeypatch.setenv("DATABASE_URL", database_url)
    run = lambda *argv: asyncio.get_running_loop().run_in_executor(None, cli, capsys, *argv)  # noqa: E731

    status, out, _ = await run("report", "--month", MONTH, "--by", "user", "--format", "json")
    report = json.loads(out)
    assert status == 0 and report["by"] == ["user"] and Decimal(report["total_charge"]) == charge
    assert {r["user"]: r["requests"] for r in report["rows"]} == {"alice": 2, "bob": 1, "carol": 1, None: 1}

    status, out, _ = await run("report", "--month", MONTH, "--by", "tag:project,model", "--format", "json")
    rows = json.loads(out)["rows"]
    assert {r["tag:project"]: r["requests"] for r in rows} == {"search": 2, "ads": 1, None: 2}
    assert sum(Decimal(r["charge"]) for r in rows) == charge and all(r["model"] == "gpt-4o-mini" for r in rows)

    # user and a tag together: no roll-up serves it, the entries are scanned
    status, out, _ = await run("report", "--month", MONTH, "--by", "tenant,user,tag:env", "--format", "json")
    rows = json.loads(out)["rows"]
    assert {(r["user"], r["tag:env"]): r["requests"] for r in rows} == {
        ("alice", None): 1, ("alice", "prod"): 1, ("bob", "dev"): 1, ("carol", None): 1, (None, None): 1}

    status, out, _ = await run("report", "--month", MONTH, "--by", "tag:env", "--format", "csv")
    lines = list(csv.DictReader(io.StringIO(out)))
    assert {line["tag:env"]: int(line["requests"]) for line in lines} == {"prod": 1, "dev": 1, "": 3}
    assert sum(Decimal(line["charge"]) for line in lines) == charge

    status, out, _ = await run("report", "--month", MONTH, "--by", "user")
    assert status == 0 and "(none)" in out and "alice" in out and "TOTAL" in out

    for bad in ("colour", "tag:has space", "tag:", "user,tag:" + "x" * 65):
        with pytest.raises(SystemExit) as exit_:
            await run("report", "--month", MONTH, "--by", bad)
        assert exit_.value.code == 2
        assert "cannot group by" in capsys.readouterr().err

    totals = {}
    for group in ("model", "user", "tag:project"):
        status, out, _ = await run("statement", "--tenant", "acme", "--month", MONTH, "--group-by", group)
        lines = list(csv.reader(io.StringIO(out)))
        assert status == 0 and lines[0][0] == group and lines[-1][0] == "TOTAL"
        assert sum(Decimal(line[-1]) for line in lines[1:-1]) == Decimal(lines[-1][-1])
        assert int(lines[-1][1]) == count
        totals[group] = lines[-1][-1]
    assert len(set(totals.values())) == 1 and Decimal(totals["model"]) == charge
    assert [line[:2] for line in lines[1:-1]] == [["ads", "1"], ["search", "2"], ["", "2"]]  # untagged: empty cell
    status, out, _ = await run("statement", "--tenant", "acme", "--month", MONTH, "--group-by", "user",
                               "--format", "html")
    assert status == 0 and "End user" in out and "(none)" in out and "per end user" in out
    with pytest.raises(SystemExit):
        await run("statement", "--tenant", "acme", "--group-by", "tenant")
    assert "model, user, tag:NAME" in capsys.readouterr().err


async def test_the_admin_api_and_the_tenant_page_by_user_and_tag(dashboard_proxy, engine):
    count, charge = await attributed_traffic(dashboard_proxy, engine)
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async def get(path, **params):
            async with http.get(dashboard_proxy.url + path, params=params) as reply:
                return reply.status, await reply.text()

        status, body = await get("/admin/reports", month=MONTH, by="user,model")
        report = json.loads(body)
        assert status == 200 and report["by"] == ["user", "model"] and Decimal(report["total_charge"]) == charge
        assert {r["user"] for r in report["rows"]} == {"alice", "bob", "carol", None}
        status, body = await get("/admin/reports.csv", month=MONTH, by="tag:project")
        lines = list(csv.DictReader(io.StringIO(body)))
        assert status == 200 and {line["tag:project"] for line in lines} == {"search", "ads", ""}
        for bad in ("tag:has space", "users", "tag:a,tag:b,tag:c,tag:d,tag:e,tag:f,tag:g,tag:h,tag:i"):
            status, body = await get("/admin/reports", month=MONTH, by=bad)
            assert status == 400 and json.loads(body)["error"]["param"] == "by", bad
        status, body = await get("/admin/openapi.json")
        by = next(p for p in json.loads(body)["paths"]["/admin/reports"]["get"]["parameters"] if p["name"] == "by")
        assert "tag:" in by["schema"]["anyOf"][0]["pattern"]

        status, page = await get("/admin/dashboard/tenant", tenant="acme", month=MONTH)
        assert status == 200 and "<script" not in page
        assert "<h2>Top end users</h2>" in page and "<h2>Spend per tag value</h2>" in page
        users = page.split("<h2>Top end users</h2>")[1].split("<h2>")[0]
        assert users.index("alice") < users.index("bob") and "(no end user named)" in users and "40.0%" in users
        tags = page.split("<h2>Spend per tag value</h2>")[1].split("<h2>")[0]
        assert "<h3>Tag project</h3>" in tags and "<h3>Tag env</h3>" in tags and "(no env tag)" in tags
        status, page = await get("/admin/dashboard/statement", tenant="acme", month=MONTH, group_by="user")
        assert status == 200 and "End user" in page and "alice" in page
        status, page = await get("/admin/dashboard/statement", tenant="acme", month=MONTH, group_by="key")
        assert status == 400
