"""Report dimensions (`--by`): parsing, which table serves them, the group of entries without
a tag worked out from the roll-ups, and statements per end user or tag. Pure."""

from decimal import Decimal

import pytest
from hypothesis import given, settings, strategies as st

from billing.report import COST_FIELDS, COUNT_FIELDS, Report, ReportRow, with_untagged
from billing.report_dimensions import (DAILY, MAX_DIMENSIONS, NONE_SHOWN, SCAN, TAGS, USERS, parse_dimensions, shown,
                                       source_for)
from billing.statement import parse_group, statement_csv, statement_from
from proxy.admin.models.finance import BY_PATTERN


@pytest.mark.parametrize("text, dims", [
    (None, ()), ("", ()), (" , ", ()),
    ("user", ("user",)), ("tag:project,model", ("tag:project", "model")),
    (" user , model ,user", ("user", "model")), ("tenant,tag:env", ("tenant", "tag:env")),
    ("tag:a.b:c-d_e", ("tag:a.b:c-d_e",)), ("tag:project,tag:env", ("tag:project", "tag:env")),
    ("tag:" + "x" * 64, ("tag:" + "x" * 64,)),
])
def test_dimensions_parse(text, dims):
    assert parse_dimensions(text) == dims


@pytest.mark.parametrize("text, message", [
    ("colour", "cannot group by 'colour'"), ("users", "cannot group by 'users'"), ("tag:", "cannot group by tag ''"),
    ("tag:a b", "cannot group by tag 'a b'"), ("tag:" + "x" * 65, "a tag name is 1 to 64"),
    ("tag:é", "cannot group by tag"), ("Tag:x", "cannot group by 'Tag:x'"), ("x" * 500, "..."),
    (",".join(f"tag:t{i}" for i in range(9)), "at most 8 dimensions"),
])
def test_bad_dimensions_are_clear_errors(text, message):
    with pytest.raises(ValueError, match=None) as error:
        parse_dimensions(text)
    assert message in str(error.value) and len(str(error.value)) < 200


@pytest.mark.parametrize("by, source", [
    ((), DAILY), (("tenant", "key", "model", "service_tier", "day"), DAILY),
    (("user",), USERS), (("day", "user", "model"), USERS),
    (("tag:project",), TAGS), (("tenant", "tag:env", "key"), TAGS),
    (("user", "tag:env"), SCAN), (("tag:a", "tag:b"), SCAN),
])
def test_each_grouping_is_read_from_the_table_that_serves_it(by, source):
    assert source_for(by) == source


def test_a_missing_value_shows_as_a_placeholder():
    assert shown(None) == NONE_SHOWN and shown("") == "" and shown("alice") == "alice"


def row(group: dict, requests: int, charge: str) -> ReportRow:
    amount = Decimal(charge)
    return ReportRow(group, requests, {f: requests * 10 for f in COUNT_FIELDS}, {f: amount for f in COST_FIELDS},
                     amount, amount * 2, estimated_requests=requests, late_charge=amount)


def test_entries_without_the_tag_are_what_every_entry_holds_beyond_the_tagged():
    every = [row({"model": "a"}, 5, "1.50"), row({"model": "b"}, 2, "0.25")]
    tagged = [row({"model": "a", "tag:env": "prod"}, 3, "1.00"), row({"model": "b", "tag:env": "dev"}, 2, "0.25")]
    rows = with_untagged(every, tagged, "tag:env", ("model", "tag:env"))
    assert [(r.group, r.requests, r.charge) for r in rows] == [
        ({"model": "a", "tag:env": "prod"}, 3, Decimal("2.00")),
        ({"model": "a", "tag:env": None}, 2, Decimal("1.00")),
        ({"model": "b", "tag:env": "dev"}, 2, Decimal("0.50"))]  # b: every entry tagged, no null row


# Any text as a tag value, any split of a group's entries between the values and no value.
VALUES = st.none() | st.text(max_size=6)
MONEY = st.decimals(min_value=0, max_value=10**6, places=12, allow_nan=False)
ENTRIES = st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), VALUES, MONEY), max_size=40)


@given(entries=ENTRIES)
def test_rows_by_a_tag_always_add_up_to_the_entries(entries):
    """The roll-ups' view (every entry per model; the tagged ones per model and value) gives
    rows whose totals are exactly the entries', with the untagged under None."""
    every: dict[str, list] = {}
    tagged: dict[tuple, list] = {}
    for model, value, charge in entries:
        every.setdefault(model, []).append(charge)
        if value is not None:
            tagged.setdefault((model, value), []).append(charge)
    rows = with_untagged([row({"model": m}, len(c), str(sum(c))) for m, c in every.items()],
                         [row({"model": m, "tag:x": v}, len(c), str(sum(c))) for (m, v), c in tagged.items()],
                         "tag:x", ("tag:x", "model"))
    report = Report("2026-11", None, ("tag:x", "model"), rows)
    assert report.total_requests == len(entries)
    assert report.total_cost == sum((c for _, _, c in entries), Decimal(0))
    assert all(isinstance(r.charge, Decimal) and r.requests > 0 for r in rows)
    untagged = [r for r in rows if r.group["tag:x"] is None]
    assert sum(r.requests for r in untagged) == sum(1 for _, v, _ in entries if v is None)
    keys = [(r.group["tag:x"] is None, r.group["tag:x"] or "", r.group["model"]) for r in rows]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)


@settings(max_examples=200)
@given(text=st.from_regex(BY_PATTERN, fullmatch=True))
def test_every_by_the_admin_api_schema_allows_parses(text):
    """The OpenAPI pattern of `by` and parse_dimensions agree: what the schema lets through is
    a report, never an error (schemathesis checks the API accepts it)."""
    assert 1 <= len(parse_dimensions(text)) <= MAX_DIMENSIONS


@pytest.mark.parametrize("text, group", [("model", "model"), ("user", "user"), (" tag:project ", "tag:project")])
def test_a_statement_groups_by_model_user_or_a_tag(text, group):
    assert parse_group(text) == group


@pytest.mark.parametrize("text", ["", "tenant", "day", "user,model", "tag:a b"])
def test_a_statement_refuses_other_groupings(text):
    with pytest.raises(ValueError):
        parse_group(text)


def test_a_statement_by_user_keeps_the_report_total():
    rows = [row({"user": "alice"}, 2, "1.005"), row({"user": None}, 1, "0.5")]
    statement = statement_from(Report("2026-11", "team", ("user",), rows))
    text = statement_csv(statement)
    assert text.splitlines()[0].startswith("user,requests,")
    assert text.splitlines()[1:] == ["alice,2,20,20,20,20,2.01", ",1,10,10,10,10,1.00", "TOTAL,3,,,,,3.01"]
    assert statement.total == Decimal("3.010") and statement.total_due == Decimal("3.01")
