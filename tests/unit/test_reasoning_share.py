"""The reasoning an estimate allows for a call whose usage never came: from what was
relayed and what the model typically reasons for that tenant, never below the defaults,
never above the call's output cap."""

from hypothesis import given
from hypothesis import strategies as st

from billing import reasoning_share
from billing.reasoning_share import DEFAULT_REASONING_TOKENS, MAX_MODELS, ReasoningHistory
from billing.usage import estimate_usage


def test_a_model_not_seen_gets_the_defaults():
    history = ReasoningHistory()
    assert history.allowance("gpt-5.5", 0, 128_000) == DEFAULT_REASONING_TOKENS
    # 10,000 visible tokens at a share of one half: as many again unseen
    assert history.allowance("gpt-5.5", 10_000, 128_000) == 10_000
    # never past the cap: 1,000 allowed, 600 seen, 400 left
    assert history.allowance("gpt-5.5", 600, 1_000) == 400


def test_what_the_model_did_before_moves_the_estimate_only_above_the_defaults():
    history = ReasoningHistory()
    # the first reply sets the figures, each no lower than its default:
    # per call max(4,096, 800) = 4,096; share 800 / 1,000 = 8,000 per 10,000 (above 5,000, kept)
    history.observe("o3", output_tokens=1_000, reasoning_tokens=800)
    assert history.allowance("o3", 0, 100_000) == 4_096  # not 800: the floor
    # 100 visible x 8,000 / 2,000 = 400 < 4,096
    assert history.allowance("o3", 100, 100_000) == 4_096
    # 1,000 x 8,000 / 2,000 = 4,000 < 4,096
    assert history.allowance("o3", 1_000, 100_000) == 4_096
    # 2,800 x 8,000 / 2,000 = 11,200
    assert history.allowance("o3", 2_800, 100_000) == 11_200
    # a reply with no reasoning moves each a tenth of the way, rounded to the nearer integer:
    # share 8,000 + round(-8,000 / 10) = 7,200; per call 4,096 + round(-4,096 / 10) = 3,686 -> floor 4,096
    history.observe("o3", output_tokens=1_000, reasoning_tokens=0)
    assert history.allowance("o3", 0, 100_000) == 4_096
    # 2,800 x 7,200 / 2,800 = 7,200
    assert history.allowance("o3", 2_800, 100_000) == 7_200


def test_a_figure_learnt_above_the_floor_is_used():
    history = ReasoningHistory()
    # per call 12,000; share 12,000 / 20,000 = 6,000
    history.observe("gpt-5.5", output_tokens=20_000, reasoning_tokens=12_000, tenant_id=1)
    assert history.allowance("gpt-5.5", 0, 128_000, tenant_id=1) == 12_000
    # 10,000 x 6,000 / 4,000 = 15,000
    assert history.allowance("gpt-5.5", 10_000, 128_000, tenant_id=1) == 15_000
    # per call 12,000 + round(-12,000 / 10) = 10,800; share 6,000 + round(-6,000 / 10) = 5,400
    history.observe("gpt-5.5", output_tokens=20_000, reasoning_tokens=0, tenant_id=1)
    assert history.allowance("gpt-5.5", 0, 128_000, tenant_id=1) == 10_800
    # 10,000 x 5,400 / 4,600 = 11,739.13 -> 11,739
    assert history.allowance("gpt-5.5", 10_000, 128_000, tenant_id=1) == 11_739


def test_low_reasoning_calls_never_lower_the_estimate_below_the_defaults():
    history = ReasoningHistory()
    history.observe("seed-1-6", output_tokens=1_000, reasoning_tokens=10, tenant_id=7)
    for _ in range(50):
        history.observe("seed-1-6", output_tokens=1_000, reasoning_tokens=0, tenant_id=7)
    assert history.allowance("seed-1-6", 0, 128_000, tenant_id=7) == DEFAULT_REASONING_TOKENS
    # then a huge call cut: 100,000 visible at no less than a share of one half, 100,000 unseen
    assert history.allowance("seed-1-6", 100_000, 300_000, tenant_id=7) == 100_000
    assert history.allowance("seed-1-6", 100_000, 300_000, tenant_id=7) \
        == ReasoningHistory().allowance("seed-1-6", 100_000, 300_000, tenant_id=7)


