"""Alert delivery against real PostgreSQL and local receivers: two delivery loops (as two
replicas) send each alert once per destination; a tenant's own destinations; alerts
recorded before channels existed; STARTTLS required; forecasts and low balances recorded
once per period."""

import asyncio
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import aiohttp
import pytest
from sqlalchemy import text

from billing.db.alert_deliveries import deliveries_of
from billing.db.alert_destinations import get_destinations, set_destinations
from billing.db.alerts import list_alerts
from billing.db.credits import add_credit
from billing.db.engine import make_engine
from billing.db.tenants import create_tenant
from billing.alert_text import AlertFacts
from proxy.config.settings import Settings
from proxy.durability.alert_channels import SmtpServer, send_email
from proxy.durability.alert_kinds import record_alert_kinds
from proxy.durability.alerts import AlertSenders, deliver_due_alerts
from tests.alert_receivers import SMTP_PASSWORD, SMTP_USER, SlackHook, start_smtp
from tests.processes import free_port

MONTH = datetime(2026, 12, 1, tzinfo=timezone.utc)


@pytest.fixture
def mailbox(tmp_path):
    controller, box = start_smtp(tmp_path)
    yield box
    controller.stop()


def smtp_of(box) -> SmtpServer:
    return SmtpServer(box.host, box.port, SMTP_USER, SMTP_USER, SMTP_PASSWORD, "starttls", box.ca_file)


async def insert_alert(engine, tenant_id: int, threshold: int, **columns) -> int:
    values = {"tenant_id": tenant_id, "threshold": threshold, "spent": Decimal(threshold) / 10, "period": MONTH,
              "delivered": None, **columns}
    async with engine.begin() as conn:
        return (await conn.execute(text("""
            INSERT INTO alerts (tenant_id, scope, scope_id, period_start, limit_kind, threshold, limit_value, spent,
                                delivered_at, planned_at)
            VALUES (:tenant_id, 'tenant', :tenant_id, :period, 'budget', :threshold, 10, :spent,
                    :delivered, :delivered)
            RETURNING id"""), values)).scalar_one()


async def deliver_until_done(engine, senders: AlertSenders, seconds: float = 15, wait_for=None) -> None:
    """Run the delivery loop until every alert (or those in `wait_for`) is delivered."""
    async with aiohttp.ClientSession() as http:
        deadline = asyncio.get_running_loop().time() + seconds
        while any(a.delivered_at is None for a in await list_alerts(engine) if wait_for is None or a.id in wait_for):
            assert asyncio.get_running_loop().time() < deadline
            await deliver_due_alerts(engine, http, senders)
            await asyncio.sleep(0.05)


async def test_two_delivery_loops_send_each_alert_once_per_destination(engine, database_url, aiohttp_server,
                                                                       mailbox):
    slack = SlackHook(failures=3)
    slack_server = await aiohttp_server(slack.app())
    tenant = await create_tenant(engine, "busy")
    await set_destinations(engine, "busy", slack_url=str(slack_server.make_url("/services/tenant")),
                           emails=["team@busy.test", "OPS@example.test"])  # the second is the operator's too
    ids = [await insert_alert(engine, tenant.id, threshold) for threshold in range(1, 13)]
    senders = AlertSenders(slack_url=str(slack_server.make_url("/services/operator")),
                           emails=("ops@example.test",), smtp=smtp_of(mailbox))
    other = make_engine(database_url, pool_size=4)  # a second replica
    try:
        await asyncio.gather(deliver_until_done(engine, senders), deliver_until_done(other, senders))
    finally:
        await other.dispose()

    by_path = sorted((m["path"], m["text"]) for m in slack.received)
    assert len(by_path) == len(set(by_path)) == 24  # 12 alerts, to the operator's hook and the tenant's
    mails = [(tuple(to), mail["Subject"]) for to, mail, _ in mailbox.received()]
    assert len(mails) == len(set(mails)) == 24  # 12 alerts, to each address once (one was named twice)
    assert {to for to, _ in mails} == {("ops@example.test",), ("team@busy.test",)}
    states = await deliveries_of(engine, ids)
    assert all(len(states[i]) == 4 and all(d.delivered_at for d in states[i]) for i in ids)


async def test_alerts_sent_before_channels_are_not_sent_again_and_waiting_ones_are(engine, aiohttp_server):
    slack = SlackHook()
    slack_server = await aiohttp_server(slack.app())
    tenant = await create_tenant(engine, "older")
    await insert_alert(engine, tenant.id, 50, delivered=MONTH)  # delivered by the webhook of old
    waiting = await insert_alert(engine, tenant.id, 80)  # recorded while nothing was configured
    async with aiohttp.ClientSession() as http:
        assert await deliver_due_alerts(engine, http, AlertSenders()) == 0  # nowhere to go: it waits
    await deliver_until_done(engine, AlertSenders(slack_url=str(slack_server.make_url("/services/x"))))
    assert len(slack.received) == 1 and "80%" in slack.received[0]["text"]
    assert [a.id for a in await list_alerts(engine) if a.delivered_at] == [waiting, waiting - 1]



async def test_alerts_that_had_nowhere_to_go_for_a_day_are_never_sent(engine, aiohttp_server):
    slack = SlackHook()
    slack_server = await aiohttp_server(slack.app())
    tenant = await create_tenant(engine, "quiet")
    old = await insert_alert(engine, tenant.id, 50)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE alerts SET created_at = now() - interval '25 hours' WHERE id = :id"),
                           {"id": old})
    fresh = await insert_alert(engine, tenant.id, 80)
    await deliver_until_done(engine, AlertSenders(slack_url=str(slack_server.make_url("/services/x"))),
                             wait_for=[fresh])
    assert len(slack.received) == 1 and "80%" in slack.received[0]["text"]
    shown = {a.id: a for a in await list_alerts(engine)}
    assert shown[old].delivered_at is None and shown[old].last_error.startswith("not sent")
    assert (await deliveries_of(engine, [old])) == {}


