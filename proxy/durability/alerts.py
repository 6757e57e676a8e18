"""Delivering threshold alerts on every channel, with retries.

Each turn plans the alerts recorded since the last (one delivery row per channel and
destination), then leases the rows that are due and sends them at once, each on its own:
a failure backs off that row alone (2 s doubling, at most an hour)."""

import asyncio
import logging
from dataclasses import dataclass

import aiohttp

from billing.db.alert_deliveries import OPERATOR, Channels, Delivery, claim, drop, mark_delivered, mark_failed, plan
from proxy.config.settings import Settings
from proxy.durability.alert_channels import SmtpServer, send_email, send_slack, send_webhook

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlertSenders:
    """The operator's channels, from the settings."""
    webhook_url: str | None = None
    webhook_secret: str | None = None
    slack_url: str | None = None
    emails: tuple[str, ...] = ()
    smtp: SmtpServer | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> "AlertSenders":
        smtp = None
        if settings.smtp_host and settings.smtp_from:
            smtp = SmtpServer(settings.smtp_host, settings.smtp_port, settings.smtp_from, settings.smtp_username,
                              settings.smtp_password, settings.smtp_security, settings.smtp_ca_file)
        return cls(settings.alert_webhook_url, settings.alert_webhook_secret, settings.alert_slack_url,
                   settings.alert_email_to, smtp)

    def channels(self) -> Channels:
        return Channels(webhook=bool(self.webhook_url), slack=bool(self.slack_url), emails=self.emails,
                        smtp=self.smtp is not None)


async def _send(http: aiohttp.ClientSession, senders: AlertSenders, delivery: Delivery) -> str | None:
    facts = delivery.facts
    if delivery.channel == "webhook":
        return await send_webhook(http, senders.webhook_url, senders.webhook_secret, facts)
    if delivery.channel == "slack":
        url = senders.slack_url if delivery.destination == OPERATOR else delivery.tenant_slack_url
        return await send_slack(http, url, facts)
    return await send_email(senders.smtp, delivery.destination, facts)


async def _deliver(engine, http: aiohttp.ClientSession, senders: AlertSenders, delivery: Delivery) -> bool:
    if delivery.channel == "slack" and delivery.destination != OPERATOR and not delivery.tenant_slack_url:
        await drop(engine, delivery, "the tenant's Slack hook was removed")
        return False
    error = await _send(http, senders, delivery)
    if error is None:
        await mark_delivered(engine, delivery)
        return True
    log.warning("alert %d not delivered by %s: %s", delivery.facts.id, delivery.channel, error)
    await mark_failed(engine, delivery, error)
    return False


async def deliver_due_alerts(engine, http: aiohttp.ClientSession, senders: AlertSenders) -> int:
    """Plan new alerts, send every delivery that is due; returns how many were sent. With
    nowhere to send (no channel, no tenant destination), alerts stay recorded
    (`billing-proxy alerts`) and undelivered."""
    channels = senders.channels()
    await plan(engine, channels)
    due = await claim(engine, channels)
    sent = await asyncio.gather(*(_deliver(engine, http, senders, d) for d in due))
    return sum(sent)
