"""Alerts on every channel, end to end: a call that crosses a threshold yields exactly one
Slack message, one email (STARTTLS, with a login) and one signed webhook, even when the
Slack hook fails at first and is retried."""

import asyncio
import time
from dataclasses import replace
from decimal import Decimal

import openai
import pytest
from aiohttp import web

from billing.db.alert_deliveries import deliveries_of
from billing.db.alerts import list_alerts
from billing.db.keys import issue_key
from billing.db.tenants import create_tenant
from billing.exports import webhook_signature
from proxy.app import create_app
from proxy.gateway.state import STATE
from tests.alert_receivers import SMTP_PASSWORD, SMTP_USER, SlackHook, start_smtp

WEBHOOK_SECRET = "alert-signing-" + "s" * 20


@pytest.fixture
def mailbox(tmp_path):
    controller, box = start_smtp(tmp_path)
    yield box
    controller.stop()


async def test_a_crossing_is_one_slack_message_one_email_and_one_signed_webhook(
        aiohttp_server, engine, database_url, proxy_settings, mailbox):
    slack = SlackHook(failures=2)  # Slack fails twice: retried alone, the email and webhook are not re-sent
    slack_server = await aiohttp_server(slack.app())
    posts = []

    async def webhook(request: web.Request) -> web.Response:
        posts.append((dict(request.headers), await request.read()))
        return web.Response(status=204)

    hook = web.Application()
    hook.router.add_post("/alerts", webhook)
    hook_server = await aiohttp_server(hook)
    settings = replace(proxy_settings, alert_webhook_url=str(hook_server.make_url("/alerts")),
                       alert_webhook_secret=WEBHOOK_SECRET,
                       alert_slack_url=str(slack_server.make_url("/services/T000/B000/operator")),
                       alert_email_to=("ops@example.test",), smtp_host=mailbox.host, smtp_port=mailbox.port,
                       smtp_username=SMTP_USER, smtp_password=SMTP_PASSWORD, smtp_from=SMTP_USER,
                       smtp_ca_file=mailbox.ca_file)
    app = create_app(settings, database_url)
    server = await aiohttp_server(app)

    # gpt-4o-mini: 14.55 micro-USD a call; the 4th call passes 50% of 100 micro-USD
    await create_tenant(engine, "watched", monthly_budget_usd=Decimal("0.0001"), alert_thresholds=[50])
    key = await issue_key(engine, "watched")
    async with openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key=key.secret, max_retries=0) as client:
        for _ in range(4):
            await client.responses.create(model="gpt-4o-mini", input="hi", max_output_tokens=24)
            await app[STATE].writer.flush(timeout=5)

    deadline = time.monotonic() + 20
    while not ((alerts := await list_alerts(engine, "watched")) and all(a.delivered_at for a in alerts)):
        assert time.monotonic() < deadline, [(a.threshold, a.attempts, a.last_error) for a in alerts]
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.5)  # nothing more arrives after
    [alert] = alerts
    assert len(slack.received) == 1 and slack.attempts == 3
    message = slack.received[0]
    assert message["path"] == "/services/T000/B000/operator"
    assert "`watched`" in message["text"] and "50%" in message["text"]
    [section] = message["blocks"]
    assert section["type"] == "section" and section["text"]["type"] == "mrkdwn"
    assert "14.55" not in section["text"]["text"] and "0.0000582 of 0.0001 USD" in section["text"]["text"]

    [(recipients, mail, over_tls)] = mailbox.received()
    assert recipients == ["ops@example.test"] and over_tls and mailbox.logins == [SMTP_USER.encode()]
    assert mail["Subject"] == "[billing-proxy] watched: monthly budget at 50%"
    assert "0.0000582 of 0.0001 USD" in mail.get_body(("plain",)).get_content()
    assert "<b>watched</b>" in mail.get_body(("html",)).get_content()

    [(headers, body)] = posts
    assert headers["webhook-id"] == f"alert_{alert.id}"
    assert headers["webhook-signature"] == webhook_signature(WEBHOOK_SECRET, headers["webhook-id"],
                                                             int(headers["webhook-timestamp"]), body)
    states = {d.channel: d for d in (await deliveries_of(engine, [alert.id]))[alert.id]}
    assert {c: (s.attempts, s.delivered_at is not None) for c, s in states.items()} == {
        "webhook": (1, True), "slack": (3, True), "email": (1, True)}
    assert alert.attempts == 5 and alert.last_error is None
