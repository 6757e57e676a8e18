"""Watch a reply go by and pick out what billing needs. Pure.

Only the few events that matter are decoded (`response.created` for the id and the tools
offered, the terminal `response.completed` / `response.incomplete` / `response.failed` for
usage, and, for an estimate should usage never come, text deltas and the output items the
reply made, whose built-in tool calls bill); every other event passes by undecoded.
Streams framed with `data:` lines only (no `event:`) carry their type inside the data, so
there each frame is decoded. A BytePlus `data: {"error": ...}` frame counts as an error
event.

Chat Completions streams carry usage in the last chunk (`include_usage`) or a running total
in every chunk (BytePlus `chunk_include_usage`): the last one wins, and it is final only
once the usage-only chunk or `data: [DONE]` arrived. A stream cut before that keeps its
running total only as the floor of an estimate.
"""

from dataclasses import dataclass, field
from typing import Any

import orjson

from billing.reply import reply_usage
from billing.usage import Usage
from proxy.gateway.sse import SseEvent

TERMINAL_EVENTS = {
    "response.completed": "completed",
    "response.incomplete": "incomplete",
    "response.failed": "failed",
}
_WATCHED = {"response.created", "response.queued", *TERMINAL_EVENTS}
_ITEM_EVENTS = frozenset({"response.output_item.added", "response.output_item.done"})
MAX_ITEMS = 4_096  # output items kept for an estimate (a reply makes a few)
_KEPT_RESULT_CHARS = 2_048  # of an image's base64: its header, enough to read its size
# Every `*.delta` event carries generated text (output, reasoning, tool arguments, BytePlus'
# own types): counted to estimate output tokens when no usage ever comes.
_DELTA_SUFFIX = ".delta"
# In a whole reply, the fields that hold generated text (output text, refusals, reasoning,
# tool arguments), under `output` (Responses) or `choices` (Chat Completions).
_GENERATED_TEXT = frozenset({"text", "content", "arguments", "refusal", "reasoning_content"})


