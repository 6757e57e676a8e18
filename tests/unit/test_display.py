"""Money as people read it, and a statement's single rounding: tables worked out by hand and
properties."""

from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from billing.display import readable, to_cents
from billing.statement import Statement


@pytest.mark.parametrize("value,shown", [
    ("0", "0.00"),
    ("0.052648875", "0.05"),
    ("1234.5", "1,234.50"),
    ("1234567.891", "1,234,567.89"),
    ("-12.5", "-12.50"),
    ("0.125", "0.12"),  # half to even
    ("0.135", "0.14"),
    ("0.015", "0.02"),
    ("0.0004213", "0.0004213"),  # below a cent: 4 significant digits
    ("0.00042135", "0.0004214"),  # half to even on the 4th digit (3 is odd: up)
    ("0.00042125", "0.0004212"),  # (2 is even: stays)
    ("0.005", "0.005000"),
    ("-0.002648875", "-0.002649"),
    ("0.0099996", "0.01"),  # rounds up to a cent: shown as one
    ("0.000001", "0.000001000"),
])
def test_readable(value, shown):
    assert readable(Decimal(value)) == shown


amounts = st.decimals(min_value=Decimal("-1000000"), max_value=Decimal("1000000"), places=9, allow_nan=False,
                      allow_infinity=False)


@given(amounts)
def test_at_a_cent_or_more_what_is_shown_is_the_amount_to_the_cent(value):
    if abs(value) >= Decimal("0.01"):
        assert Decimal(readable(value).replace(",", "")) == to_cents(value)


@given(amounts)
def test_below_a_cent_what_is_shown_is_never_zero_and_within_the_4th_digit(value):
    if value != 0 and abs(to_cents(value)) < Decimal("0.01") and abs(value) < Decimal("0.0099"):
        shown = Decimal(readable(value))
        assert shown != 0 and abs(shown - value) <= abs(value) / 1000


@given(amounts)
def test_a_statement_rounds_once_and_its_rounding_line_balances_it(total):
    statement = Statement("team", "2026-11", [], total)
    assert statement.total + statement.rounding == statement.total_due
    assert abs(statement.rounding) <= Decimal("0.005") and statement.total_due == statement.total_due.quantize(
        Decimal("0.01"))


def test_statement_number_and_period():
    statement = Statement("team-a", "2024-02", [], Decimal(0))
    assert statement.number == "ST-202402-team-a"
    assert [str(day) for day in statement.period] == ["2024-02-01", "2024-02-29"]  # a leap year