def test_the_cap_bounds_every_allowance():
    history = ReasoningHistory()
    history.observe("o3", output_tokens=60_000, reasoning_tokens=50_000)  # per call 50,000
    assert history.allowance("o3", 0, 10_000) == 10_000  # 50,000, capped at 10,000
    assert history.allowance("o3", 9_000, 10_000) == 1_000  # 10,000 - 9,000 left
    assert history.allowance("o3", 12_000, 10_000) == 0  # more seen than allowed: nothing more
    assert history.allowance("o3", 0, 0) == 0
    # the floor itself stays under the cap: 4,096 wanted, 1,000 - 600 = 400 left
    assert history.allowance("o1", 600, 1_000) == 400


def test_one_tenant_never_moves_another_tenants_estimate():
    history = ReasoningHistory()
    history.observe("gpt-5.5", output_tokens=40_000, reasoning_tokens=30_000, tenant_id=2)  # 30,000; 7,500
    before = [history.allowance("gpt-5.5", visible, 128_000, tenant_id=2) for visible in (0, 5_000, 20_000)]
    assert before == [30_000, 30_000, 60_000]  # 20,000 x 7,500 / 2,500 = 60,000
    for _ in range(100):  # tenant 1 makes calls that barely reason
        history.observe("gpt-5.5", output_tokens=1_000, reasoning_tokens=0, tenant_id=1)
    assert [history.allowance("gpt-5.5", v, 128_000, tenant_id=2) for v in (0, 5_000, 20_000)] == before
    # and its first observation of a model sets nothing for the others, nor for calls of no tenant
    history.observe("o3", output_tokens=100_000, reasoning_tokens=90_000, tenant_id=1)
    assert history.allowance("o3", 0, 128_000, tenant_id=1) == 90_000
    assert history.allowance("o3", 0, 128_000, tenant_id=2) == DEFAULT_REASONING_TOKENS
    assert history.allowance("o3", 0, 128_000) == DEFAULT_REASONING_TOKENS


def test_memory_is_bounded_per_tenant_and_in_all(monkeypatch):
    history = ReasoningHistory()
    for n in range(MAX_MODELS + 5):  # a tenant naming ever new models
        history.observe(f"m{n}", output_tokens=50_000, reasoning_tokens=40_000, tenant_id=1)
    assert history.allowance(f"m{MAX_MODELS - 1}", 0, 128_000, tenant_id=1) == 40_000
    assert history.allowance(f"m{MAX_MODELS}", 0, 128_000, tenant_id=1) == DEFAULT_REASONING_TOKENS  # not kept
    history.observe("m0", output_tokens=50_000, reasoning_tokens=40_000, tenant_id=2)  # the others still learn
    assert history.allowance("m0", 0, 128_000, tenant_id=2) == 40_000
    monkeypatch.setattr(reasoning_share, "MAX_KEYS", 3)
    small = ReasoningHistory()
    for tenant in range(5):
        small.observe("m", output_tokens=50_000, reasoning_tokens=40_000, tenant_id=tenant)
    assert [small.allowance("m", 0, 128_000, tenant_id=t) for t in range(5)] == [40_000] * 3 + [4_096] * 2


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


tenants = st.sampled_from([None, 1, 2])
observations = st.lists(st.tuples(tenants, st.sampled_from(["a", "b"]), st.integers(-10, 10**6),
                                  st.integers(-10, 10**6)), max_size=30)


@given(observations, tenants, st.sampled_from(["a", "b", "c"]), st.integers(0, 10**6), st.integers(0, 10**6))
def test_allowance_always_between_the_floor_and_the_cap(seen, tenant, model, visible, cap):
    history = ReasoningHistory()
    for who, name, output, reasoning in seen:
        history.observe(name, output, reasoning, tenant_id=who)
    allowed = history.allowance(model, visible, cap, tenant_id=tenant)
    left = cap - visible
    assert 0 <= allowed <= max(0, left)
    assert allowed >= min(DEFAULT_REASONING_TOKENS, left)


@given(observations, st.integers(0, 10**6), st.integers(0, 10**6))
def test_other_tenants_observations_change_nothing(seen, visible, cap):
    alone, shared = ReasoningHistory(), ReasoningHistory()
    for who, name, output, reasoning in seen:
        shared.observe(name, output, reasoning, tenant_id=who)
        if who == 2:
            alone.observe(name, output, reasoning, tenant_id=who)
    for name in ("a", "b"):
        assert shared.allowance(name, visible, cap, tenant_id=2) == alone.allowance(name, visible, cap, tenant_id=2)
