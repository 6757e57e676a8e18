from billing.usage import parse_usage


def test_responses_shape():
    used = parse_usage({
        "input_tokens": 1200, "input_tokens_details": {"cached_tokens": 1024},
        "output_tokens": 300, "output_tokens_details": {"reasoning_tokens": 120}, "total_tokens": 1500,
    })
    assert (used.input_tokens, used.cached_tokens, used.cache_write_tokens, used.output_tokens,
            used.reasoning_tokens) == (1200, 1024, 0, 300, 120)
    assert used.uncached_input_tokens == 176 and used.visible_output_tokens == 180
    assert used.flags == ()


def test_cache_write_tokens_when_reported():
    used = parse_usage({"input_tokens": 100, "input_tokens_details": {"cached_tokens": 10, "cache_write_tokens": 50},
                        "output_tokens": 1})
    assert used.cache_write_tokens == 50 and used.uncached_input_tokens == 40


def test_chat_completions_shape_maps_onto_the_same_model():
    used = parse_usage({
        "prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21,
        "prompt_tokens_details": {"cached_tokens": 4}, "completion_tokens_details": {"reasoning_tokens": 5},
    })
    assert (used.input_tokens, used.cached_tokens, used.output_tokens, used.reasoning_tokens) == (9, 4, 12, 5)


def test_seed_document_example_without_details():
    used = parse_usage({"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20})
    assert (used.input_tokens, used.cached_tokens, used.output_tokens) == (10, 0, 10)


def test_no_usage():
    assert parse_usage(None) is None
    assert parse_usage({}) is None
    assert parse_usage("12") is None


def test_inconsistent_numbers_are_flagged_and_clamped_but_kept_raw():
    block = {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 50},
             "output_tokens": -3, "output_tokens_details": {"reasoning_tokens": 7}}
    used = parse_usage(block)
    assert used.cached_tokens == 10 and used.output_tokens == 0 and used.reasoning_tokens == 0
    assert set(used.flags) == {"cached_exceeds_input", "output_tokens_negative", "reasoning_exceeds_output"}
    assert used.raw == block


def test_wrong_types_are_flagged():
    used = parse_usage({"input_tokens": "12", "output_tokens": 1.5, "input_tokens_details": None})
    assert (used.input_tokens, used.output_tokens) == (0, 0)
    assert set(used.flags) == {"input_tokens_not_integer", "output_tokens_not_integer"}
