"""What alerts say on each channel, by hand-worked cases, and hypothesis over arbitrary
names: an end user, a tag value or a tenant can never make a Slack link or mention, break
out of the HTML, or add a header to an email."""

import html
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from email import message_from_bytes
from email.policy import default

import pytest
from hypothesis import given, settings, strategies as st

from billing.alert_destinations import check_addresses, check_hook_url, shown_hook
from billing.alert_formats import email_message, slack_escape, slack_message, webhook_payload
from billing.alert_rules import forecast_alert_due, month_end_forecast
from billing.alert_text import MAX_NAME_CHARS, AlertFacts, clean, plain, sentence, title

DEC = datetime(2026, 12, 1, tzinfo=timezone.utc)


def facts(**changes) -> AlertFacts:
    base = dict(id=7, tenant="acme", scope="tenant", limit_kind="budget", threshold=80, limit_value=Decimal(100),
                spent=Decimal("80.5"), period_start=DEC)
    return AlertFacts(**{**base, **changes})


@pytest.mark.parametrize("alert, line", [
    (facts(), "Tenant acme reached 80% of its monthly budget: 80.50 of 100.00 USD."),
    (facts(scope="key", subject="ci"), "Key ci reached 80% of its monthly budget: 80.50 of 100.00 USD."),
    (facts(scope="user", subject="alice", limit_kind="daily_budget", limit_value=Decimal(5), spent=Decimal(4)),
     "End user alice reached 80% of its daily budget: 4.00 of 5.00 USD."),
    (facts(scope="tag", subject="project=search", spent=Decimal("0.0000582"), limit_value=Decimal("0.0001")),
     "Tag project=search reached 80% of its monthly budget: 0.0000582 of 0.0001 USD."),
    (facts(scope="run", subject="budget_ab12", run_label="nightly eval"),
     "Run nightly eval (budget_ab12) reached 80% of its run budget: 80.50 of 100.00 USD."),
    (facts(limit_kind="tokens", limit_value=Decimal(1_000_000), spent=Decimal(800_000)),
     "Tenant acme reached 80% of its monthly token quota: 800,000 of 1,000,000 tokens."),
    (facts(limit_kind="low_balance", threshold=0, limit_value=Decimal(5), spent=Decimal("4.2")),
     "The prepaid balance of tenant acme is 4.20 USD, under the alert level of 5.00 USD."),
    (facts(limit_kind="forecast", threshold=100, spent=Decimal(40), forecast_usd=Decimal(124)),
     "At its pace so far, tenant acme spends 124.00 USD by the month's end, over its monthly budget of "
     "100.00 USD (40.00 USD spent so far)."),
])
def test_what_each_alert_says(alert, line):
    assert plain(sentence(alert)) == line


def test_titles_subjects_and_periods():
    assert plain(title(facts(scope="user", subject="alice"))) == "end user alice, monthly budget at 80%"
    message = email_message(facts(time_zone="Europe/Berlin"), "alerts@proxy.test", "ops@acme.test")
    assert message["Subject"] == "[billing-proxy] acme: monthly budget at 80%"
    assert "Period: December 2026 (Europe/Berlin)" in message.get_body(("plain",)).get_content()
    slack = slack_message(facts(scope="run", subject="budget_1", limit_kind="budget"))
    assert "Period: the run's whole life" in slack["blocks"][0]["text"]["text"]


def test_the_webhook_keeps_its_fields_and_names_every_kind():
    body = webhook_payload(facts())
    assert (body["tenant"], body["limit"], body["threshold"], body["spent"], body["limit_value"], body["month"]) == (
        "acme", "monthly_budget_usd", 80, "80.50", "100.00", "2026-12-01T00:00:00+00:00")
    assert webhook_payload(facts(limit_kind="daily_budget"))["limit"] == "daily_budget_usd"
    assert webhook_payload(facts(scope="run", subject="budget_1"))["limit"] == "run_budget_usd"
    tokens = webhook_payload(facts(limit_kind="tokens", spent=Decimal(800), limit_value=Decimal(1000)))
    assert (tokens["limit"], tokens["spent"], tokens["currency"]) == ("monthly_token_quota", "800", None)
    assert webhook_payload(facts(limit_kind="forecast", forecast_usd=Decimal("124.5")))["forecast"] == "124.50"