@dataclass
class Capture:
    response_id: str | None = None
    status: str | None = None  # set once a terminal event (or a whole JSON body) was seen
    usage: Usage | None = None
    output_text_bytes: int = 0  # text deltas passed through, for an estimate
    error_event: bool = False  # the stream carried an `error` event
    reasoning_seen: bool = False  # the stream showed reasoning (an estimate allows for it)
    running_usage: Usage | None = None  # chat: the last running total, not yet known final
    background: bool = False  # the reply is a background response...
    reply: dict[str, Any] | None = None  # ...and this is its latest state, to settle it from
    tools: Any = None  # the tools the reply says it offered
    stored: bool = False  # the upstream keeps the response (`store` is not false): it can be read back
    items: dict[int, Any] = field(default_factory=dict)  # output items seen, by output index

    @property
    def output_items(self) -> list[Any]:
        """The output items the reply made so far (a tool call begun counts: it may bill)."""
        return [self.items[index] for index in sorted(self.items)]

    def observe_event(self, event: SseEvent) -> None:
        name = event.event
        payload = None
        if name is None:  # a stream without `event:` lines: the type is inside the data
            payload = _decode(event.data)
            if payload is None:
                return
            name = payload.get("type")
            if name is None and "error" in payload:
                name = "error"  # BytePlus: `data: {"error": {...}}`
            if not isinstance(name, str):
                return
        if "reasoning" in name or (name == "response.output_item.added" and '"reasoning"' in event.data):
            self.reasoning_seen = True
        if name.endswith(_DELTA_SUFFIX):
            self._count_delta(payload if payload is not None else _decode(event.data))
            return
        if name == "error":
            self.error_event = True
            return
        if name in _ITEM_EVENTS:
            self._take_item(payload if payload is not None else _decode(event.data))
            return
        if name not in _WATCHED:
            return
        payload = payload if payload is not None else _decode(event.data)
        response = payload.get("response") if payload else None
        if not isinstance(response, dict):
            return
        self._take_response(response)
        if name in TERMINAL_EVENTS:
            self.status = TERMINAL_EVENTS[name]

    def observe_chat_chunk(self, event: SseEvent) -> bool:
        """A Chat Completions stream chunk; True if it is the usage-only chunk."""
        data = event.data
        if data == "[DONE]":
            if self.running_usage is not None:
                self.usage, self.status = self.running_usage, "completed"
            return False
        if self.response_id is None and data.startswith("{"):
            chunk = _decode(data)
            if chunk and isinstance(chunk.get("id"), str):
                self.response_id = chunk["id"]
        if '"content"' in data:
            self._count_content(data)
        if '"reasoning_content"' in data:
            self.reasoning_seen = True
        if data.startswith('{"error"'):  # BytePlus: `data: {"error": {...}}`
            self.error_event = True
            return False
        if '"prompt_tokens"' not in data:
            return False
        chunk = _decode(data)
        usage = reply_usage(chunk) if chunk else None
        if usage is None:
            return False
        self.running_usage = usage
        usage_only = not chunk.get("choices")
        if usage_only:  # OpenAI's `include_usage` chunk: the final total
            self.usage, self.status = usage, "completed"
        return usage_only

    def _count_delta(self, payload: dict[str, Any] | None) -> None:
        text = payload.get("delta") if payload else None
        if isinstance(text, str):
            self.output_text_bytes += len(text.encode())

    def _count_content(self, data: str) -> None:
        choices = (_decode(data) or {}).get("choices")
        for choice in choices if isinstance(choices, list) else ():
            delta = choice.get("delta") if isinstance(choice, dict) else None
            content = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(content, str):
                self.output_text_bytes += len(content.encode())

    def observe_body(self, body: bytes) -> None:
        """A whole (non-streamed) JSON reply."""
        payload = _decode(body)
        if payload:
            self._take_response(payload)
            status = payload.get("status")
            self.status = status if isinstance(status, str) else "completed"
            if self.usage is None:  # estimated then: from the text it holds, not as if it held none
                self.output_text_bytes += _generated_text_bytes([payload.get("output"), payload.get("choices")])

    def _take_item(self, payload: dict[str, Any] | None) -> None:
        item, index = (payload.get("item"), payload.get("output_index")) if payload else (None, None)
        if not isinstance(item, dict) or not isinstance(index, int) or isinstance(index, bool):
            return
        if index not in self.items and len(self.items) >= MAX_ITEMS:
            return
        result = item.get("result")
        if isinstance(result, str) and len(result) > _KEPT_RESULT_CHARS:
            item = {**item, "result": result[:_KEPT_RESULT_CHARS]}
        self.items[index] = item

    def _take_response(self, response: dict[str, Any]) -> None:
        self.stored = response.get("store") is not False
        if isinstance(response.get("tools"), list):
            self.tools = response["tools"]
        output = response.get("output")
        if isinstance(output, list) and output:
            self.items = dict(enumerate(output[:MAX_ITEMS]))
        if response.get("background") is True:
            self.background, self.reply = True, response
        response_id = response.get("id")
        if isinstance(response_id, str):
            self.response_id = response_id
        usage = reply_usage(response)
        if usage is not None:
            self.usage = usage


def _generated_text_bytes(values: list[Any]) -> int:
    """Bytes of generated text anywhere under `values` (walked without recursion: any depth)."""
    total, stack = 0, list(values)
    while stack:
        value = stack.pop()
        if isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, dict):
            for name, inner in value.items():
                if isinstance(inner, str):
                    total += len(inner.encode()) if name in _GENERATED_TEXT else 0
                else:
                    stack.append(inner)
    return total


def _decode(data: str | bytes) -> dict[str, Any] | None:
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return payload if isinstance(payload, dict) else None
