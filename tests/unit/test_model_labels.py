"""A client's model name as a label: kept as itself only when it reads as a model name, and
only so many distinct ones; the rest counted as `other`."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.model_labels import MAX_DISTINCT, MAX_LABEL_CHARS, OTHER, LabelCap, model_label
from proxy.observability import metrics
from tests.strategies import json_values


@pytest.mark.parametrize("value, label", [
    ("gpt-6.2-sol", "gpt-6.2-sol"),
    ("accounts/fireworks/models/llama-v3p1-8b", "accounts/fireworks/models/llama-v3p1-8b"),
    ("meta-llama/Llama-3:8b@2024+q4", "meta-llama/Llama-3:8b@2024+q4"),
    ("<b>x</b>", "<b>x</b>"),  # readable; pages escape it
    ("m" * MAX_LABEL_CHARS, "m" * MAX_LABEL_CHARS),
    ("m" * (MAX_LABEL_CHARS + 1), OTHER),
    ("m" * 10_000, OTHER),
    ("", OTHER),
    ("gpt 5", OTHER),
    ("gpt-5\n# TYPE evil counter", OTHER),
    ("gpt-5\x00", OTHER),
    ('gpt-5"} 1e9', OTHER),
    ("gpt-5'", OTHER),
    ("gpt-5\\", OTHER),
    ("gpt-5`id`", OTHER),
    ("gpt-5\u200b", OTHER),  # zero-width space
    ("gрt-5", OTHER),  # a Cyrillic look-alike
    (None, OTHER), (5, OTHER), (["gpt-5"], OTHER), ({"model": "gpt-5"}, OTHER), (True, OTHER),
])
def test_a_name_is_kept_only_when_it_reads_as_a_model_name(value, label):
    assert model_label(value) == label


def test_only_so_many_distinct_names_are_kept_apart():
    cap = LabelCap(limit=3)
    assert [cap.label(n) for n in ("a", "b", "a", OTHER, "x" * 500, "c", "d", "b", "e")] == [
        "a", "b", "a", OTHER, OTHER, "c", OTHER, "b", OTHER]  # `other` and unreadable names take no place


@given(st.lists(json_values | st.text(max_size=300), max_size=300))
def test_any_json_value_gets_a_bounded_label(values):
    cap = LabelCap(limit=10)
    labels = {cap.label(value) for value in values}
    assert len(labels - {OTHER}) <= 10
    for label in labels:
        assert label == OTHER or (isinstance(label, str) and 1 <= len(label) <= MAX_LABEL_CHARS
                                  and label.isascii() and label.isprintable() and not set(label) & set(" \"'\\`"))


def test_the_metric_never_holds_an_unreadable_name():
    for hostile in ("gpt-5\n# TYPE evil counter\nevil 1", 'gpt"} 1e9', "n" * 10_000, {"a": [1]}, None):
        metrics.count_unpriced(hostile)
    text = metrics.render(lambda: None).decode()
    assert "evil" not in text and "1e9" not in text and "n" * 200 not in text
    assert 'billing_proxy_unpriced_calls_total{model="other"}' in text
    assert len(metrics._UNPRICED_LABELS._kept) <= MAX_DISTINCT
