"""Validate and normalise a client's request body before it goes upstream. Pure.

- a literal top-level `extra_body` object (as plain curl sends it) is merged into the top
  level, its keys winning, as the OpenAI SDK's `extra_body=` would have done;
- on /v1/responses, `messages` stands for `input` when `input` is absent;
- `check_prefix_caching` refuses BytePlus `caching.prefix` with `max_output_tokens` for
  the upstreams configured to (400); `caching` and `thinking` otherwise pass untouched;
- on /v1/chat/completions, a stream always asks the upstream for its usage
  (`stream_options.include_usage`); if the client did not ask for it, the proxy hides the
  extra usage chunk from it again (`hide_usage_chunk`);
- a body naming a field the proxy reads (`model`, `stream`, limits, ...) twice at the top
  level is refused: the proxy and the upstream might each take a different copy, and the
  call would be billed as one model and served as another;
- the original bytes are forwarded untouched unless one of those rewrites applied.
"""

import json
import re
from dataclasses import dataclass, replace
from typing import Any

import orjson

from proxy.errors import ApiError
from proxy.gateway.paths import MAX_ID_CHARS, is_id

_SERVICE_TIER = re.compile(r"[a-z][a-z0-9_-]{0,31}")  # auto, default, flex, priority, scale, ...
MAX_MODEL_CHARS = 256  # far above any real name; a model name is stored on every ledger row
MAX_OUTPUT_LIMIT = 10_000_000  # far above any model's; it bounds the quota estimate
MAX_TOOL_CALLS = 1_000  # far above any agent's turn; it bounds the quota estimate
UNSTREAMED = {"embeddings": "embeddings", "responses.compact": "responses/compact"}


@dataclass(frozen=True)
class ClientRequest:
    model: str
    stream: bool
    body: bytes  # what goes upstream
    payload: dict[str, Any]
    hide_usage_chunk: bool = False  # chat stream: usage was asked for on the client's behalf
    background: bool = False  # a background response: billed when it ends, not when it is queued


def _invalid(message: str, param: str | None = None) -> ApiError:
    return ApiError(400, message, type="invalid_request_error", code="invalid_request_error", param=param)


# Fields the proxy decides on. A key inside a JSON string has its quotes escaped, so a raw
# count above one means a nested object uses the name too, or the top level repeats it.
_READ_FIELDS = tuple(f'"{name}"'.encode() for name in (
    "model", "stream", "max_output_tokens", "max_tokens", "max_completion_tokens", "extra_body", "input",
    "messages", "previous_response_id", "caching", "stream_options", "background", "conversation", "n", "tools",
    "max_tool_calls", "service_tier"))
_READ_FIELD_NAMES = re.compile(b"|".join(re.escape(name) for name in _READ_FIELDS))


def _repeated_top_level_field(raw: bytes) -> str | None:
    """A field the proxy reads that the top-level object holds twice (rare, so the exact
    check runs only when a quick count suggests it, or when a `\\u` escape could spell a
    name in a way the count does not see, as `"mod\\u0065l"`)."""
    if b"\\u" not in raw:
        seen = _READ_FIELD_NAMES.findall(raw)  # one pass over the body, not one per name
        if len(seen) == len(set(seen)):
            return None
    objects: list[list[tuple[str, Any]]] = []
    try:
        json.loads(raw, object_pairs_hook=lambda pairs: objects.append(pairs) or dict(pairs))
    except (ValueError, RecursionError):
        raise _invalid("The request body is not valid JSON.") from None
    names = [name for name, _ in objects[-1]]  # the top-level object is completed last
    read = {n.decode().strip('"') for n in _READ_FIELDS}
    return next((name for name in names if name in read and names.count(name) > 1), None)


def _encoded(payload: dict[str, Any]) -> bytes:
    """A rewritten body as JSON. orjson stops at 255 levels of nesting, which the parser
    accepts, so deeper bodies take the standard library's encoder (about 1,000 levels)."""
    try:
        return orjson.dumps(payload)
    except orjson.JSONEncodeError:
        pass
    try:
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    except (RecursionError, ValueError):
        raise _invalid("The request body is nested too deeply.") from None


def json_object(raw: bytes) -> dict[str, Any]:
    """A body that must be a JSON object, or the 400 that says why not."""
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _invalid("The request body is not valid JSON.") from None
    if not isinstance(payload, dict):
        raise _invalid("The request body must be a JSON object.")
    return payload


def prefix_cached(payload: dict[str, Any]) -> bool:
    caching = payload.get("caching")
    return isinstance(caching, dict) and caching.get("prefix") is True


PREFIX_UNFITTABLE = "BytePlus `caching.prefix` cannot be combined with `max_output_tokens`"


def check_prefix_caching(payload: dict[str, Any]) -> None:
    """For upstreams (BytePlus) that cannot combine a prefix cache with an output limit."""
    if prefix_cached(payload) and payload.get("max_output_tokens") is not None:
        raise _invalid("`caching.prefix` cannot be combined with `max_output_tokens` (the upstream does not "
                       "support it); drop one of them.", "max_output_tokens")


