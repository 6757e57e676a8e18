"""What an alert says, as parts of a sentence. Pure: the channels (`billing/alert_formats.py`)
turn the parts into Slack mrkdwn, an email or a webhook body, each escaping the names in
its own way, since names (end users, tag values, key labels) come from outside.

Alert kinds (`limit_kind`): `budget` (a month's USD; a run's whole life), `daily_budget`,
`tokens` (a month's tokens), `low_balance` (prepaid balance under the operator's level:
`spent` holds the balance), `forecast` (month-to-date spend projected linearly to the
month's end passes the monthly budget: `forecast_usd`)."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from billing.display import CENT, readable

CURRENCY = "USD"
MAX_NAME_CHARS = 120
EPOCH = datetime.fromisoformat("1970-01-01T00:00:00+00:00")


@dataclass(frozen=True)
class Name:
    """A name from outside, to be escaped by each format."""
    text: str


Part = str | Name


@dataclass(frozen=True)
class AlertFacts:
    id: int
    tenant: str
    scope: str  # tenant | key | user | tag | run
    limit_kind: str  # budget | daily_budget | tokens | low_balance | forecast
    threshold: int  # percent (0 for low_balance)
    limit_value: Decimal
    spent: Decimal
    period_start: datetime
    time_zone: str = "UTC"
    subject: str | None = None  # the key's label, the end user, `name=value`, the run's id
    run_label: str | None = None
    forecast_usd: Decimal | None = None
    key_id: int | None = None


def clean(text: str) -> str:
    """One line of at most MAX_NAME_CHARS printable characters (so no header or line break
    can be smuggled into a subject or a message)."""
    text = "".join(ch if ch.isprintable() else "\ufffd" for ch in text)
    return text if len(text) <= MAX_NAME_CHARS else text[:MAX_NAME_CHARS - 1] + "…"


def number(facts: AlertFacts, value: Decimal) -> str:
    """Tokens whole; money to the cent, or below a cent to 4 significant digits (0.0000582)."""
    if facts.limit_kind == "tokens":
        return f"{int(value):,}"
    text = readable(value)
    return text.rstrip("0") if value != 0 and abs(value) < CENT else text


def unit(facts: AlertFacts) -> str:
    return "tokens" if facts.limit_kind == "tokens" else CURRENCY


def amount(facts: AlertFacts, value: Decimal) -> str:
    return f"{number(facts, value)} {unit(facts)}"


def _limit_name(facts: AlertFacts) -> str:
    if facts.scope == "run":
        return "run budget"
    return {"daily_budget": "daily budget", "tokens": "monthly token quota"}.get(facts.limit_kind, "monthly budget")


def who(facts: AlertFacts) -> list[Part]:
    """Whose limit: the tenant, one of its keys, an end user, a tag value or a run."""
    subject = Name(facts.subject or "")
    if facts.scope == "key":
        return ["key ", Name(facts.subject or f"#{facts.key_id}")]
    if facts.scope == "user":
        return ["end user ", subject]
    if facts.scope == "tag":
        return ["tag ", subject]
    if facts.scope == "run":
        return ["run ", Name(facts.run_label), " (", subject, ")"] if facts.run_label else ["run ", subject]
    return ["tenant ", Name(facts.tenant)]


def period(facts: AlertFacts) -> str:
    local = facts.period_start.astimezone(ZoneInfo(facts.time_zone))
    if facts.limit_kind == "low_balance":
        return "since credit began" if facts.period_start <= EPOCH else f"since the top-up of {local:%Y-%m-%d %H:%M}"
    if facts.scope == "run":
        return "the run's whole life"
    if facts.limit_kind == "daily_budget":
        return f"{local:%Y-%m-%d} ({facts.time_zone})"
    return f"{local:%B %Y} ({facts.time_zone})"


def title(facts: AlertFacts) -> list[Part]:
    """A short line, for an email's subject and a notification."""
    if facts.limit_kind == "low_balance":
        return ["prepaid balance low"]
    if facts.limit_kind == "forecast":
        return ["on course to pass its monthly budget"]
    reached = f"{_limit_name(facts)} at {facts.threshold}%"
    return [reached] if facts.scope == "tenant" else [*who(facts), f", {reached}"]


def sentence(facts: AlertFacts) -> list[Part]:
    """The whole statement, with figures."""
    if facts.limit_kind == "low_balance":
        return ["The prepaid balance of tenant ", Name(facts.tenant), f" is {amount(facts, facts.spent)}, under the "
                f"alert level of {amount(facts, facts.limit_value)}."]
    if facts.limit_kind == "forecast":
        return ["At its pace so far, tenant ", Name(facts.tenant), " spends "
                f"{amount(facts, facts.forecast_usd or Decimal(0))} by the month's end, over its monthly budget of "
                f"{amount(facts, facts.limit_value)} ({amount(facts, facts.spent)} spent so far)."]
    head = who(facts)
    head = [head[0][:1].upper() + head[0][1:], *head[1:]]
    return [*head, f" reached {facts.threshold}% of its {_limit_name(facts)}: {number(facts, facts.spent)} of "
            f"{amount(facts, facts.limit_value)}."]


def plain(parts: list[Part]) -> str:
    return "".join(clean(p.text) if isinstance(p, Name) else p for p in parts)
