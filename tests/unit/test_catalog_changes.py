"""The catalog's dated changes and shared tool tables, and the errors that name what is wrong."""

from datetime import datetime, timezone
from decimal import Decimal as D

import pytest

from billing.catalog import CatalogError, parse_catalog

CATALOG = """
[tool_prices.vendor]
web_search = "10.00"
"container.4g" = "120.00"

[models."m"]
max_output_tokens = 1000
tool_prices = "vendor"
tools = { web_search = "25.00" }
input = "5.00"
output = "30.00"

[models."m".service_tiers.priority]
input = "10.00"
output = "60.00"

[[models."m".changes]]
effective_from = "2026-08-21T00:00:00Z"
source = "the cut"
input = "4.00"
output = "20.00"
"""


def test_a_change_is_a_later_version_that_keeps_the_rest():
    first, cut = parse_catalog(CATALOG, "test").versions
    assert (first.tiers[0].input, cut.tiers[0].input) == (D(5), D(4))
    assert cut.effective_from == datetime(2026, 8, 21, tzinfo=timezone.utc) and cut.source == "the cut"
    assert first.service_tiers and not cut.service_tiers  # a change states its service tiers anew
    # the shared table under the model's own tools, in both versions; the output cap kept
    assert first.tools == cut.tools == {"web_search": D(25), "container.4g": D(120)}
    assert cut.max_output_tokens == 1000


@pytest.mark.parametrize(("edit", "message"), [
    (('tool_prices = "vendor"', 'tool_prices = "other"'), "no [tool_prices.other] table"),
    (('effective_from = "2026-08-21T00:00:00Z"\n', ''), "changes[0].effective_from: missing"),
    (('2026-08-21T00:00:00Z', '1970-01-01T00:00:00Z'), "must be later than the version before it"),
    (('source = "the cut"', 'aliases = ["x"]'), "changes[0].aliases: unknown field"),
    (('"container.4g" = "120.00"', '"container.4g" = "-1"'), "tool_prices.vendor.container.4g"),
])
def test_errors_name_the_field(edit, message):
    with pytest.raises(CatalogError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_catalog(CATALOG.replace(*edit), "test")
