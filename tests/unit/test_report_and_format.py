from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from billing.report import money, parse_month
from billing.report_dimensions import parse_dimensions
from proxy.cli.output import parse_duration, render


def test_parse_month():
    assert parse_month("2026-12") == (datetime(2026, 12, 1, tzinfo=timezone.utc),
                                      datetime(2027, 1, 1, tzinfo=timezone.utc))
    for bad in ("2026-13", "2026-1", "26-01", "2026-00"):
        with pytest.raises(ValueError):
            parse_month(bad)


def test_dimensions():
    assert parse_dimensions("tenant,model,tenant") == ("tenant", "model")
    with pytest.raises(ValueError):
        parse_dimensions("colour")


@pytest.mark.parametrize(("value", "text"), [
    (Decimal("0"), "0.00"), (Decimal("1E-7"), "0.0000001"), (Decimal("12.5"), "12.50"),
    (Decimal("0.00154875"), "0.00154875"), (Decimal("100.000"), "100.00"), (Decimal("1E+3"), "1000.00"),
])
def test_money_is_plain_and_exact(value, text):
    assert money(value) == text


def test_durations():
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration("15m") == timedelta(minutes=15)
    for bad in ("0d", "30", "1y", "-1d"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_csv_and_json_render_decimals_as_strings():
    rows = [{"a": "x", "cost": Decimal("0.0000005")}]
    assert render(rows, ["a", "cost"], "csv") == "a,cost\nx,0.0000005"
    assert '"cost": "0.0000005"' in render(rows, ["a", "cost"], "json")
