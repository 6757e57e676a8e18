"""Watch a Responses API reply go by and pick out what billing needs. Pure.

Only the few events that matter are decoded (`response.created` for the id, the terminal
`response.completed` / `response.incomplete` / `response.failed` for usage); every other
event passes by undecoded.
"""

from dataclasses import dataclass
from typing import Any

import orjson

from billing.usage import Usage, parse_usage
from proxy.sse import SseEvent

TERMINAL_EVENTS = {
    "response.completed": "completed",
    "response.incomplete": "incomplete",
    "response.failed": "failed",
}
_WATCHED = {"response.created", *TERMINAL_EVENTS}
# Text the client received, counted to estimate output tokens when no usage ever comes.
_TEXT_DELTAS = {"response.output_text.delta", "response.reasoning_text.delta",
                "response.reasoning_summary_text.delta", "response.refusal.delta",
                "response.function_call_arguments.delta"}


@dataclass
class Capture:
    response_id: str | None = None
    status: str | None = None  # set once a terminal event (or a whole JSON body) was seen
    usage: Usage | None = None
    output_text_bytes: int = 0  # text deltas passed through, for an estimate
    error_event: bool = False  # the stream carried an `error` event

    def observe_event(self, event: SseEvent) -> None:
        name = event.event
        if name in _TEXT_DELTAS:
            self._count_delta(event.data, "delta")
            return
        if name == "error":
            self.error_event = True
            return
        if name is None:  # a stream without `event:` lines: the type is inside the data
            if '"response.' not in event.data:
                return
            payload = _decode(event.data)
            name = payload.get("type") if payload else None
        elif name in _WATCHED:
            payload = _decode(event.data)
        else:
            return
        if name not in _WATCHED or not payload:
            return
        response = payload.get("response")
        if not isinstance(response, dict):
            return
        self._take_response(response)
        if name in TERMINAL_EVENTS:
            self.status = TERMINAL_EVENTS[name]

    def observe_chat_chunk(self, event: SseEvent) -> bool:
        """A Chat Completions stream chunk; True if it is the usage-only chunk."""
        if self.response_id is None and event.data.startswith("{"):
            chunk = _decode(event.data)
            if chunk and isinstance(chunk.get("id"), str):
                self.response_id = chunk["id"]
        if '"content"' in event.data:
            self._count_content(event.data)
        if '"prompt_tokens"' not in event.data:
            return False
        chunk = _decode(event.data)
        usage = parse_usage(chunk.get("usage")) if chunk else None
        if usage is None:
            return False
        self.usage, self.status = usage, "completed"
        return not chunk.get("choices")

    def _count_delta(self, data: str, field: str) -> None:
        payload = _decode(data)
        text = payload.get(field) if payload else None
        if isinstance(text, str):
            self.output_text_bytes += len(text.encode())

    def _count_content(self, data: str) -> None:
        chunk = _decode(data)
        for choice in (chunk or {}).get("choices") or ():
            content = (choice.get("delta") or {}).get("content") if isinstance(choice, dict) else None
            if isinstance(content, str):
                self.output_text_bytes += len(content.encode())

    def observe_body(self, body: bytes) -> None:
        """A whole (non-streamed) JSON reply."""
        payload = _decode(body)
        if payload:
            self._take_response(payload)
            status = payload.get("status")
            self.status = status if isinstance(status, str) else "completed"

    def _take_response(self, response: dict[str, Any]) -> None:
        response_id = response.get("id")
        if isinstance(response_id, str):
            self.response_id = response_id
        usage = parse_usage(response.get("usage"))
        if usage is not None:
            self.usage = usage


def _decode(data: str | bytes) -> dict[str, Any] | None:
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return payload if isinstance(payload, dict) else None