def check_fields_acted_on(payload: dict[str, Any]) -> None:
    """The fields that decide how a call is polled, billed or continued, in the one shape each
    may have: a `background` of `1` would go upstream as a background job the proxy never
    polls, and a NUL in `service_tier` would come back in the reply and make its entry one
    the ledger cannot store."""
    for name in ("background", "store"):
        if payload.get(name) is not None and not isinstance(payload[name], bool):
            raise _invalid(f"`{name}` must be a boolean.", name)
    tier = payload.get("service_tier")
    if tier is not None and not (isinstance(tier, str) and _SERVICE_TIER.fullmatch(tier)):
        raise _invalid("`service_tier` must be a tier name such as `auto`, `default`, `flex` or `priority`.",
                       "service_tier")
    previous = payload.get("previous_response_id")
    if previous is not None and not is_id(previous):
        raise _invalid(f"`previous_response_id` must be a response id: letters, digits, `_` and `-`, at most "
                       f"{MAX_ID_CHARS} characters.", "previous_response_id")
    conversation = payload.get("conversation")
    conversation_id = conversation.get("id") if isinstance(conversation, dict) else conversation
    if conversation is not None and not is_id(conversation_id):
        raise _invalid("`conversation` must be a conversation id, or an object whose `id` is one.", "conversation")


def with_output_cap(request: ClientRequest, endpoint: str, cap: int) -> ClientRequest:
    """The request with its output cap lowered to `cap` (per choice), in the field the
    endpoint honours: `max_output_tokens` on Responses; on Chat Completions
    `max_completion_tokens`, which bounds reasoning too, and without `max_tokens` (BytePlus
    refuses the two together, and there `max_tokens` leaves reasoning unbounded)."""
    payload = dict(request.payload)
    if endpoint == "chat.completions":
        payload.pop("max_tokens", None)
        payload["max_completion_tokens"] = cap
    else:
        payload["max_output_tokens"] = cap
    return replace(request, payload=payload, body=_encoded(payload))


def with_tool_call_cap(request: ClientRequest, calls: int) -> ClientRequest:
    """The request with `max_tool_calls` set to `calls`: a request that offers built-in
    tools and sets none is bounded at what its worst case assumed (the upstream's own
    default may be higher, or none)."""
    payload = {**request.payload, "max_tool_calls": calls}
    return replace(request, payload=payload, body=_encoded(payload))


def parse_request(raw: bytes, *, endpoint: str) -> ClientRequest:
    if not raw:
        raise _invalid("The request body is empty; send a JSON object.")
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _invalid(f"The request body is not valid JSON: {exc}.") from None
    if not isinstance(payload, dict):
        raise _invalid("The request body must be a JSON object.")
    repeated = _repeated_top_level_field(raw)
    if repeated:
        raise _invalid(f"The request body names `{repeated}` more than once.", repeated)

    rewritten = False
    if "extra_body" in payload:
        extra = payload.pop("extra_body")
        if not isinstance(extra, dict):
            raise _invalid("`extra_body` must be an object.", "extra_body")
        payload.update(extra)
        rewritten = True
    if endpoint == "responses" and "messages" in payload:
        if "input" in payload:
            raise _invalid("Give either `input` or `messages` (its alias), not both.", "messages")
        payload["input"] = payload.pop("messages")
        rewritten = True

    model = payload.get("model")
    if not isinstance(model, str) or not model.strip():
        raise _invalid("`model` is required and must be a non-empty string.", "model")
    if len(model) > MAX_MODEL_CHARS or not model.isprintable():
        raise _invalid(f"`model` must be a model name: at most {MAX_MODEL_CHARS} printable characters.", "model")
    for name in ("max_output_tokens", "max_completion_tokens", "max_tokens"):
        limit = payload.get(name)
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                                  or not 0 <= limit <= MAX_OUTPUT_LIMIT):
            raise _invalid(f"`{name}` must be a whole number from 0 to {MAX_OUTPUT_LIMIT}.", name)
    calls = payload.get("max_tool_calls")
    if calls is not None and (isinstance(calls, bool) or not isinstance(calls, int)
                              or not 0 <= calls <= MAX_TOOL_CALLS):
        raise _invalid(f"`max_tool_calls` must be a whole number from 0 to {MAX_TOOL_CALLS}.", "max_tool_calls")
    if endpoint == "responses" and payload.get("input") is not None and not isinstance(payload["input"], (str, list)):
        raise _invalid("`input` must be a string or an array of input items.", "input")
    if endpoint == "chat.completions" and not isinstance(payload.get("messages"), list):
        raise _invalid("`messages` is required and must be an array.", "messages")
    if endpoint == "embeddings" and not isinstance(payload.get("input"), (str, list)):
        raise _invalid("`input` is required: a string, an array of strings or of token arrays.", "input")
    check_fields_acted_on(payload)
    stream = payload.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise _invalid("`stream` must be a boolean.", "stream")
    if stream and endpoint in UNSTREAMED:
        raise _invalid(f"`stream` is not supported on /v1/{UNSTREAMED[endpoint]}.", "stream")
    background = payload.get("background") is True and endpoint == "responses"
    hide_usage_chunk = False
    if endpoint == "chat.completions" and stream:
        options = payload.get("stream_options")
        if options is not None and not isinstance(options, dict):
            raise _invalid("`stream_options` must be an object.", "stream_options")
        if not (options or {}).get("include_usage"):
            payload["stream_options"] = {**(options or {}), "include_usage": True}
            hide_usage_chunk = rewritten = True
    body = _encoded(payload) if rewritten else raw
    return ClientRequest(model=model, stream=stream, body=body, payload=payload, hide_usage_chunk=hide_usage_chunk,
                         background=background)
