"""Which models reason when a request says nothing, and which requests turned reasoning off:
tables of names and bodies, and properties over any string and any JSON value."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.model_traits import reasoning_turned_off, reasons_by_default

REASONS = [
    # OpenAI GPT-5 and later, with dated snapshots, fine-tunes, codex and pro variants
    "gpt-5", "gpt-5-mini", "gpt-5-nano", "gpt-5-2025-08-07", "gpt-5-mini-2025-08-07", "gpt-5-pro",
    "gpt-5-codex", "gpt-5.1", "gpt-5.1-2025-11-13", "gpt-5.1-codex", "gpt-5.1-codex-mini", "gpt-5.1-codex-max",
    "gpt-5.1-chat-latest", "gpt-5.2", "gpt-5.2-codex", "gpt-5.2-pro", "gpt-5.3-codex", "gpt-5.4", "gpt-5.4-mini",
    "gpt-5.4-nano", "gpt-5.4-2026-03-05", "gpt-5.4-pro", "gpt-5.5", "gpt-5.5-pro", "gpt-5.5-codex", "gpt-5.6-sol",
    "gpt-5.6-terra", "gpt-5.6-luna", "gpt-6", "gpt-6-sol", "gpt-6.1-terra", "gpt-6.2-astra",
    "ft:gpt-5-mini:acme::abc123", "ft:gpt-5-2025-08-07:acme:custom:xyz", "openai/gpt-5",
    # the o-series
    "o1", "o1-2024-12-17", "o1-mini", "o1-preview", "o1-pro", "o3", "o3-2025-04-16", "o3-mini",
    "o3-mini-2025-01-31", "o3-pro", "o3-deep-research", "o4-mini", "o4-mini-2025-04-16", "o4-mini-deep-research",
    "ft:o4-mini-2025-04-16:acme::id",
    # codex-mini, gpt-oss, deepseek-r1
    "codex-mini-latest", "codex-mini", "gpt-oss-120b", "gpt-oss-20b", "gpt-oss-120b-250805", "deepseek-r1-250528",
    # BytePlus Seed 1.6 and later
    "seed-1-6", "seed-1-6-250615", "seed-1-6-250915", "seed-1-6-flash", "seed-1-6-flash-250715",
    "seed-1-6-thinking-250715", "seed-1-6-vision-250815", "seed-1-8", "seed-1-8-251228", "seed-2-0-pro-260328",
    "seed-2-0-lite-260228", "seed-2-0-mini-260215", "bytedance-seed-1-6", "bytedance-seed-2-0-lite",
    "doubao-seed-1-6-251015", "doubao-seed-1.6", "dola-seed-2-1-turbo-260628",
    # any case, any surrounding blanks
    "GPT-5", "Gpt-5.4-Mini", "O3", "SEED-1-6-FLASH-250715", "  gpt-5  ",
]
DOES_NOT = [
    "gpt-4o", "gpt-4o-mini", "gpt-4o-2024-08-06", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-4", "gpt-4-turbo",
    "gpt-3.5-turbo", "ft:gpt-4.1-mini:acme::id", "ft:gpt-4o:acme::id", "gpt-5-chat", "gpt-5-chat-latest",
    "gpt-image-1", "gpt-image-1.5", "gpt-realtime", "text-embedding-3-small", "omni-moderation-latest",
    "chatgpt-4o-latest", "davinci-002", "o", "gpt-50000", "gpt-", "gpt-5x",
    "seed-1-5-pro", "seed-1-0", "seedance-1-0-pro", "seedream-4-0", "seed-translation-250915",
    "seed-1-6-embedding", "doubao-embedding-vision", "deepseek-v3-1", "glm-4-7-251222",
    "", " ", "ft:", "ft::", "/", "gpt-9" + "9" * 5000,
]


@pytest.mark.parametrize("model", REASONS)
def test_models_that_reason_by_default(model):
    assert reasons_by_default(model) is True


@pytest.mark.parametrize("model", DOES_NOT)
def test_models_that_do_not(model):
    assert reasons_by_default(model) is False


@pytest.mark.parametrize("model", [None, 5, ["gpt-5"], {"model": "gpt-5"}, b"gpt-5"])
def test_a_name_that_is_not_a_string_reasons_by_no_default(model):
    assert reasons_by_default(model) is False


@given(st.text())
def test_any_string_is_answered(model):
    assert reasons_by_default(model) in (True, False)


BASES = ["gpt-5", "gpt-5-mini", "gpt-5.4", "gpt-5.1-codex", "o3", "o4-mini", "seed-1-6", "seed-1-6-flash",
         "seed-2-0-lite", "gpt-4o", "gpt-4.1-mini", "gpt-5-chat", "seed-1-5-pro"]


@given(st.sampled_from(BASES), st.sampled_from(["-2025-08-07", "-250915", "-2026-03-05", "-latest"]))
def test_a_dated_snapshot_is_its_base(model, date):
    assert reasons_by_default(model + date) == reasons_by_default(model)
    assert reasons_by_default(f"ft:{model}{date}:org::id") == reasons_by_default(model)


@given(st.sampled_from(REASONS + DOES_NOT))
def test_case_does_not_matter(model):
    assert reasons_by_default(model.upper()) == reasons_by_default(model.lower()) == reasons_by_default(model)


TURNED_OFF = [
    {"reasoning": {"effort": "none"}},
    {"reasoning": {"effort": "none", "summary": "auto"}},
    {"reasoning_effort": "none"},
    {"thinking": {"type": "disabled"}},
    {"model": "seed-1-6", "thinking": {"type": "disabled"}, "caching": {"type": "enabled"}},
    {"reasoning": {"effort": "none"}, "thinking": {"type": "enabled"}},  # one switch off is enough here
]
NOT_TURNED_OFF = [
    {}, {"model": "gpt-5"}, {"reasoning": {}}, {"reasoning": None}, {"reasoning": "none"},
    {"reasoning": {"effort": "minimal"}}, {"reasoning": {"effort": "low"}}, {"reasoning": {"effort": None}},
    {"reasoning": {"effort": ["none"]}}, {"reasoning": {"effort": "NONE"}}, {"reasoning": ["effort", "none"]},
    {"reasoning_effort": "minimal"}, {"reasoning_effort": None}, {"reasoning_effort": ["none"]},
    {"reasoning_effort": {"none": True}}, {"thinking": {"type": "enabled"}}, {"thinking": {"type": "auto"}},
    {"thinking": "disabled"}, {"thinking": {"type": ["disabled"]}}, {"thinking": {"type": {"disabled": 1}}},
    {"thinking": {}}, {"thinking": None}, {"thinking": [{"type": "disabled"}]},
    {"extra_body": {"thinking": {"type": "disabled"}}},  # not where the upstream reads it
    None, [], "none", 0, 1.5, True, [{"reasoning_effort": "none"}],
]


@pytest.mark.parametrize("payload", TURNED_OFF)
def test_requests_that_turn_reasoning_off(payload):
    assert reasoning_turned_off(payload) is True


@pytest.mark.parametrize("payload", NOT_TURNED_OFF)
def test_requests_that_do_not(payload):
    assert reasoning_turned_off(payload) is False


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10)
    | st.sampled_from(["none", "disabled", "enabled", "auto", "minimal", "effort", "type"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["reasoning", "thinking", "reasoning_effort", "effort", "type", "x"]) | st.text(max_size=5),
        inner, max_size=4),
    max_leaves=25)


@given(json_values)
def test_any_json_value_is_answered(payload):
    assert reasoning_turned_off(payload) in (True, False)


@given(json_values, json_values, json_values)
def test_any_json_value_in_any_of_the_places_read(reasoning, effort, thinking):
    for payload in ({"reasoning": reasoning}, {"reasoning": {"effort": effort}}, {"thinking": thinking},
                    {"thinking": {"type": effort}}, {"reasoning_effort": effort},
                    {"reasoning": reasoning, "thinking": thinking, "reasoning_effort": effort}):
        assert reasoning_turned_off(payload) in (True, False)
    assert reasoning_turned_off({"reasoning": {"effort": effort}}) == (effort == "none")
    assert reasoning_turned_off({"thinking": {"type": effort}}) == (effort == "disabled")
    assert reasoning_turned_off({"reasoning_effort": effort}) == (effort == "none")


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=5),
       st.sampled_from([("reasoning", {"effort": "none"}), ("reasoning_effort", "none"),
                        ("thinking", {"type": "disabled"})]))
def test_a_switch_turned_off_is_seen_whatever_else_the_body_holds(body, switch):
    key, value = switch
    others = {k: v for k, v in body.items() if k not in ("reasoning", "thinking", "reasoning_effort")}
    assert reasoning_turned_off({**others, key: value}) is True
    assert reasoning_turned_off(others) is False