names = st.text(st.characters(codec="utf-8"), min_size=1, max_size=300)
kinds = st.sampled_from([("user", "budget"), ("tag", "daily_budget"), ("key", "budget"), ("run", "budget"),
                         ("tenant", "tokens"), ("tenant", "low_balance"), ("tenant", "forecast")])


def _slack_texts(message: dict) -> list[str]:
    return [message["text"], message["blocks"][0]["text"]["text"]]


@settings(max_examples=300)
@given(name=names, tenant=names, kind=kinds)
def test_no_name_makes_a_link_a_mention_or_formatting_in_slack(name, tenant, kind):
    scope, limit_kind = kind
    alert = facts(tenant=tenant, scope=scope, subject=name, run_label=name, limit_kind=limit_kind,
                  forecast_usd=Decimal(150))
    for text in _slack_texts(slack_message(alert)):
        assert "<" not in text and ">" not in text  # Slack's links and mentions need them
        assert not re.search(r"&(?!amp;|lt;|gt;)", text)  # every & is an escape
        # each name sits whole in inline code, a backtick of its own shown as a look-alike
        codes = re.findall(r"`([^`]*)`", text)
        shown = slack_escape(clean(name if scope != "tenant" else tenant).replace("`", "ˋ"))
        assert shown in codes
        assert text.count("`") % 2 == 0


@settings(max_examples=300)
@given(name=names, tenant=names, kind=kinds)
def test_no_name_breaks_the_html_or_the_headers_of_an_email(name, tenant, kind):
    scope, limit_kind = kind
    alert = facts(tenant=tenant, scope=scope, subject=name, limit_kind=limit_kind, forecast_usd=Decimal(150))
    message = email_message(alert, "alerts@proxy.test", "ops@acme.test")
    parsed = message_from_bytes(message.as_bytes(), policy=default)
    assert set(parsed.keys()) == {"Subject", "From", "To", "Date", "Message-ID", "Auto-Submitted", "MIME-Version",
                                  "Content-Type"}
    assert parsed["To"] == "ops@acme.test"
    assert "\n" not in str(parsed["Subject"]) and clean(tenant) in str(parsed["Subject"])
    body = parsed.get_body(("html",)).get_content()
    tags = re.findall(r"</?([a-z]+)>", body)
    assert set(tags) <= {"p", "b"} and body.count("<") == len(tags)  # no tag but ours
    if scope != "tenant" and limit_kind not in ("low_balance", "forecast"):
        assert html.escape(clean(name)) in body
    assert clean(name if scope != "tenant" else tenant) in parsed.get_body(("plain",)).get_content() \
        or limit_kind in ("low_balance", "forecast")


@given(name=names)
def test_a_cleaned_name_is_one_short_printable_line(name):
    shown = clean(name)
    assert shown.isprintable() and len(shown) <= MAX_NAME_CHARS


@pytest.mark.parametrize("spent, days, budget, due", [
    ("40", 10, "100", True),  # 124 by the month's end
    ("40", 15, "100", False),  # 82.67
    ("40", 0.5, "100", False),  # too early to say
    ("100", 10, "100", False),  # already reached: the 100% threshold speaks
    ("0", 10, "100", False),
])
def test_when_a_forecast_alert_is_due(spent, days, budget, due):
    end = DEC + timedelta(days=31)
    projected = month_end_forecast(Decimal(spent), DEC, end, DEC + timedelta(days=days))
    assert forecast_alert_due(Decimal(spent), Decimal(budget), projected) is due


def test_forecasts_are_exact():
    assert month_end_forecast(Decimal(40), DEC, DEC + timedelta(days=31), DEC + timedelta(days=10)) == Decimal(124)


def test_destinations_are_checked_and_hooks_never_shown_whole():
    assert check_hook_url("https://hooks.slack.com/services/T/B/x") == "https://hooks.slack.com/services/T/B/x"
    for bad in ("ftp://x/", "https://", "https://a b/", "hooks.slack.com/x", "https://h/\n"):
        with pytest.raises(ValueError):
            check_hook_url(bad)
    assert check_addresses(["a@b.test", " A@B.test ", "c@d.test"]) == ["a@b.test", "c@d.test"]
    for bad in ("a", "a@b", "a b@c.test", "a@b.test\r\nBcc: x@y.test", "<a@b.test>"):
        with pytest.raises(ValueError):
            check_addresses([bad])
    assert shown_hook("https://user:pw@hooks.slack.com/services/T/B/secret") == "https://hooks.slack.com/…"
