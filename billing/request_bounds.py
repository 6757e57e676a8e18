"""What a request body says about the most the upstream can bill for it. Pure.

The worst-case estimate (`billing.quota.estimate`) starts from the content the model reads
(`content_tokens`: one token per UTF-8 byte of its text at most, since byte-level BPE
tokenizers never produce more tokens than bytes, plus an allowance per object and list
item for the chat template around it). Where the model's tokenizer is known
(`billing.tokenizer`), each string counts its tokens instead, with room for the quotes and
escapes of a JSON rendering, and the request a frame of its own; opaque strings
(`encrypted_content`) keep their bytes, as the model reads what they decrypt to. Then it
adds what the body does not carry itself:
- the output cap the endpoint really honours: `max_output_tokens` on the Responses API;
  `max_completion_tokens` on Chat Completions (or `max_tokens` beside it, if larger; alone,
  `max_tokens` bounds nothing: BytePlus does not count reasoning in it); nothing on
  embeddings. A cap another endpoint would read is ignored;
- `n` choices on Chat Completions, each up to the cap;
- images: each costs tokens whatever its size in the body (a URL or a file id is a few
  bytes; even a 1x1 inline image is billed thousands of tokens);
- files, videos and a `conversation`: of unknown size, up to the model's context window;
- built-in tools (web search, file search, code interpreter, MCP ...): a fee per call, and
  each call lets the model read its context once more;
- BytePlus cache storage, booked for the hours until `expire_at` (3 days by default).
"""

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

from billing.tool_units import request_units, tool_family

IMAGE_PARTS = frozenset({"input_image", "image_url", "image"})
UNSIZED_PARTS = frozenset({"input_file", "file", "input_video", "video_url", "input_audio", "audio"})
# Request tool types the upstream runs itself, by the name their calls are billed under.
BUILT_IN_TOOLS = {
    "web_search": "web_search", "web_search_preview": "web_search", "web_search_2025_08_26": "web_search",
    "web_search_preview_2025_03_11": "web_search", "file_search": "file_search",
    "code_interpreter": "code_interpreter", "mcp": "mcp", "knowledge_search": "knowledge_search",
    "image_generation": "image_generation", "computer_use_preview": "computer_use", "shell": "shell",
    "local_shell": "shell", "apply_patch": "apply_patch",
}
# Top-level fields the model never reads: settings, routing and bookkeeping. Everything
# else counts (an unknown field is counted, so the bound stays one).
NOT_READ = frozenset({
    "model", "stream", "stream_options", "metadata", "user", "safety_identifier", "prompt_cache_key",
    "prompt_cache_retention", "previous_response_id", "conversation", "store", "background", "service_tier",
    "max_output_tokens", "max_completion_tokens", "max_tokens", "max_tool_calls", "n", "temperature", "top_p",
    "top_logprobs", "logprobs", "seed", "parallel_tool_calls", "truncation", "include", "presence_penalty",
    "frequency_penalty", "logit_bias", "caching", "thinking", "expire_at", "reasoning_effort", "verbosity",
    "encoding_format", "dimensions"})
TEMPLATE_TOKENS = 4  # per object key and list item: role markers, separators, a tool's rendering
# A string may be rendered as JSON (a response schema is): room for its quotes, and for
# each character JSON escapes, `\n` in two characters, a control character as `\u0007`.
QUOTES = 2
SHORT_ESCAPES = re.compile(r'["\\\n\r\t\x08\x0c]')  # one character more, at most two tokens more
LONG_ESCAPES = re.compile(r'[\x00-\x07\x0b\x0e-\x1f]')  # five characters more, at most six tokens more
FRAME_TOKENS = 64  # counted in tokens: the frame around the conversation (role headers, the reply's priming)
# A longer string is bounded by its bytes: BPE slows down on a long run without a break
# (a million `a`s take half a second), and bytes bound tokens anyway.
MAX_COUNTED_CHARS = 256 * 1024
OPAQUE = frozenset({"encrypted_content"})  # read by the model as what they decrypt to: bytes
DEFAULT_CACHE_HOURS = 72  # BytePlus keeps a cached response 3 days unless `expire_at` says otherwise
MAX_CHOICES = 128  # the most `n` Chat Completions accepts


