"""A team's day, end to end: one key shared by three end users (named by `safety_identifier`,
`user` and `X-Billing-User`) on two projects (tagged by `metadata` and `X-Billing-Tags`),
with a cap for every end user, a budget for one project and a run budget made with
`POST /v1/budgets`. Each budget stops only what it weighs; `report --by user` and
`--by tag:project,model` equal the ledger group by group; every threshold crossed is one
Slack message to the operator and one email to the team, once."""

import asyncio
import json
import time
from collections import defaultdict
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal

import openai
import pytest
from sqlalchemy import select

from billing.budgets import Subject, tag_subject
from billing.db.alert_destinations import set_destinations
from billing.db.alerts import list_alerts
from billing.db.budgets import set_budget
from billing.db.keys import issue_key
from billing.db.tables import ledger_entries
from billing.db.tenants import create_tenant
from proxy.app import create_app
from tests.alert_receivers import SMTP_PASSWORD, SMTP_USER, SlackHook, start_smtp
from tests.conftest import RunningProxy, TenantKey
from tests.e2e.test_attributed_budgets import mirror_knows, post, settled, until_refused
from tests.e2e.test_attribution_reports import cli

MONTH = datetime.now(timezone.utc).strftime("%Y-%m")
USER_CAP, ADS_BUDGET, RUN_BUDGET = Decimal("0.001"), Decimal("0.002"), Decimal("0.0006")
THRESHOLDS = (50, 80, 100)
TEAM_EMAIL = "finance@day-team.example"
# how each of the three users names itself, and how each project is tagged
USERS = {"alice": {"safety_identifier": "alice"}, "bob": {"user": "bob"},
         "carol": {"extra_headers": {"X-Billing-User": "carol"}}}
PROJECTS = {"search": {"metadata": {"project": "search"}},
            "ads": {"extra_headers": {"X-Billing-Tags": "project=ads,env=prod"}}}


def merged(*parts: dict) -> dict:
    fields, headers = {}, {}
    for part in parts:
        headers.update(part.get("extra_headers", {}))
        fields.update({k: v for k, v in part.items() if k != "extra_headers"})
    return {**fields, "extra_headers": headers}


@pytest.fixture
def mailbox(tmp_path):
    controller, box = start_smtp(tmp_path)
    yield box
    controller.stop()


@pytest.fixture
async def day(aiohttp_server, engine, database_url, proxy_settings, mailbox):
    slack = SlackHook()
    slack_server = await aiohttp_server(slack.app())
    settings = replace(proxy_settings, alert_slack_url=str(slack_server.make_url("/services/T0/B0/operator")),
                       smtp_host=mailbox.host, smtp_port=mailbox.port, smtp_username=SMTP_USER,
                       smtp_password=SMTP_PASSWORD, smtp_from=SMTP_USER, smtp_ca_file=mailbox.ca_file)
    app = create_app(settings, database_url)
    server = await aiohttp_server(app)
    proxy = RunningProxy(str(server.make_url("")).rstrip("/"), app, settings)
    tenant = await create_tenant(engine, "day-team", alert_thresholds=list(THRESHOLDS))
    issued = await issue_key(engine, "day-team", label="product")
    key = TenantKey(tenant.name, tenant.id, issued.id, issued.secret)
    await set_destinations(engine, "day-team", emails=[TEAM_EMAIL])
    await set_budget(engine, "day-team", Subject("user", None), "day", USER_CAP)
    await set_budget(engine, "day-team", tag_subject("project=ads"), "month", ADS_BUDGET)
    async with openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=key.secret, max_retries=0) as client:
        yield proxy, client, key, slack


def a_call(client, **kwargs):
    return lambda: client.responses.create(model="gpt-5-mini", input="Plan the day.", max_output_tokens=64,
                                           **kwargs)


async def spent(engine, where) -> Decimal:
    async with engine.connect() as conn:
        charges = (await conn.execute(select(ledger_entries.c.charge_total).where(where))).scalars().all()
    return sum(charges, Decimal(0))


def grouped(entries, key) -> dict:
    """The ledger summed by hand, per group: requests, tokens, cost and charge."""
    groups = defaultdict(lambda: [0, 0, 0, Decimal(0), Decimal(0)])
    for entry in entries:
        group = groups[key(entry)]
        group[0] += 1
        group[1] += entry.input_tokens
        group[2] += entry.output_tokens
        group[3] += entry.cost_total
        group[4] += entry.charge_total
    return {k: tuple(v) for k, v in groups.items()}


def from_report(rows, key) -> dict:
    return {key(r): (r["requests"], r["input_tokens"], r["output_tokens"], Decimal(r["cost"]), Decimal(r["charge"]))
            for r in rows}


