"""The reasoning an estimate allows for a call whose usage never came: from what was
relayed and what the model typically reasons, never above the call's output cap."""

from hypothesis import given
from hypothesis import strategies as st

from billing.reasoning_share import DEFAULT_REASONING_TOKENS, ReasoningHistory
from billing.usage import estimate_usage


def test_a_model_not_seen_gets_the_defaults():
    history = ReasoningHistory()
    assert history.allowance("gpt-5.5", 0, 128_000) == DEFAULT_REASONING_TOKENS
    # 10,000 visible tokens at a share of one half: as many again unseen
    assert history.allowance("gpt-5.5", 10_000, 128_000) == 10_000
    # never past the cap: 1,000 allowed, 600 seen, 400 left
    assert history.allowance("gpt-5.5", 600, 1_000) == 400


def test_what_the_model_did_before_moves_the_estimate():
    history = ReasoningHistory()
    history.observe("o3", output_tokens=1_000, reasoning_tokens=800)  # the first reply sets the figures
    assert history.allowance("o3", 0, 100_000) == 800
    # a share of 0.8: 100 visible tokens imply 400 unseen, less than the 800 a call typically reasons
    assert history.allowance("o3", 100, 100_000) == 800
    assert history.allowance("o3", 1_000, 100_000) == 4_000  # 1,000 x 0.8 / 0.2
    history.observe("o3", output_tokens=1_000, reasoning_tokens=0)  # moves a tenth of the way
    assert history.allowance("o3", 0, 100_000) == 720


def test_gpt_5_5_failed_call_is_no_longer_its_whole_cap():
    # before: the whole 128,000-token cap as reasoning at 30 USD per 1M, 3.84 USD; now 4,096 tokens
    usage = estimate_usage(400, 0, reasoning=lambda visible: ReasoningHistory().allowance("gpt-5.5", visible, 128_000))
    assert usage.reasoning_tokens == 4_096 and "estimated" in usage.flags


@given(st.integers(-10, 10**6), st.integers(-10, 10**6), st.integers(0, 10**6), st.integers(0, 10**6))
def test_never_negative_never_past_the_cap(output, reasoning, visible, cap):
    history = ReasoningHistory()
    history.observe("m", output, reasoning)
    allowed = history.allowance("m", visible, cap)
    assert 0 <= allowed and (visible > cap or visible + allowed <= cap)
