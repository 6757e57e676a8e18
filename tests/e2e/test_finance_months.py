"""Adjustments (never edits) and closed months (late entries go to the open month)."""

import asyncio
import getpass
import json
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import aiohttp
import openai
from sqlalchemy import select

from billing.db.audit import list_audit
from billing.db.ledger import encode_row, insert_rows
from billing.display import readable, to_cents
from billing.db.tables import ledger_entries
from billing.report import money, parse_month
from proxy.app import create_app
from proxy.cli import main
from proxy.durability.spool import Spool
from proxy.gateway.state import STATE
from tests.e2e.test_admin_api import ADMIN_TOKEN

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def cli(*argv: str) -> int:
    return await asyncio.get_running_loop().run_in_executor(None, main, list(argv))


def this_month() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m")


def last_month() -> str:
    start, _ = parse_month(this_month())
    return (start - timedelta(days=1)).strftime("%Y-%m")


async def test_an_adjustment_shows_in_the_report_the_statement_and_reconcile(
        aiohttp_server, engine, database_url, proxy_settings, tenant_key, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    app = create_app(replace(proxy_settings, admin_token=ADMIN_TOKEN), database_url)
    server = await aiohttp_server(app)
    base = str(server.make_url("")).rstrip("/")
    async with openai.AsyncOpenAI(base_url=base + "/v1", api_key=tenant_key.secret, max_retries=0) as sdk:
        for n in range(3):
            await sdk.responses.create(model="gpt-4o-mini", input=f"call {n}")
    await app[STATE].writer.flush(timeout=5)
    async with engine.connect() as conn:
        usage = sum(r.charge_total for r in await conn.execute(select(ledger_entries.c.charge_total)))

    month = this_month()
    async with aiohttp.ClientSession(headers=ADMIN) as http:  # the admin API, as the CLI below
        async with http.post(f"{base}/admin/tenants/{tenant_key.tenant_id}/adjustments",
                             json={"amount_usd": "-0.002", "reason": "SLA credit: outage"}) as reply:
            assert reply.status == 201 and (await reply.json())["amount_usd"] == "-0.002"
        async with http.post(f"{base}/admin/tenants/{tenant_key.tenant_id}/adjustments",
                             json={"amount_usd": "0", "reason": "nothing"}) as reply:
            assert reply.status == 400
        async with http.get(f"{base}/admin/exports") as reply:
            assert reply.status == 200 and (await reply.json()) == {"data": []}  # no sink configured
    assert await cli("adjust", "--tenant", "team-a", "--amount", "0.5", "--reason", "support plan",
                     "--month", month, "--format", "json") == 0
    out = capsys.readouterr().out
    assert json.loads(out[out.index("{"):])["kind"] == "charge"
    adjustments = Decimal("-0.002") + Decimal("0.5")

    # The report: apart, and in the total charged.
    assert await cli("report", "--month", month, "--by", "model", "--format", "json") == 0
    report = json.loads(capsys.readouterr().out)
    assert [a["amount"] for a in report["adjustments"]] == ["-0.002", "0.50"]
    assert Decimal(report["total_usage_charge"]) == usage == sum(Decimal(r["charge"]) for r in report["rows"])
    assert Decimal(report["total_adjustments"]) == adjustments
    assert Decimal(report["total_charge"]) == usage + adjustments

    # The statement (CSV, and the dashboard's page).
    assert await cli("statement", "--tenant", "team-a", "--month", month) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("ADJUSTMENT") and "SLA credit: outage" in line and line.endswith(",-0.002")
               for line in lines)
    assert lines[-1].startswith("TOTAL") and Decimal(lines[-1].split(",")[-1]) == usage + adjustments
    async with aiohttp.ClientSession(headers=ADMIN) as http:
        async with http.get(base + "/admin/dashboard/statement",
                            params={"tenant": "team-a", "month": month, "format": "html"}) as reply:
            page = await reply.text()
        async with http.get(base + "/admin/dashboard", params={"month": month}) as reply:
            dashboard = await reply.text()
        async with http.get(base + "/admin/reports", params={"month": month}) as reply:
            api = await reply.json()
    due = to_cents(usage + adjustments)
    assert "support plan" in page and f'value="{money(due)}" title="{money(due)} USD exactly">{readable(due)}<' in page
    assert f'data-figure="adjustments" value="{money(adjustments)}"' in dashboard and "SLA credit: outage" in dashboard
    assert Decimal(api["total_adjustments"]) == adjustments and len(api["adjustments"]) == 2

    # Reconcile still balances, and says how.
    assert await cli("reconcile", "--month", month) == 0
    assert f"usage {usage:f}".rstrip("0") in capsys.readouterr().out
    audited = await list_audit(engine, target=f"tenant:{tenant_key.tenant_id}")
    assert [(r.action, r.actor) for r in audited][:2] == [("ledger.adjust", "cli:" + getpass.getuser()),
                                                          ("ledger.adjust", "admin-api")]
    assert await cli("adjust", "--tenant", "team-a", "--amount", "0", "--reason", "nothing") == 1
    assert "non-zero" in capsys.readouterr().err