@dataclass(frozen=True)
class RequestBounds:
    output_cap: int | None  # the cap the endpoint honours; None: the model's own
    choices: int  # `n`
    images: int
    unsized_input: bool  # files, videos, audio or a conversation: up to the context window
    unsized_parts: bool  # the same but a conversation (whose context the proxy may know)
    tools: tuple[str, ...]  # built-in tools the upstream may call (billed names)
    max_tool_calls: int | None
    reasoning: bool  # the request turns reasoning on
    cache_hours: int  # hours BytePlus would store the reply's context (0: not cached)
    service_tier: str | None = None  # the tier asked for by name; None: the account's default
    content_tokens: int | None = None  # the most the body's own content can tokenize to; None: unknown
    tool_units: tuple[tuple[str, bool], ...] = ()  # what its tools may bill (`billing.tool_units.request_units`)


MAX_DEPTH = 64  # deeper than any real body nests; beyond it a walk goes coarse, never recursing


def _kind(value: Mapping[str, Any]) -> str | None:
    """An object's `type` when it is a name: in a JSON schema it may be a list, an object..."""
    kind = value.get("type")
    return kind if isinstance(kind, str) else None


def _parts(value: Any, depth: int = 0) -> Iterator[Mapping[str, Any]]:
    """Every object in an input down to `MAX_DEPTH` (parts deeper than that are counted as
    text by `_content`, never as images or files)."""
    if depth > MAX_DEPTH:
        return
    if isinstance(value, dict):
        yield value
        for inner in value.values():
            if isinstance(inner, (dict, list)):
                yield from _parts(inner, depth + 1)
    elif isinstance(value, list):
        for inner in value:
            yield from _parts(inner, depth + 1)


Count = Callable[[str], int] | None  # a string's tokens; None: its UTF-8 bytes


def _content(value: Any, count: Count, in_image: bool = False, depth: int = 0) -> int:
    """Tokens a piece of the body can become at most: its text (`_text`), plus the template
    allowance per key and item. An image's inline data is left out: every image is counted
    at the image allowance."""
    if isinstance(value, str):
        if in_image and value.startswith("data:"):
            return 0
        return _text(value, count)
    if depth > MAX_DEPTH and isinstance(value, (dict, list)):
        return _coarse(value)
    if isinstance(value, dict):
        image = in_image or _kind(value) in IMAGE_PARTS
        return sum(_text(key, count) + TEMPLATE_TOKENS + _content(inner, None if key in OPAQUE else count, image,
                                                                  depth + 1)
                   for key, inner in value.items())
    if isinstance(value, list):
        return sum(TEMPLATE_TOKENS + _content(inner, count, in_image, depth + 1) for inner in value)
    return _scalar(value)


def _text(value: str, count: Count) -> int:
    """A string's bytes (or tokens), its quotes and escapes included."""
    if value.isalnum() or not value:  # most keys and names: nothing to escape
        escapes = 0
    else:
        short, long = len(SHORT_ESCAPES.findall(value)), len(LONG_ESCAPES.findall(value))
        escapes = short + 5 * long if count is None else 2 * short + 6 * long
    counted = count is not None and 0 < len(value) <= MAX_COUNTED_CHARS
    return QUOTES + escapes + (count(value) if counted else _scalar(value))


def _scalar(value: Any) -> int:
    if isinstance(value, str):
        return len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))
    return len(str(value))  # a number, true, false, null as written


def _coarse(value: Any) -> int:
    """`_content` of a deeply nested value by bytes, without recursion, inline image data
    included."""
    total, stack = 0, [value]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            total += sum(len(key) + TEMPLATE_TOKENS for key in current)
            stack.extend(current.values())
        elif isinstance(current, list):
            total += TEMPLATE_TOKENS * len(current)
            stack.extend(current)
        else:
            total += _scalar(current)
    return total


def content_tokens(payload: Mapping[str, Any], count: Count = None) -> int:
    """The most tokens the body's content can become: by bytes, or, given the model's
    tokenizer, the fewer of that and its count in tokens (with the request's frame)."""
    def total(counter: Count) -> int:
        return sum(_text(key, counter) + TEMPLATE_TOKENS + _content(value, counter)
                   for key, value in payload.items() if key not in NOT_READ)
    by_bytes = total(None)
    if count is None or by_bytes <= FRAME_TOKENS:  # counted in tokens, it is never below the frame
        return by_bytes
    return min(by_bytes, FRAME_TOKENS + total(count))


