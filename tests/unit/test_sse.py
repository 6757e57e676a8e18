"""The SSE parser gets the same events however the stream is cut into chunks."""

import pytest

from proxy.gateway.capture import Capture
from proxy.gateway.sse import SseEvent, SseParser

RECORDED = (
    b"event: response.created\n"
    b'data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_1","usage":null}}\n\n'
    b": keep-alive comment\n\n"
    b"event: response.output_text.delta\r\n"
    b'data: {"type":"response.output_text.delta","delta":"h\xc3\xa9"}\r\n\r\n'
    b"event: multi\rdata: line one\rdata: line two\r\r"
    b"event: response.completed\n"
    b'data: {"type":"response.completed","sequence_number":3,"response":{"id":"resp_1","status":"completed",'
    b'"usage":{"input_tokens":12,"input_tokens_details":{"cached_tokens":4},"output_tokens":7,'
    b'"output_tokens_details":{"reasoning_tokens":2}}}}\n\n'
)
EXPECTED = [
    SseEvent("response.created",
             '{"type":"response.created","sequence_number":0,"response":{"id":"resp_1","usage":null}}'),
    SseEvent("response.output_text.delta", '{"type":"response.output_text.delta","delta":"hé"}'),
    SseEvent("multi", "line one\nline two"),
    SseEvent("response.completed", RECORDED.split(b"event: response.completed\n")[1].split(b"\n")[0][6:].decode()),
]


def parse_in_chunks(chunks):
    parser, events = SseParser(), []
    for chunk in chunks:
        events += parser.feed(chunk)
    return events


def test_whole_stream():
    assert parse_in_chunks([RECORDED]) == EXPECTED


def test_split_at_every_byte_boundary_gives_the_same_events_and_usage():
    for cut in range(1, len(RECORDED)):
        events = parse_in_chunks([RECORDED[:cut], RECORDED[cut:]])
        assert events == EXPECTED, f"cut at byte {cut}"
        capture = Capture()
        for event in events:
            capture.observe_event(event)
        assert (capture.usage.input_tokens, capture.usage.cached_tokens, capture.usage.output_tokens,
                capture.usage.reasoning_tokens) == (12, 4, 7, 2)
        assert capture.response_id == "resp_1" and capture.status == "completed"


def test_one_byte_at_a_time():
    assert parse_in_chunks([RECORDED[i:i + 1] for i in range(len(RECORDED))]) == EXPECTED


@pytest.mark.parametrize(("raw", "expected"), [
    (b"data: x\n\n", [SseEvent(None, "x")]),
    (b"data:x\n\n", [SseEvent(None, "x")]),
    (b"data\n\n", [SseEvent(None, "")]),
    (b": only a comment\n\n", []),
    (b"id: 7\nretry: 10\n\n", []),
    (b"data: unfinished", []),
])
def test_field_rules(raw, expected):
    assert parse_in_chunks([raw]) == expected


def test_events_without_event_lines_are_still_captured():
    capture = Capture()
    for event in parse_in_chunks([b'data: {"type":"response.completed","response":{"id":"r","usage":'
                                  b'{"input_tokens":1,"output_tokens":2}}}\n\n']):
        capture.observe_event(event)
    assert capture.status == "completed" and capture.usage.output_tokens == 2


def test_terminal_events_map_to_statuses():
    for name, status in (("response.incomplete", "incomplete"), ("response.failed", "failed")):
        capture = Capture()
        capture.observe_event(SseEvent(name, '{"response":{"id":"r","usage":{"input_tokens":3,"output_tokens":1}}}'))
        assert capture.status == status and capture.usage.input_tokens == 3


def test_malformed_terminal_data_is_ignored_not_fatal():
    capture = Capture()
    capture.observe_event(SseEvent("response.completed", "{not json"))
    assert capture.usage is None


CHAT_STREAM = (
    b'data: {"id":"chatcmpl-1","choices":[{"index":0,"delta":{"content":"Hi"}}],"usage":null}\n\n'
    b'data: {"id":"chatcmpl-1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}\n\n'
    b'data: {"id":"chatcmpl-1","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21}}\n\n'
    b"data: [DONE]\n\n"
)


def test_chat_stream_usage_chunk_found_at_every_split():
    for cut in range(1, len(CHAT_STREAM)):
        capture = Capture()
        usage_only = [capture.observe_chat_chunk(e) for e in parse_in_chunks([CHAT_STREAM[:cut], CHAT_STREAM[cut:]])]
        assert usage_only == [False, False, True, False], cut
        assert (capture.usage.input_tokens, capture.usage.output_tokens) == (9, 12)
        assert capture.response_id == "chatcmpl-1"
