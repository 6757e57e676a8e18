"""The shapes a team reads its own spend in: limits, date ranges, cents, exactly."""

from dataclasses import replace
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from billing.keys import KeyGrant
from billing.self_service import (UNLIMITED_USD, BadRange, limit_of, subscription, usage, usage_range)

GRANT = KeyGrant(key_id=7, tenant_id=3, tenant_name="team", key_status="active", tenant_status="active",
                 expires_at=None)
TODAY = date(2026, 11, 25)


@pytest.mark.parametrize("changes,limit", [
    ({}, None),
    ({"tenant_budget_usd": Decimal("50")}, Decimal("50")),
    ({"tenant_budget_usd": Decimal("50"), "monthly_budget_usd": Decimal("5")}, Decimal("5")),  # the key's own
    ({"prepaid": True, "credit_usd": Decimal("20")}, Decimal("20")),
    ({"prepaid": True, "credit_usd": Decimal("20"), "tenant_budget_usd": Decimal("8")}, Decimal("8")),
])
def test_the_limit_a_balance_is_shown_against(changes, limit):
    assert limit_of(replace(GRANT, **changes)) == limit


def test_subscription_without_a_limit_answers_the_sentinel_and_the_key_expiry():
    expires = datetime(2027, 1, 1, tzinfo=timezone.utc)
    shown = subscription(replace(GRANT, expires_at=expires))
    assert shown["hard_limit_usd"] == shown["system_hard_limit_usd"] == UNLIMITED_USD
    assert shown["access_until"] == 1798761600


@pytest.mark.parametrize("start,end,expected", [
    (None, None, (date(2026, 11, 1), date(2026, 11, 26))),  # this month so far, today included
    ("2026-11-01", "2026-11-02", (date(2026, 11, 1), date(2026, 11, 2))),  # the end day excluded
    ("2026-08-18", "2026-11-26", (date(2026, 8, 18), date(2026, 11, 26))),  # 100 days
])
def test_usage_range(start, end, expected):
    assert usage_range(start, end, TODAY) == expected


@pytest.mark.parametrize("start,end", [("2026-11-31", None), ("yesterday", None), ("2026-11-02", "2026-11-02"),
                                       ("2026-08-17", "2026-11-26")])
def test_usage_range_refused(start, end):
    with pytest.raises(BadRange):
        usage_range(start, end, TODAY)


def test_usage_in_exact_cents_per_day_and_model():
    shown = usage([(date(2026, 11, 2), "m2", Decimal("0.000001")), (date(2026, 11, 1), "m1", Decimal("0.052648875")),
                   (date(2026, 11, 2), "m1", Decimal("1.5"))])
    assert shown["total_usage"] == Decimal("155.2649875")  # 5.2648875 + 150 + 0.0001
    assert [(d["timestamp"], [(i["name"], i["cost"]) for i in d["line_items"]]) for d in shown["daily_costs"]] == [
        (1793491200, [("m1", Decimal("5.2648875"))]),
        (1793577600, [("m1", Decimal("150.0")), ("m2", Decimal("0.0001"))])]
