"""An alert in each channel's format: the webhook's JSON, a Slack incoming-webhook message,
an email. Pure. Every name from outside is escaped for where it lands: Slack's `& < >`
(so no name can make a link or a mention), inside inline code (so `*` or `_` format
nothing); HTML's entities; one clean line in an email's subject."""

import html
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from billing.alert_text import CURRENCY, AlertFacts, Name, Part, clean, period, plain, sentence, title
from billing.report import money

PRODUCT = "billing-proxy"
_LIMITS = {"budget": "monthly_budget_usd", "daily_budget": "daily_budget_usd", "tokens": "monthly_token_quota",
           "low_balance": "prepaid_balance_usd", "forecast": "monthly_budget_usd_forecast"}


def webhook_payload(facts: AlertFacts) -> dict:
    """The signed webhook's body: the fields it always had, plus the kind and the subject."""
    in_money = facts.limit_kind != "tokens"
    figure = (lambda v: money(v)) if in_money else (lambda v: str(int(v)))
    limit = "run_budget_usd" if facts.scope == "run" else _LIMITS.get(facts.limit_kind, facts.limit_kind)
    return {
        "id": facts.id,
        "tenant": facts.tenant,
        "scope": facts.scope,
        "key_id": facts.key_id if facts.scope == "key" else None,
        "subject": facts.subject if facts.scope in ("user", "tag", "run") else None,
        "kind": facts.limit_kind,
        "limit": limit,
        "limit_value": figure(facts.limit_value),
        "threshold": facts.threshold,
        "spent": figure(facts.spent),
        "currency": CURRENCY if in_money else None,
        "forecast": money(facts.forecast_usd) if facts.forecast_usd is not None else None,
        "month": facts.period_start.isoformat(),  # the period's start (a day's, a run's, a top-up's)
        "text": plain(sentence(facts)),
    }


# --- Slack ------------------------------------------------------------------------------

def slack_escape(text: str) -> str:
    """What Slack asks to be escaped in any text it parses."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack(parts: list[Part]) -> str:
    # A name goes in inline code, where mrkdwn formats nothing; a backtick in it would end
    # the code, so it is shown as a look-alike (U+02CB).
    return "".join(f"`{slack_escape(clean(p.text).replace('`', 'ˋ'))}`" if isinstance(p, Name) else slack_escape(p)
                   for p in parts)


def slack_message(facts: AlertFacts) -> dict:
    """An incoming webhook's body: `text` (the notification) and one mrkdwn section."""
    tenant = _slack([Name(facts.tenant)])
    body = (f"*Alert for tenant {tenant}*: {_slack(title(facts))}\n{_slack(sentence(facts))}\n"
            f"Period: {slack_escape(period(facts))}")
    return {"text": f"{tenant}: {_slack(title(facts))}",
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": body}}]}


# --- email ------------------------------------------------------------------------------

def _html(parts: list[Part]) -> str:
    return "".join(f"<b>{html.escape(clean(p.text))}</b>" if isinstance(p, Name) else html.escape(p)
                   for p in parts)


def email_subject(facts: AlertFacts) -> str:
    return f"[{PRODUCT}] {clean(facts.tenant)}: {plain(title(facts))}"


def email_message(facts: AlertFacts, sender: str, recipient: str) -> EmailMessage:
    """Plain text, with an HTML alternative."""
    message = EmailMessage()
    message["Subject"] = email_subject(facts)
    message["From"] = sender
    message["To"] = recipient
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies
    text = (f"Alert for tenant {clean(facts.tenant)}: {plain(title(facts))}\n\n{plain(sentence(facts))}\n"
            f"Period: {period(facts)}\nAlert: {facts.id}\n")
    message.set_content(text)
    message.add_alternative(
        f"<p><b>Alert for tenant {html.escape(clean(facts.tenant))}</b>: {_html(title(facts))}</p>\n"
        f"<p>{_html(sentence(facts))}</p>\n<p>Period: {html.escape(period(facts))}</p>\n", subtype="html")
    return message