async def test_a_removed_tenant_hook_is_dropped_and_its_email_still_goes(engine, aiohttp_server, mailbox):
    slack = SlackHook(failures=1000)
    slack_server = await aiohttp_server(slack.app())
    tenant = await create_tenant(engine, "fickle")
    await set_destinations(engine, "fickle", slack_url=str(slack_server.make_url("/services/t")),
                           emails=["me@fickle.test"])
    await insert_alert(engine, tenant.id, 50)
    senders = AlertSenders(smtp=smtp_of(mailbox))
    async with aiohttp.ClientSession() as http:
        await deliver_due_alerts(engine, http, senders)
        assert (await get_destinations(engine, "fickle")).slack_url.endswith("/…")
        await set_destinations(engine, "fickle", slack_url=None)
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE alert_deliveries SET next_attempt_at = now()"))
        await deliver_due_alerts(engine, http, senders)
    [alert] = await list_alerts(engine)
    assert alert.delivered_at is not None and "removed" in alert.last_error
    assert len(mailbox.received()) == 1 and slack.attempts == 1


async def test_starttls_is_required_and_credentials_never_go_in_the_clear(tmp_path):
    from aiosmtpd.controller import Controller

    class Accept:
        async def handle_DATA(self, server, session, envelope):
            return "250 OK"

    port = free_port()
    plain = Controller(Accept(), hostname="127.0.0.1", port=port)  # offers no STARTTLS
    plain.start()
    try:
        facts = AlertFacts(1, "t", "tenant", "budget", 50, Decimal(10), Decimal(5), MONTH)
        error = await send_email(SmtpServer("127.0.0.1", port, "a@b.test", "user", SMTP_PASSWORD), "c@d.test", facts)
        assert error and "STARTTLS" in error.upper() and SMTP_PASSWORD not in error
        refused = await send_email(SmtpServer("127.0.0.1", port, "a@b.test", "user", SMTP_PASSWORD, "none"),
                                   "c@d.test", facts)
        assert refused.startswith("refused") and SMTP_PASSWORD not in refused
    finally:
        plain.stop()


async def _counter(engine, tenant_id: int, window: str, period: datetime, spent: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("""
            INSERT INTO quota_usage (scope, scope_id, "window", period_start, spent_usd, spent_tokens, reserved_usd,
                                     reserved_tokens, finished_usd, finished_tokens)
            VALUES ('tenant', :id, :window, :period, :spent, 0, 0, 0, 0, 0)
            ON CONFLICT (scope, scope_id, "window", period_start) DO UPDATE SET spent_usd = EXCLUDED.spent_usd"""),
            {"id": tenant_id, "window": window, "period": period, "spent": Decimal(spent)})


async def test_a_forecast_past_the_budget_alerts_once_a_month(engine):
    settings = Settings()
    tenant = await create_tenant(engine, "pacey", monthly_budget_usd=Decimal(100))
    await create_tenant(engine, "steady", monthly_budget_usd=Decimal(100))
    await _counter(engine, tenant.id, "month", MONTH, "40")
    assert await record_alert_kinds(engine, settings, MONTH + timedelta(hours=20)) == 0  # too early to say
    assert await record_alert_kinds(engine, settings, MONTH + timedelta(days=15)) == 0  # 40 by the 16th: 82.67
    tenth = MONTH + timedelta(days=10)
    assert await record_alert_kinds(engine, settings, tenth) == 1  # 40 in 10 of 31 days: 124
    assert await record_alert_kinds(engine, settings, tenth + timedelta(days=1)) == 0  # once a month
    [alert] = await list_alerts(engine)
    assert (alert.limit_kind, alert.threshold, alert.spent, alert.forecast_usd) == (
        "forecast", 100, Decimal(40), Decimal(124))
    assert await record_alert_kinds(engine, replace_forecast_off(settings), tenth) == 0


def replace_forecast_off(settings: Settings) -> Settings:
    from dataclasses import replace
    return replace(settings, alert_forecast="off")


async def test_a_low_prepaid_balance_alerts_once_per_top_up(engine):
    from dataclasses import replace
    settings = replace(Settings(), alert_low_balance_usd=Decimal(5))
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    tenant = await create_tenant(engine, "prepaid", prepaid=True)
    await create_tenant(engine, "postpaid")  # no credit, but not prepaid: never low
    await add_credit(engine, "prepaid", Decimal(20), "first")
    await _counter(engine, tenant.id, "credit", epoch, "14")
    assert await record_alert_kinds(engine, settings) == 0  # 6 left
    await _counter(engine, tenant.id, "credit", epoch, "16")
    assert await record_alert_kinds(engine, settings) == 1  # 4 left: under 5
    assert await record_alert_kinds(engine, settings) == 0  # once for this top-up
    await add_credit(engine, "prepaid", Decimal(10), "more")
    assert await record_alert_kinds(engine, settings) == 0  # 14 left
    await _counter(engine, tenant.id, "credit", epoch, "27.5")
    assert await record_alert_kinds(engine, settings) == 1  # 2.5 left: a new crossing
    alerts = await list_alerts(engine)
    assert [(a.limit_kind, a.spent, a.limit_value) for a in alerts] == [
        ("low_balance", Decimal("2.5"), Decimal(5)), ("low_balance", Decimal(4), Decimal(5))]
