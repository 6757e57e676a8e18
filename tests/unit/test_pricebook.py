from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from billing.catalog import load_catalog, shipped_catalog_path
from billing.pricebook import PriceBook
from billing.pricing import PriceVersion, Tier

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def version(model, price, start=T0, id=None):
    return PriceVersion(model, start, (Tier(Decimal(price), Decimal(price)),), id=id)


def test_exact_name_wins_over_alias_and_pattern():
    book = PriceBook([version("seed-1-6", "1"), version("seed-1-6-special", "2")],
                     {"seed-1-6-*": "seed-1-6", "alias": "seed-1-6"})
    assert book.resolve_name("seed-1-6-special") == "seed-1-6-special"
    assert book.resolve_name("seed-1-6-250915") == "seed-1-6"
    assert book.resolve_name("alias") == "seed-1-6"
    assert book.resolve_name("seed-1-6") == "seed-1-6"


def test_most_specific_pattern_wins():
    book = PriceBook([version("seed-1-6", "1"), version("seed-1-6-flash", "2")],
                     {"seed-1-6-*": "seed-1-6", "seed-1-6-flash-*": "seed-1-6-flash"})
    assert book.resolve_name("seed-1-6-flash-250715") == "seed-1-6-flash"
    assert book.resolve_name("seed-1-6-250915") == "seed-1-6"


def test_unknown_model_and_alias_to_unpriced_model_resolve_to_none():
    book = PriceBook([version("a", "1")], {"b": "nowhere"})
    assert book.resolve("unknown", T0) is None
    assert book.resolve("b", T0) is None


def test_version_in_force_at_a_moment():
    old, new = version("m", "1", T0, id=1), version("m", "2", T0 + timedelta(days=10), id=2)
    book = PriceBook([new, old], {})
    assert book.resolve("m", T0 - timedelta(seconds=1)) is None
    assert book.resolve("m", T0).version is old
    assert book.resolve("m", T0 + timedelta(days=10) - timedelta(microseconds=1)).version is old
    assert book.resolve("m", T0 + timedelta(days=10)).version is new


def test_same_start_later_id_wins():
    first, second = version("m", "1", id=5), version("m", "2", id=9)
    assert PriceBook([second, first], {}).resolve("m", T0).version is second


@pytest.mark.parametrize(("requested", "model"), [
    ("seed-1-6-250915", "seed-1-6"),
    ("seed-1-6-flash-250715", "seed-1-6-flash"),
    ("gpt-4o-2024-08-06", "gpt-4o"),
    ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
    ("gpt-4", "gpt-4"),
    ("gpt-4.1-mini", "gpt-4.1-mini"),
])
def test_shipped_catalog_resolves_dated_names(requested, model):
    catalog = load_catalog(shipped_catalog_path())
    assert PriceBook(catalog.versions, catalog.aliases).resolve_name(requested) == model


EXPLAINED = PriceBook(
    [version("seed-1-6", "1", id=1), version("seed-1-6-flash", "2", id=2),
     version("later", "3", T0 + timedelta(days=30), id=3)],
    {"seed-1-6-*": "seed-1-6", "seed-1-6-flash-*": "seed-1-6-flash", "bytedance-seed": "seed-1-6",
     "ghost": "retired", "ghost-*": "retired"})


@pytest.mark.parametrize("name, model, matched_by, alias, version_id, reason", [
    ("seed-1-6", "seed-1-6", "model", None, 1, None),
    ("bytedance-seed", "seed-1-6", "alias", "bytedance-seed", 1, None),
    ("seed-1-6-250915", "seed-1-6", "pattern", "seed-1-6-*", 1, None),
    ("seed-1-6-flash-250715", "seed-1-6-flash", "pattern", "seed-1-6-flash-*", 2, None),
    ("gpt-9", None, "none", None, None,
     "no priced model, alias or pattern matches it, and no default price (model '*') is set"),
    ("ghost", None, "none", "ghost", None, "the alias 'ghost' points at 'retired', which has no price"),
    ("ghost-1", None, "none", "ghost-*", None, "the pattern 'ghost-*' points at 'retired', which has no price"),
    ("later", None, "model", None, None,
     "'later' has no price in force at 2026-01-01T00:00:00+00:00: its first version starts at "
     "2026-01-31T00:00:00+00:00"),
])
def test_explain_names_the_rule_that_matched_or_why_none(name, model, matched_by, alias, version_id, reason):
    match = EXPLAINED.explain(name, T0)
    assert (match.model, match.matched_by, match.alias, match.reason) == (model, matched_by, alias, reason)
    assert (match.version.id if match.version else None) == version_id
    assert match.model == EXPLAINED.resolve_name(name) or match.version is None  # the same rules as billing


def test_explain_falls_back_to_the_default_price_and_lists_aliases():
    book = PriceBook([version("*", "9", id=9), version("seed-1-6", "1", id=1)],
                     {"seed-1-6-*": "seed-1-6", "bytedance-seed": "seed-1-6"})
    match = book.explain("anything", T0)
    assert (match.model, match.matched_by, match.version.id) == ("*", "default", 9)
    assert book.aliases_of("seed-1-6") == ["bytedance-seed", "seed-1-6-*"]
