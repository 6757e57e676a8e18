"""Sending one alert on one channel: the signed webhook, a Slack incoming webhook, an email
over SMTP. Each returns None when sent, else why not, in words that never hold a secret
(a hook's URL, the SMTP password)."""

import asyncio
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import aiosmtplib
import orjson

from billing.alert_destinations import shown_hook
from billing.alert_formats import email_message, slack_message, webhook_payload
from billing.alert_text import AlertFacts
from billing.exports import webhook_signature

HTTP_TIMEOUT = aiohttp.ClientTimeout(total=10)
SMTP_TIMEOUT = 20.0  # both well under the delivery lease


def _scrubbed(text: str, url: str) -> str:
    return text.replace(url, shown_hook(url) or "")[:300]


async def _post(http: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]) -> str | None:
    try:
        async with http.post(url, data=body, headers={"Content-Type": "application/json", **headers},
                             timeout=HTTP_TIMEOUT) as reply:
            if reply.status >= 300:
                answer = (await reply.content.read(200)).decode("utf-8", "replace")
                return _scrubbed(f"answered {reply.status}: {answer}", url)
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        return _scrubbed(f"unreachable: {type(exc).__name__}: {exc}", url)
    return None


async def send_webhook(http: aiohttp.ClientSession, url: str, secret: str | None, facts: AlertFacts
                       ) -> str | None:
    """The operator's webhook, signed as Standard Webhooks when a secret is set; the id is
    the alert's, so a receiver can drop a repeat."""
    body = orjson.dumps(webhook_payload(facts))
    message_id, timestamp = f"alert_{facts.id}", int(time.time())
    headers = {"webhook-id": message_id, "webhook-timestamp": str(timestamp)}
    if secret:
        headers["webhook-signature"] = webhook_signature(secret, message_id, timestamp, body)
    return await _post(http, url, body, headers)


async def send_slack(http: aiohttp.ClientSession, url: str, facts: AlertFacts) -> str | None:
    return await _post(http, url, orjson.dumps(slack_message(facts)), {})


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    security: str = "starttls"  # starttls | tls | none
    ca_file: Path | None = None

    def __repr__(self) -> str:  # never print the password
        return f"SmtpServer({self.host}:{self.port}, {self.security}, user={self.username!r})"


def _tls_context(server: SmtpServer) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if server.ca_file is not None:
        context.load_verify_locations(cafile=str(server.ca_file))
    return context


async def send_email(server: SmtpServer, recipient: str, facts: AlertFacts) -> str | None:
    """One message to one recipient. STARTTLS is required unless the server is set to
    implicit TLS; with `none` no credentials are ever sent."""
    if server.security == "none" and (server.username or server.password):
        return "refused: credentials are never sent over an unencrypted connection"
    try:
        await aiosmtplib.send(
            email_message(facts, server.sender, recipient), sender=server.sender, recipients=[recipient],
            hostname=server.host, port=server.port, username=server.username, password=server.password,
            use_tls=server.security == "tls", start_tls=server.security == "starttls",
            tls_context=_tls_context(server) if server.security != "none" else None, timeout=SMTP_TIMEOUT)
    except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError, ssl.SSLError) as exc:
        text = f"{type(exc).__name__}: {exc}"
        return (text.replace(server.password, "***") if server.password else text)[:300]
    return None
