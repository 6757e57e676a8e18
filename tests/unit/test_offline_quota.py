"""Admission while the database is down, against the last known quota state. Worked by hand."""

from datetime import datetime, timezone
from decimal import Decimal

from billing.offline_quota import UNKNOWN, LastKnownQuota
from billing.quota import Estimate

D = Decimal
MONTH = datetime(2026, 11, 1, tzinfo=timezone.utc)


def worst(usd: str, tokens: int = 100) -> Estimate:
    return Estimate(input_tokens=tokens, output_tokens=0, charge=D(usd))


def test_unknown_month_cannot_be_admitted():
    assert LastKnownQuota().admit(1, 10, MONTH, worst("0.01")) == UNKNOWN


def test_worst_cases_add_up_until_the_budget_is_spent():
    known = LastKnownQuota()
    known.remember(1, 10, MONTH, D("0.05"), None, None)  # 0.05 USD left
    assert [known.admit(1, 10, MONTH, worst("0.02")) for _ in range(3)] == [None, None, "tenant_budget"]
    assert known.remaining(1, 10, MONTH) == (D("0.01"), None, None)


def test_settling_holds_the_actual_charge_instead_of_the_worst_case():
    known = LastKnownQuota()
    known.remember(1, 10, MONTH, D("0.05"), None, None)
    assert known.admit(1, 10, MONTH, worst("0.04")) is None
    known.settle(1, 10, MONTH, worst("0.04"), D("0.005"), 30)
    assert known.remaining(1, 10, MONTH)[0] == D("0.045")
    assert known.admit(1, 10, MONTH, worst("0.04")) is None  # fits now that the first cost little


def test_token_quota_and_key_budget():
    known = LastKnownQuota()
    known.remember(1, 10, MONTH, None, 250, D("1"))
    assert known.admit(1, 10, MONTH, worst("0.1", 200)) is None
    assert known.admit(1, 10, MONTH, worst("0.1", 100)) == "tenant_tokens"  # 300 > 250
    known.remember(2, 20, MONTH, D("5"), None, D("0.15"))
    assert known.admit(2, 20, MONTH, worst("0.1")) is None
    assert known.admit(2, 20, MONTH, worst("0.1")) == "key_budget"


def test_a_fresh_answer_from_the_database_replaces_what_was_held():
    known = LastKnownQuota()
    known.remember(1, 10, MONTH, D("0.05"), None, None)
    known.admit(1, 10, MONTH, worst("0.05"))
    known.remember(1, 10, MONTH, D("0.03"), None, None)
    assert known.remaining(1, 10, MONTH) == (D("0.03"), None, None)