async def test_a_teams_day_by_user_project_and_run(day, engine, database_url, monkeypatch, capsys, mailbox):
    proxy, client, key, slack = day
    await mirror_knows(proxy, key, ("tag:project", "user"))

    # the day's work: every user on every project
    for name, user in USERS.items():
        for project, tags in PROJECTS.items():
            await a_call(client, **merged(user, tags))()

    # a fourth user spends its cap: refused, while the others go on
    made, refusal = await until_refused(a_call(client, **merged({"safety_identifier": "dave"}, PROJECTS["search"])))
    assert made >= 1 and refusal.response.headers["x-billing-refused-by"] == "user_daily_budget"
    assert "end user `dave`" in refusal.body["message"]
    for user in USERS.values():
        await a_call(client, **merged(user, PROJECTS["search"]))()

    # the ads project spends its budget: refused, search goes on
    made, refusal = await until_refused(a_call(client, **PROJECTS["ads"]))
    assert made >= 1 and refusal.response.headers["x-billing-refused-by"] == "tag_budget"
    assert "tag `project=ads`" in refusal.body["message"]
    await a_call(client, **PROJECTS["search"])()

    # a run budget the team makes for an evaluation: that run stops, the key goes on
    status, run = await post(proxy, key.secret, "/v1/budgets", {"amount_usd": str(RUN_BUDGET), "expires_in": 3600,
                                                                "label": "nightly eval"})
    assert status == 200, run
    made, refusal = await until_refused(a_call(client, extra_headers={"X-Billing-Budget": run["id"]}))
    assert made >= 1 and refusal.response.headers["x-billing-refused-by"] == "run_budget"
    await a_call(client)()
    await settled(proxy, engine)

    # the spend of each budget's subject, from the ledger, within its budget
    dave = await spent(engine, ledger_entries.c.end_user == "dave")
    ads = await spent(engine, ledger_entries.c.tags["project"].astext == "ads")
    eval_run = await spent(engine, ledger_entries.c.run_budget == run["id"])
    assert 0 < dave <= USER_CAP and 0 < ads <= ADS_BUDGET and 0 < eval_run <= RUN_BUDGET
    for name in USERS:
        assert await spent(engine, ledger_entries.c.end_user == name) <= USER_CAP

    # reports by user and by project and model equal the ledger summed by hand
    monkeypatch.setenv("DATABASE_URL", database_url)
    async with engine.connect() as conn:
        entries = (await conn.execute(select(ledger_entries))).all()
    run_cli = lambda *argv: asyncio.get_running_loop().run_in_executor(None, cli, capsys, *argv)  # noqa: E731
    status, out, _ = await run_cli("report", "--month", MONTH, "--tenant", "day-team", "--by", "user",
                                   "--format", "json")
    report = json.loads(out)
    assert status == 0
    assert from_report(report["rows"], lambda r: r["user"]) == grouped(entries, lambda e: e.end_user)
    assert set(r["user"] for r in report["rows"]) == {"alice", "bob", "carol", "dave", None}
    status, out, _ = await run_cli("report", "--month", MONTH, "--tenant", "day-team", "--by", "tag:project,model",
                                   "--format", "json")
    rows = json.loads(out)["rows"]
    assert from_report(rows, lambda r: (r["tag:project"], r["model"])) == grouped(
        entries, lambda e: ((e.tags or {}).get("project"), e.model))
    assert Decimal(report["total_charge"]) == sum((e.charge_total for e in entries), Decimal(0))

    # every threshold crossed is one alert, one Slack message and one email, once
    subjects = {"user": (dave, USER_CAP, "dave"), "tag": (ads, ADS_BUDGET, "project=ads"),
                "run": (eval_run, RUN_BUDGET, run["id"])}
    crossed = {(scope, t) for scope, (used, limit, _) in subjects.items() for t in THRESHOLDS if used * 100 >= limit * t}
    assert {("user", 50), ("tag", 50), ("run", 50)} <= crossed
    deadline = time.monotonic() + 30
    while not ((alerts := await list_alerts(engine, "day-team")) and len(alerts) == len(crossed)
               and all(a.delivered_at for a in alerts)):
        assert time.monotonic() < deadline, [(a.scope, a.threshold, a.attempts, a.last_error) for a in alerts]
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.5)  # nothing more arrives after
    assert {(a.scope, a.threshold) for a in await list_alerts(engine, "day-team")} == crossed
    assert len(slack.received) == len(crossed)
    mails = mailbox.received()
    assert len(mails) == len(crossed) and all(to == [TEAM_EMAIL] and tls for to, _, tls in mails)
    for scope, threshold in crossed:
        name = subjects[scope][2]
        assert sum(name in m["text"] and f"{threshold}%" in m["text"] for m in slack.received) == 1, (scope, threshold)
        assert sum(name in mail["Subject"] + mail.get_body(("plain",)).get_content() and f"{threshold}%" in
                   mail["Subject"] for _, mail, _ in mails) == 1, (scope, threshold)