def read_texts(value: Any) -> Iterator[str]:
    """Every string of a value, keys included, and each number or boolean as JSON writes it:
    the text a bound is measured against (tests, benchmarks)."""
    stack = [value]
    while stack:
        current = stack.pop()
        if isinstance(current, str):
            yield current
        elif isinstance(current, dict):
            for key, inner in reversed(current.items()):
                stack.extend((inner, key))
        elif isinstance(current, list):
            stack.extend(reversed(current))
        elif current is not None:
            yield json.dumps(current)


def _whole(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def output_cap(payload: Mapping[str, Any], endpoint: str) -> int | None:
    if endpoint in ("responses", "responses.compact"):
        return _whole(payload.get("max_output_tokens"))
    if endpoint == "chat.completions":
        # `max_tokens` alone bounds nothing: on BytePlus it caps the answer but not the reasoning
        completion = _whole(payload.get("max_completion_tokens"))
        if completion is None:
            return None
        return max(completion, _whole(payload.get("max_tokens")) or 0)
    return 0  # embeddings: no output


def asks_for_reasoning(payload: Mapping[str, Any]) -> bool:
    """The request turns reasoning on explicitly (`reasoning.effort`, `reasoning_effort`, or
    BytePlus `thinking.type`): an estimate after the fact then allows for unseen reasoning."""
    reasoning, thinking = payload.get("reasoning"), payload.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "auto"):
        return True
    if isinstance(reasoning, dict) and reasoning.get("effort") not in (None, "none"):
        return True
    return payload.get("reasoning_effort") not in (None, "none")


def cache_hours(payload: Mapping[str, Any], now_seconds: int) -> int:
    caching = payload.get("caching")
    if not isinstance(caching, dict) or caching.get("type") != "enabled" or payload.get("store") is False:
        return 0
    expire_at = _whole(payload.get("expire_at"))
    if expire_at is None:
        return DEFAULT_CACHE_HOURS
    return max(DEFAULT_CACHE_HOURS, math.ceil((expire_at - now_seconds) / 3600))


def requested_service_tier(payload: Mapping[str, Any]) -> str | None:
    """The tier a request names; None for the account's default (`auto`, `default` or none)."""
    tier = payload.get("service_tier")
    if not isinstance(tier, str) or tier in ("auto", "default", ""):
        return None
    return "priority" if tier == "fast" else tier


def request_bounds(payload: Mapping[str, Any], endpoint: str, now_seconds: int, count: Count = None,
                   containers: Mapping[str, str] | None = None) -> RequestBounds:
    """`count`: the model's tokenizer, where it is known (`billing.tokenizer.text_counter`);
    `containers`: the unit each container the tools name by id was made as."""
    counted = [payload.get("input"), payload.get("messages")]
    parts = [part for value in counted for part in _parts(value)]
    choices = _whole(payload.get("n")) if endpoint == "chat.completions" else None
    tools = payload.get("tools") if isinstance(payload.get("tools"), list) else []
    unsized_parts = payload.get("prompt") is not None or any(_kind(part) in UNSIZED_PARTS for part in parts)
    kinds = (tool_family(t["type"]) for t in tools if isinstance(t, dict) and isinstance(t.get("type"), str))
    built_in = sorted({BUILT_IN_TOOLS[kind] for kind in kinds if kind in BUILT_IN_TOOLS})
    return RequestBounds(
        output_cap=output_cap(payload, endpoint),
        choices=min(max(choices or 1, 1), MAX_CHOICES),
        images=sum(1 for part in parts if _kind(part) in IMAGE_PARTS),
        # a conversation, or a stored prompt template, holds input of a size the body does not show
        unsized_input=payload.get("conversation") is not None or unsized_parts,
        unsized_parts=unsized_parts,
        tools=tuple(built_in),
        tool_units=request_units(tools, BUILT_IN_TOOLS, containers),
        max_tool_calls=_whole(payload.get("max_tool_calls")),
        reasoning=asks_for_reasoning(payload),
        cache_hours=cache_hours(payload, now_seconds) if endpoint == "responses" else 0,
        service_tier=requested_service_tier(payload),
        content_tokens=content_tokens(payload, count),
    )
