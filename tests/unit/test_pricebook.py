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
