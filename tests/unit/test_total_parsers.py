"""Every pure function that reads a client body or an upstream reply accepts any JSON value
in any place: it answers, or raises the project's own typed error, never anything else."""

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.reply import cache_storage, reply_usage, storage_credit_of
from billing.request_bounds import BUILT_IN_TOOLS, content_tokens, request_bounds
from billing.tool_units import image_size, named_containers, request_units, units_in_output
from billing.upstream_usage import BillFormatError, byteplus_bill, openai_costs, openai_usage
from billing.usage import Usage, parse_usage
from proxy.errors import ApiError
from proxy.gateway.capture import Capture
from proxy.gateway.request_body import parse_request
from proxy.gateway.sse import SseEvent, SseParser
from tests.strategies import json_objects, json_values, nested_lists

ENDPOINTS = ("responses", "responses.compact", "chat.completions", "embeddings")
NOW = 1_790_000_000


@given(json_objects, st.sampled_from(ENDPOINTS))
def test_request_bounds_of_any_object(payload, endpoint):
    bounds = request_bounds(payload, endpoint, NOW)
    assert bounds.content_tokens >= 0 and bounds.images >= 0 and bounds.choices >= 1


@given(json_values, json_values)
def test_request_bounds_with_any_value_under_the_fields_it_reads(input_value, tools):
    payload = {"model": "m", "input": input_value, "messages": input_value, "tools": tools, "n": tools,
               "caching": input_value, "thinking": tools, "reasoning": input_value, "service_tier": tools}
    for endpoint in ENDPOINTS:
        request_bounds(payload, endpoint, NOW)


@pytest.mark.parametrize("depth", [63, 64, 65, 200, 500, 1023])
def test_request_bounds_of_deep_lists_and_objects(depth):
    deep_object: dict = {}
    for _ in range(depth - 1):
        deep_object = {"content": deep_object}
    for deep in (nested_lists(depth), deep_object):
        bounds = request_bounds({"model": "m", "input": [deep]}, "responses", NOW)
        assert bounds.content_tokens >= depth  # each level counts at least its template allowance


def test_json_schema_types_are_read_as_schema_not_as_content_parts():
    schema = {"type": "object", "properties": {"type": {"type": ["string", "null"]},
                                                "kind": {"type": {"enum": ["a"]}}}}
    tools = [{"type": "function", "name": "pick", "parameters": schema, "strict": True}]
    bounds = request_bounds({"model": "m", "input": [{"role": "user", "content": [{"type": ["input_image"]}]}],
                             "tools": tools}, "responses", NOW)
    assert bounds.images == 0 and bounds.tools == ()
    assert bounds.content_tokens == content_tokens({"input": [{"role": "user", "content": [{"type": ["input_image"]}]}],
                                                    "tools": tools})


bodies = st.one_of(st.binary(max_size=120), json_values.map(orjson.dumps), json_objects.map(orjson.dumps))


@given(bodies, st.sampled_from(ENDPOINTS))
def test_parse_request_answers_or_refuses(raw, endpoint):
    try:
        request = parse_request(raw, endpoint=endpoint)
    except ApiError as error:
        assert error.status == 400
        return
    request_bounds(request.payload, endpoint, NOW)


@given(st.one_of(st.none(), st.text(max_size=30)), json_values)
def test_capture_of_any_event(name, data):
    capture = Capture()
    for text in (orjson.dumps(data).decode(), orjson.dumps({"type": name, "response": data, "delta": data}).decode(),
                 orjson.dumps({"type": "response.completed", "response": {"usage": data, "output": data,
                                                                           "background": True}}).decode()):
        capture.observe_event(SseEvent(name, text))
        capture.observe_chat_chunk(SseEvent(None, text))
        capture.observe_body(text.encode())
    assert capture.output_text_bytes >= 0


@given(json_values, json_values, json_values)
def test_output_items_of_any_value_are_read_for_an_estimate(item, index, tools):
    capture = Capture()
    for name in ("response.output_item.added", "response.output_item.done"):
        for payload in ({"type": name, "output_index": index, "item": item}, {"type": name, "item": {"result": item}},
                        {"type": name, "output_index": 0, "item": {"type": "image_generation_call", "result": item}}):
            capture.observe_event(SseEvent(name, orjson.dumps(payload).decode()))
            capture.observe_event(SseEvent(None, orjson.dumps(payload).decode()))
    capture.observe_event(SseEvent("response.created", orjson.dumps({"response": {"tools": tools}}).decode()))
    assert all(isinstance(i, dict) for i in capture.output_items)
    units_in_output(capture.output_items, capture.tools)


@given(json_values)
def test_chat_chunks_with_any_choices(choices):
    capture = Capture()
    capture.observe_chat_chunk(SseEvent(None, orjson.dumps({"id": "c", "choices": choices, "content": 1,
                                                            "reasoning_content": 1}).decode()))
    capture.observe_chat_chunk(SseEvent(None, orjson.dumps({"choices": [{"delta": choices}],
                                                            "usage": {"prompt_tokens": choices}}).decode()))
    capture.observe_chat_chunk(SseEvent(None, "[DONE]"))


@given(json_values)
def test_usage_and_reply_of_any_value(value):
    usage = parse_usage(value)
    assert usage is None or min(usage.input_tokens, usage.output_tokens, usage.cached_tokens) >= 0
    units_in_output(value, value)
    units_in_output([value], [value])
    image_size(value)
    request_units(value, BUILT_IN_TOOLS)
    request_units([value], BUILT_IN_TOOLS)
    request_units([value], BUILT_IN_TOOLS, {"cntr": "container.4g"})
    named_containers(value)
    named_containers([value, {"type": "code_interpreter", "container": value},
                      {"type": "shell", "environment": {"type": "container_reference", "container_id": value}}])
    reply = value if isinstance(value, dict) else {"usage": value, "output": value, "caching": value}
    reply_usage(reply)
    cache_storage(reply, Usage(input_tokens=300, output_tokens=10))
    storage_credit_of(reply, NOW)


@given(json_objects)
def test_replies_with_any_value_under_their_fields(reply):
    reply = {"usage": {"input_tokens": 300, "output_tokens": 5}, "caching": {"type": "enabled"},
             "status": "completed", **reply}
    reply_usage(reply)
    storage_credit_of(reply, NOW)


@given(st.lists(st.binary(max_size=40), max_size=8))
def test_sse_parser_of_any_bytes(chunks):
    parser = SseParser()
    for chunk in chunks:
        for event in parser.feed(chunk):
            assert isinstance(event.data, str)


@given(json_values)
@settings(max_examples=300)
def test_upstream_bills_of_any_shape(page):
    for read in (lambda: openai_usage([page]), lambda: openai_costs([page]),
                 lambda: byteplus_bill(orjson.dumps(page).decode())):
        try:
            read()
        except BillFormatError:
            pass