def _entry_like(row: dict, started_at: datetime) -> dict:
    """A copy of a real ledger row as another call made at `started_at`."""
    # plain str keys: a row read back has SQLAlchemy's str-subclass names, which orjson refuses
    copy = {str(k): v for k, v in row.items() if k not in ("booked_on", "recorded_at")}
    copy.update(request_id=uuid.uuid4(), started_at=started_at, finished_at=started_at + timedelta(seconds=2),
                upstream_response_id=f"resp_{uuid.uuid4().hex}", quota_period=None)
    return copy


async def test_a_late_entry_for_a_closed_month_lands_in_the_open_month(
        aiohttp_server, engine, database_url, proxy_settings, tenant_key, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    app = create_app(proxy_settings, database_url)
    server = await aiohttp_server(app)
    async with openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key=tenant_key.secret,
                                  max_retries=0) as sdk:
        await sdk.responses.create(model="gpt-4o-mini", input="this month")
    await app[STATE].writer.flush(timeout=5)
    async with engine.connect() as conn:
        template = (await conn.execute(select(ledger_entries))).one()._asdict()

    # Last month had one call; it is closed (with no grace left to wait for).
    last_day = parse_month(this_month())[0] - timedelta(hours=3)
    async with engine.begin() as conn:
        await insert_rows(conn, [_entry_like(template, last_day)])
    assert await cli("close-month", last_month(), "--grace", "2000") == 1  # not before its end plus the grace
    assert "can be closed from" in capsys.readouterr().err
    assert await cli("close-month", last_month(), "--grace", "0", "--format", "json") == 0
    closed = json.loads(capsys.readouterr().out)
    assert closed["totals"]["team-a"]["requests"] == 1
    assert await cli("close-month", last_month(), "--grace", "0") == 1
    assert "already closed" in capsys.readouterr().err
    assert await cli("adjust", "--tenant", "team-a", "--amount", "-1", "--reason", "x", "--month", last_month()) == 1
    assert "is closed" in capsys.readouterr().err

    # Days later, a spool of last month is replayed: a process that died holding one entry.
    late = _entry_like(template, last_day + timedelta(minutes=30))
    orphan_home = tmp_path / "another-replica"
    spool = Spool(orphan_home / "spool")
    spool.open()
    spool.append_entry(str(late["request_id"]), encode_row(late))
    spool.close()
    replica = create_app(replace(proxy_settings, home=orphan_home), database_url)
    replica_server = await aiohttp_server(replica)
    await replica[STATE].writer.flush(timeout=5)
    await replica_server.close()

    async with engine.connect() as conn:
        booked = (await conn.execute(select(ledger_entries).where(
            ledger_entries.c.request_id == late["request_id"]))).one()
    assert booked.booked_on == datetime.now(timezone.utc).date() and "late" in booked.usage_flags
    assert booked.started_at == late["started_at"]  # when it happened is kept

    # The closed month's statement did not move; the open month shows the late call as such.
    assert await cli("report", "--month", last_month(), "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)["total_requests"] == 1
    assert await cli("reconcile", "--month", last_month()) == 0
    assert "statements unchanged since" in capsys.readouterr().out
    assert await cli("report", "--month", this_month(), "--by", "day", "--format", "json") == 0
    now = json.loads(capsys.readouterr().out)
    assert now["total_requests"] == 2
    [today] = now["rows"]
    assert today["late_requests"] == 1 and Decimal(today["late_charge"]) == late["charge_total"]
    assert await cli("statement", "--tenant", "team-a", "--month", this_month()) == 0
    assert "of which LATE from closed months: 1 calls" in capsys.readouterr().out
    assert await cli("reconcile", "--month", this_month()) == 0
    capsys.readouterr()
    assert await cli("months", "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)[0]["month"] == last_month()
