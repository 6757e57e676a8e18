"""A Responses API reply as its stream of events (the real sequence, numbered by
`sequence_number`), and sending them cut, failed or stalled where the test knobs say."""

import asyncio
from typing import Any

from aiohttp import web

from proxy.simulator.wire import header_int, is_byteplus, reply_words, sse_frame

TOOL_EVENTS = {"web_search_call": ("in_progress", "searching", "completed"),
                "file_search_call": ("in_progress", "searching", "completed"),
                "code_interpreter_call": ("in_progress", "interpreting", "completed")}


def event_frames(final: dict[str, Any], text: str, reasoning_words: int, *, data_only: bool) -> list[tuple[int, bytes]]:
    """The Responses API event sequence of one reply, as SSE frames numbered by sequence."""
    frames: list[tuple[int, bytes]] = []

    def add(event_type: str, payload: dict[str, Any]) -> None:
        data = {"type": event_type, "sequence_number": len(frames), **payload}
        frames.append((len(frames), sse_frame(None if data_only else event_type, data)))

    in_progress = {**final, "status": "in_progress", "output": [], "usage": None, "incomplete_details": None}
    add("response.created", {"response": in_progress})
    add("response.in_progress", {"response": in_progress})
    for index, item in enumerate(final["output"]):
        add("response.output_item.added", {"output_index": index, "item": {**item, "content": []}
                                          if item["type"] == "message" else item})
        if item["type"] in TOOL_EVENTS:
            for phase in TOOL_EVENTS[item["type"]]:
                add(f"response.{item['type']}.{phase}", {"output_index": index, "item_id": item["id"]})
        if item["type"] == "reasoning" and reasoning_words:  # BytePlus streams its thinking
            common = {"item_id": item["id"], "output_index": index, "summary_index": 0}
            for word in reply_words(reasoning_words, item["id"]):
                add("response.reasoning_summary_text.delta", {**common, "delta": word + " "})
        if item["type"] == "message":
            part = {"type": "output_text", "text": "", "annotations": []}
            common = {"item_id": item["id"], "output_index": index, "content_index": 0}
            add("response.content_part.added", {**common, "part": part})
            words = text.split(" ") if text else []
            for position, word in enumerate(words):
                add("response.output_text.delta", {**common, "delta": word if position == 0 else " " + word,
                                                   "logprobs": []})
            add("response.output_text.done", {**common, "text": text, "logprobs": []})
            add("response.content_part.done", {**common, "part": {**part, "text": text}})
        add("response.output_item.done", {"output_index": index, "item": item})
    add("response.completed" if final["status"] == "completed" else "response.incomplete", {"response": final})
    return frames


async def send(request: web.Request, frames: list[tuple[int, bytes]], delay: float, model: str, *,
                  cut_after: int | None = None, error_after: int | None = None, stall_after: int | None = None,
                  on_end=None, data_only: bool = False) -> web.StreamResponse:
    """Send `frames`, cut, failed or stalled where the knobs say. A background response
    (`on_end`) finishes upstream however its stream ends."""
    stream = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await stream.prepare(request)
    try:
        for sequence, frame in frames:
            if sequence == cut_after:
                request.transport.close()  # mid-stream, no terminal event
                return stream
            if sequence == error_after:
                if is_byteplus(model):
                    payload = {"error": {"code": "InternalServiceError", "message": "The model failed mid-stream.",
                                         "param": "", "type": "InternalServiceError"}}
                    await stream.write(sse_frame(None, payload))
                else:
                    await stream.write(sse_frame(None if data_only else "error", {
                        "type": "error", "sequence_number": sequence, "code": "server_error",
                        "message": "The model failed mid-stream.", "param": None}))
                break
            if sequence == stall_after:
                while request.transport is not None and not request.transport.is_closing():
                    await asyncio.sleep(0.05)  # quiet until the client gives up
                return stream
            if delay:
                await asyncio.sleep(delay)
            await stream.write(frame)
        hold = header_int(request, "x-sim-hold-after-end-ms")
        if hold:
            await asyncio.sleep(hold / 1000)  # the last event is out; the connection stays open a while
        await stream.write_eof()
        return stream
    finally:
        if on_end is not None:
            on_end()
