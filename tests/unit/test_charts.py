"""The month's stacked daily chart: every day of the month on the axis, a segment per day
and series with its amount, the largest series named and the rest as others."""

import re
from datetime import date
from decimal import Decimal

from billing.display import readable
from proxy.admin.charts import MAX_SERIES, stacked_days

NOVEMBER = [date(2026, 11, day) for day in range(1, 31)]


def test_a_month_with_two_busy_days_keeps_every_day_on_the_axis():
    values = {(date(2026, 11, 3), "team-a"): Decimal("1.5"), (date(2026, 11, 3), "team-b"): Decimal("0.25"),
              (date(2026, 11, 20), "team-a"): Decimal("0.0004213")}
    svg = stacked_days(NOVEMBER, values, "Charged per day", readable)
    segments = re.findall(r"<title>(\d{4}-\d\d-\d\d), ([^:]+): ([^<]+)</title>", svg)
    assert sorted(segments) == [("2026-11-03", "team-a", "1.50"), ("2026-11-03", "team-b", "0.25"),
                                ("2026-11-20", "team-a", "0.0004213")]
    day_labels = re.findall(r'class="label">(\d+)</text>', svg)
    assert day_labels == ["1", "5", "10", "15", "20", "25", "30"]  # the whole month, not the busy days only
    assert "team-a (1.50)" in svg and "team-b (0.25)" in svg  # the legend with each series' month


def test_the_scale_tops_at_the_busiest_day():
    values = {(date(2026, 11, 3), "a"): Decimal("1.5"), (date(2026, 11, 3), "b"): Decimal("0.25")}
    svg = stacked_days(NOVEMBER, values, "t", readable)
    assert re.findall(r'text-anchor="end" class="label">([^<]+)</text>', svg) == ["0.00", "0.88", "1.75"]


def test_beyond_the_largest_series_the_rest_are_others():
    values = {(date(2026, 11, 1), f"tenant-{i}"): Decimal(i + 1) for i in range(MAX_SERIES + 3)}
    svg = stacked_days(NOVEMBER, values, "t", readable)
    legend = re.findall(r'class="label">([^<(]+) \(', svg)
    assert legend[-1] == "others" and len(legend) == MAX_SERIES + 1
    assert "others (6.00)" in svg  # tenant-0, -1 and -2: 1 + 2 + 3


def test_no_spend_says_so():
    assert "No spend" in stacked_days(NOVEMBER, {}, "t", readable)


def _tenants(month: str, charges: dict[str, str]):
    from billing.report import Report, ReportRow
    return Report(month=month, tenant=None, by=("tenant",), rows=[
        ReportRow(group={"tenant": name}, requests=1, tokens={}, costs={}, cost=Decimal(charge),
                  charge=Decimal(charge)) for name, charge in charges.items()])


def test_top_movers_against_the_previous_month():
    from proxy.admin.sections import movers_section
    html = movers_section(_tenants("2026-11", {"a": "10", "b": "5"}), _tenants("2026-10", {"a": "4", "c": "3"}))
    rows = re.findall(r"<tr><td class=\"\">(\w)</td>.*?<td class=\"n\">([^<]*)</td></tr>", html)
    assert rows == [("a", "+150%"), ("b", "new"), ("c", "-100%")]  # by the size of the move
    assert '<data value="6.00" title="6.00 USD exactly">6.00</data>' in html
