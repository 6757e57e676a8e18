"""What the capture makes of each stream framing: data-only frames, BytePlus delta and error
frames, and Chat Completions running usage."""

import orjson

from proxy.gateway.capture import Capture
from proxy.gateway.sse import SseParser

USAGE = {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
         "output_tokens": 4, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 14}


def feed(capture: Capture, raw: bytes, chat: bool = False) -> list[bool]:
    hidden = []
    for event in SseParser().feed(raw):
        hidden.append(capture.observe_chat_chunk(event) if chat else capture.observe_event(event))
    return hidden


def frame(payload, event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + orjson.dumps(payload) + b"\n\n"


def test_data_only_frames_count_deltas_and_usage():
    capture = Capture()
    feed(capture, frame({"type": "response.created", "response": {"id": "resp_1", "usage": None}})
         + frame({"type": "response.output_text.delta", "delta": "hello"})
         + frame({"type": "response.doubao_app_call_reasoning_text.delta", "delta": "think"}))
    assert (capture.response_id, capture.output_text_bytes, capture.status) == ("resp_1", 10, None)
    feed(capture, frame({"type": "response.completed", "response": {"id": "resp_1", "usage": USAGE}}))
    assert capture.status == "completed" and capture.usage.input_tokens == 10


def test_byteplus_only_delta_types_count_with_event_lines():
    capture = Capture()
    feed(capture, frame({"type": "response.doubao_app_call_output_text.delta", "delta": "abcd"},
                        "response.doubao_app_call_output_text.delta")
         + frame({"type": "response.mcp_call_arguments.delta", "delta": "{}"}, "response.mcp_call_arguments.delta"))
    assert capture.output_text_bytes == 6


def test_byteplus_error_frame_is_an_error_event():
    capture = Capture()
    feed(capture, frame({"error": {"code": "InternalServiceError", "message": "boom"}}))
    assert capture.error_event and capture.usage is None


def chunk(content: str | None, usage: dict | None, finish: str | None = None, choices: bool = True) -> bytes:
    body = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "usage": usage,
            "choices": [{"index": 0, "delta": {"content": content} if content else {}, "finish_reason": finish}]
            if choices else []}
    return frame(body)


def running(prompt: int, completion: int) -> dict:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def test_running_chat_usage_is_final_only_at_done():
    capture = Capture()
    feed(capture, chunk("ab", running(9, 1)) + chunk("cd", running(9, 2)) + chunk(None, running(9, 3), "stop"),
         chat=True)
    assert capture.usage is None and capture.running_usage.output_tokens == 3  # cut here: not final
    feed(capture, b"data: [DONE]\n\n", chat=True)
    assert capture.status == "completed" and capture.usage.output_tokens == 3


def test_usage_only_chat_chunk_is_final_and_hidden():
    capture = Capture()
    hidden = feed(capture, chunk("ab", None) + chunk(None, running(9, 5), choices=False), chat=True)
    assert hidden == [False, True]
    assert capture.usage.output_tokens == 5 and capture.status == "completed"


def test_a_whole_reply_without_usage_counts_its_generated_text_for_the_estimate():
    """A JSON 200 whose usage is missing is estimated from the text it holds, not as empty."""
    response = {"id": "resp_1", "object": "response", "status": "completed", "output": [
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "thinking"}]},
        {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
         "content": [{"type": "output_text", "text": "héllo world", "annotations": []}]},
        {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "pick", "arguments": '{"a":1}'}]}
    capture = Capture()
    capture.observe_body(orjson.dumps(response))
    assert capture.usage is None and capture.status == "completed"
    assert capture.output_text_bytes == len("thinking") + len("héllo world".encode()) + len('{"a":1}')

    chat = {"id": "chatcmpl-1", "object": "chat.completion", "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": "four words of text", "refusal": None,
                        "tool_calls": [{"id": "c", "type": "function",
                                        "function": {"name": "f", "arguments": "{}"}}]}}]}
    capture = Capture()
    capture.observe_body(orjson.dumps(chat))
    assert capture.output_text_bytes == len("four words of text") + len("{}")

    with_usage = Capture()
    with_usage.observe_body(orjson.dumps({**response, "usage": {"input_tokens": 3, "output_tokens": 9}}))
    assert with_usage.output_text_bytes == 0 and with_usage.usage.output_tokens == 9
