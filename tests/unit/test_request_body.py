import orjson
import pytest
from hypothesis import given, strategies as st

from proxy.errors import ApiError
from proxy.gateway.request_body import check_prefix_caching, parse_request


def test_untouched_body_is_forwarded_byte_for_byte():
    raw = b'{"model": "gpt-4o",   "input": "hi", "unknown_vendor_field": {"x": 1}}'
    request = parse_request(raw, endpoint="responses")
    assert request.body is raw and request.model == "gpt-4o" and request.stream is False


def test_literal_extra_body_is_merged_into_the_top_level():
    raw = orjson.dumps({"model": "seed-1-6-250915", "input": [], "stream": True,
                        "extra_body": {"caching": {"type": "enabled", "prefix": True}, "thinking": {"type": "disabled"}}})
    request = parse_request(raw, endpoint="responses")
    assert orjson.loads(request.body) == {"model": "seed-1-6-250915", "input": [], "stream": True,
                                          "caching": {"type": "enabled", "prefix": True},
                                          "thinking": {"type": "disabled"}}
    assert request.stream is True


def test_extra_body_keys_win():
    request = parse_request(b'{"model":"a","input":"x","extra_body":{"model":"b"}}', endpoint="responses")
    assert request.model == "b"


def test_messages_is_an_alias_of_input():
    request = parse_request(b'{"model":"gpt-4","messages":[{"role":"user","content":"Hello!"}]}',
                            endpoint="responses")
    assert orjson.loads(request.body) == {"model": "gpt-4", "input": [{"role": "user", "content": "Hello!"}]}


@pytest.mark.parametrize(("raw", "param"), [
    (b"", None),
    (b"not json", None),
    (b"[1, 2]", None),
    (b'{"input": "x"}', "model"),
    (b'{"model": 5}', "model"),
    (b'{"model": "  "}', "model"),
    (b'{"model": "m", "stream": "yes"}', "stream"),
    (b'{"model": "m", "extra_body": [1]}', "extra_body"),
    (b'{"model": "m", "input": "a", "messages": []}', "messages"),
])
def test_bad_bodies_get_a_400_naming_the_field(raw, param):
    with pytest.raises(ApiError) as error:
        parse_request(raw, endpoint="responses")
    assert error.value.status == 400 and error.value.param == param


def test_chat_stream_asks_upstream_for_usage_and_remembers_to_hide_it():
    request = parse_request(b'{"model":"m","messages":[],"stream":true}', endpoint="chat.completions")
    assert orjson.loads(request.body)["stream_options"] == {"include_usage": True} and request.hide_usage_chunk
    asked = parse_request(b'{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true}}',
                          endpoint="chat.completions")
    assert not asked.hide_usage_chunk and asked.body.startswith(b'{"model":"m"')
    plain = parse_request(b'{"model":"m","messages":[]}', endpoint="chat.completions")
    assert not plain.hide_usage_chunk and "stream_options" not in plain.payload
    with pytest.raises(ApiError):
        parse_request(b'{"model":"m","stream":true,"stream_options":[]}', endpoint="chat.completions")


def test_messages_is_not_renamed_for_chat_completions():
    request = parse_request(b'{"model":"m","messages":[]}', endpoint="chat.completions")
    assert request.payload == {"model": "m", "messages": []}


def test_prefix_caching_with_max_output_tokens_is_refused_before_forwarding():
    body = b'{"model":"seed-1-6-250915","input":"x","max_output_tokens":10,' \
           b'"extra_body":{"caching":{"type":"enabled","prefix":true}}}'
    with pytest.raises(ApiError) as refused:
        check_prefix_caching(parse_request(body, endpoint="responses").payload)
    assert refused.value.status == 400 and refused.value.param == "max_output_tokens"
    fine = parse_request(b'{"model":"m","input":"x","max_output_tokens":10,"caching":{"type":"enabled"}}',
                         endpoint="responses")
    check_prefix_caching(fine.payload)
    assert fine.payload["caching"] == {"type": "enabled"}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(orjson.dumps),
    st.dictionaries(st.sampled_from(["model", "stream", "input", "messages", "extra_body", "stream_options",
                                     "max_output_tokens", "caching"]), json_values, max_size=6).map(orjson.dumps),
)


@given(bodies, st.sampled_from(["responses", "chat.completions"]))
def test_any_body_is_accepted_or_refused_with_a_400(raw, endpoint):
    """Hostile bodies (not JSON, not UTF-8, wrong types, deep nesting) never raise anything
    but a clear 400, and an accepted body always names a model."""
    try:
        request = parse_request(raw, endpoint=endpoint)
    except ApiError as error:
        assert error.status == 400 and error.message
    else:
        assert isinstance(request.model, str) and request.model.strip()
        assert isinstance(request.stream, bool)
        orjson.loads(request.body)


@pytest.mark.parametrize("raw", [
    b"[" * 5000 + b"]" * 5000,                                        # nested deeper than the parser goes
    b'{"model":"m","max_output_tokens":123456789012345678901234567890}',  # an integer past 64 bits
    b'{"model":"m","input":"\xff\xfe"}',                                # not UTF-8
])
def test_hostile_bodies_are_a_400(raw):
    with pytest.raises(ApiError) as refused:
        parse_request(raw, endpoint="responses")
    assert refused.value.status == 400


@pytest.mark.parametrize("limit", [b"-1", b"1.5", b'"10"', b"true", b"10000001"])
def test_output_limits_must_be_sane_whole_numbers(limit):
    with pytest.raises(ApiError) as refused:
        parse_request(b'{"model":"m","max_output_tokens":' + limit + b"}", endpoint="responses")
    assert refused.value.param == "max_output_tokens"


@pytest.mark.parametrize(("field", "value"), [
    ("background", 1), ("background", "true"), ("background", {}), ("store", "false"), ("store", 0),
    ("service_tier", "flex\u0000"), ("service_tier", "Priority"), ("service_tier", "x" * 33), ("service_tier", 1),
    ("service_tier", ["auto"]), ("previous_response_id", "../resp_1"), ("previous_response_id", ""),
    ("previous_response_id", "r" * 129), ("previous_response_id", ["resp_1"]), ("conversation", "conv_1/items"),
    ("conversation", {"id": 5}), ("conversation", {}), ("conversation", 3),
])
def test_fields_the_proxy_acts_on_have_one_shape(field, value):
    """A `background` of 1 would go upstream as a job the proxy never polls; a NUL in a tier
    comes back in the reply; an id is looked up and named in the 404."""
    for endpoint, body in (("responses", {"input": "x"}), ("chat.completions", {"messages": []})):
        with pytest.raises(ApiError) as error:
            parse_request(orjson.dumps({"model": "m", **body, field: value}), endpoint=endpoint)
        assert error.value.status == 400 and error.value.param == field


@pytest.mark.parametrize(("field", "value"), [
    ("background", True), ("background", False), ("background", None), ("store", False), ("service_tier", "auto"),
    ("service_tier", "priority"), ("service_tier", None), ("previous_response_id", "resp_0217" + "a" * 40),
    ("conversation", "conv_abc"), ("conversation", {"id": "conv_abc"}), ("previous_response_id", None),
])
def test_fields_the_proxy_acts_on_in_their_shape_pass(field, value):
    request = parse_request(orjson.dumps({"model": "m", "input": "x", field: value}), endpoint="responses")
    assert request.background is (value is True and field == "background")
