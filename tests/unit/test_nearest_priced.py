"""The priced names nearest to an unpriced one: same family first part, same variant words,
the longest shared prefix, then the nearest earlier version (numbers compared as numbers)."""

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.pricebook import PriceBook, nearest_names
from billing.pricing import PriceVersion, Tier
from tests.strategies import json_values

PRICED = ["gpt-6.1-sol", "gpt-6-sol", "gpt-6.3-sol", "gpt-6.2", "gpt-5.9-sol", "gpt-6.1-mini", "gpt-6.1-codex",
          "gpt-6.10-sol", "gpt-4o", "gpt-4o-mini", "o3", "o3-mini", "o4-mini", "text-embedding-3-large",
          "text-embedding-3-small", "claude-sonnet-4-5", "seed-1-6", "seed-1-8", "*"]


@pytest.mark.parametrize("name, nearest", [
    # the brief's case: the same variant (`sol`), then the longest prefix, then the nearest earlier version
    ("gpt-6.2-sol", ["gpt-6.1-sol", "gpt-6-sol", "gpt-6.3-sol"]),
    ("gpt-6.11-sol", ["gpt-6.10-sol", "gpt-6.3-sol", "gpt-6.1-sol"]),  # 10 > 3: numbers, not text
    ("gpt-6.2-mini", ["gpt-6.1-mini", "gpt-6.2", "gpt-4o-mini"]),  # one variant word apart each: by prefix
    ("gpt-6.2-codex-max", ["gpt-6.1-codex", "gpt-6.2", "gpt-6.1-mini"]),
    ("gpt-6.2-sol-2026-01-15", ["gpt-6.1-sol", "gpt-6-sol", "gpt-6.3-sol"]),  # a dated name
    ("GPT-6.2-SOL", ["gpt-6.1-sol", "gpt-6-sol", "gpt-6.3-sol"]),  # case aside
    ("gpt-4o-2024-08-06", ["gpt-4o", "gpt-4o-mini", "gpt-6.2"]),
    ("o5-mini", ["o4-mini", "o3-mini", "o3"]),  # letters and digits split: o5 is o, 5
    ("text-embedding-4-large", ["text-embedding-3-large", "text-embedding-3-small"]),
    ("claude-sonnet-4-6", ["claude-sonnet-4-5"]),
    ("seed-2-0", ["seed-1-8", "seed-1-6"]),
    ("gpt-6.1-sol", ["gpt-6-sol", "gpt-6.3-sol", "gpt-6.10-sol"]),  # a priced name is not its own nearest
    ("llama-4-scout", []),  # no priced name of its family
    ("", []), ("-.-", []), ("*", []),
])
def test_nearest_priced_names(name, nearest):
    assert nearest_names(name, PRICED) == nearest


def test_a_limit_and_a_book_of_models_and_aliases():
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    book = PriceBook([PriceVersion(m, at, (Tier(Decimal(1), Decimal(2)),)) for m in ("gpt-6.1-sol", "gpt-6-sol")],
                     {"gpt-6-sol-latest": "gpt-6-sol", "gpt-6-sol-2*": "gpt-6-sol"})
    assert book.nearest_priced("gpt-6.2-sol") == ["gpt-6.1-sol", "gpt-6-sol", "gpt-6-sol-latest"]  # no pattern
    assert book.nearest_priced("gpt-6.2-sol", limit=1) == ["gpt-6.1-sol"]
    assert nearest_names("gpt-6.2-sol", PRICED, limit=0) == []
    for made_up in range(10_050):  # a flood of made-up names: answered, but the cache stays bounded
        book.nearest_priced(f"gpt-{made_up}")
    assert len(book._nearest) == 10_000


@given(json_values | st.text(max_size=400) | st.text(alphabet="0123456789-.", max_size=5000))
def test_any_json_value_is_answered(value):
    book = PriceBook([], {})
    assert book.nearest_priced(value) == []
    found = nearest_names(value, PRICED)
    assert isinstance(found, list) and len(found) <= 3 and set(found) <= set(PRICED) - {"*"}
