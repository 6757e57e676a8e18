"""Turn an upstream `usage` block into token counts the pricing engine understands.

Pure: no I/O. Both wire shapes map onto one `Usage`:
- Responses API: input_tokens, input_tokens_details.{cached_tokens, cache_write_tokens},
  output_tokens, output_tokens_details.reasoning_tokens
- Chat Completions: prompt_tokens, prompt_tokens_details.cached_tokens,
  completion_tokens, completion_tokens_details.reasoning_tokens
- Embeddings: prompt_tokens (and total_tokens) only
- BytePlus adds `tool_usage: {web_search: N, mcp: N, knowledge_search: N}`: calls of
  built-in tools, billed per call.
What the rest of a reply bills (tool-call items, the service tier, cache storage) is read
by `billing.reply`.

Inconsistent numbers (cached > input, reasoning > output, negatives, non-integers) are
kept as received in `raw` but flagged, and the billable counts are clamped so that no
component can ever be negative or counted twice.
"""

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    tool_calls: tuple[tuple[str, int], ...] = ()  # (tool unit, count), sorted by unit
    containers: tuple[tuple[str, str], ...] = ()  # (container id, its unit) a reply's tools ran in
    service_tier: str | None = None  # the tier the upstream reports it served the call in
    cache_storage_tokens: int = 0  # tokens the upstream keeps cached for this reply...
    cache_storage_hours: int = 0  # ...for this many (started) hours; negative in a credit
    flags: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def cache_storage_token_hours(self) -> int:
        return self.cache_storage_tokens * self.cache_storage_hours

    @property
    def tool_call_count(self) -> int:
        return sum(count for _, count in self.tool_calls)

    def with_flags(self, *flags: str) -> "Usage":
        added = tuple(f for f in flags if f not in self.flags)
        return replace(self, flags=self.flags + added) if added else self

    @property
    def uncached_input_tokens(self) -> int:
        return self.input_tokens - self.cached_tokens - self.cache_write_tokens

    @property
    def visible_output_tokens(self) -> int:
        return self.output_tokens - self.reasoning_tokens

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def estimate_usage(input_bytes: int, output_text_bytes: int, floor: Usage | None = None, *,
                   carried_tokens: int = 0, reasoning: Callable[[int], int] | None = None) -> Usage:
    """Usage for a call whose upstream never reported any: about 4 bytes of text a token,
    counted from the request and from the output that passed through, plus the context the
    call carried over (`previous_response_id`); for a call that reasoned, the reasoning
    `reasoning(visible_tokens)` allows for (`billing.reasoning_share`: what the model
    typically generates unseen, within the call's output cap); and never less than a running
    total the upstream reported before it stopped (`floor`). Flagged."""
    visible = -(-output_text_bytes // 4)
    reasoning = reasoning(visible) if reasoning else 0
    raw: dict[str, Any] = {"estimated_from_bytes": {"input": input_bytes, "output_text": output_text_bytes},
                           "carried_tokens": carried_tokens, "reasoning_allowance": reasoning}
    flags = ("estimated", "reasoning_allowance") if reasoning else ("estimated",)
    estimate = Usage(input_tokens=-(-input_bytes // 4) + carried_tokens, output_tokens=visible + reasoning,
                     reasoning_tokens=reasoning, flags=flags, raw=raw)
    if floor is None:
        return estimate
    raw["running_usage"] = dict(floor.raw)
    return replace(floor, input_tokens=max(floor.input_tokens, estimate.input_tokens),
                   output_tokens=max(floor.output_tokens, estimate.output_tokens),
                   reasoning_tokens=max(floor.reasoning_tokens, min(reasoning, max(floor.output_tokens,
                                                                                    estimate.output_tokens))),
                   flags=(*flags, *floor.flags), raw=raw)


def _count(value: Any, name: str, flags: list[str]) -> int:
    """A token count as a non-negative int; anything else is flagged and counts as 0."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        flags.append(f"{name}_not_integer")
        return 0
    if value < 0:
        flags.append(f"{name}_negative")
        return 0
    return value


def _details(block: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    details = block.get(name)
    return details if isinstance(details, dict) else {}


def parse_usage(block: Any) -> Usage | None:
    """Parse either usage shape; None when there is no usage block at all."""
    if not isinstance(block, dict):
        return None
    flags: list[str] = []
    if "input_tokens" in block or "output_tokens" in block:
        input_details = _details(block, "input_tokens_details")
        output_details = _details(block, "output_tokens_details")
        input_tokens = _count(block.get("input_tokens"), "input_tokens", flags)
        output_tokens = _count(block.get("output_tokens"), "output_tokens", flags)
    elif "prompt_tokens" in block or "completion_tokens" in block:  # chat completions, embeddings
        input_details = _details(block, "prompt_tokens_details")
        output_details = _details(block, "completion_tokens_details")
        input_tokens = _count(block.get("prompt_tokens"), "input_tokens", flags)
        output_tokens = _count(block.get("completion_tokens"), "output_tokens", flags)
    else:
        return None

    cached = _count(input_details.get("cached_tokens"), "cached_tokens", flags)
    cache_write = _count(input_details.get("cache_write_tokens"), "cache_write_tokens", flags)
    reasoning = _count(output_details.get("reasoning_tokens"), "reasoning_tokens", flags)

    # Clamp parts to their whole so every billed component stays >= 0 and no token
    # is billed in two components.
    if cached > input_tokens:
        flags.append("cached_exceeds_input")
        cached = input_tokens
    if cache_write > input_tokens - cached:
        flags.append("cache_write_exceeds_input")
        cache_write = input_tokens - cached
    if reasoning > output_tokens:
        flags.append("reasoning_exceeds_output")
        reasoning = output_tokens

    return Usage(
        input_tokens=input_tokens,
        cached_tokens=cached,
        cache_write_tokens=cache_write,
        output_tokens=output_tokens,
        reasoning_tokens=reasoning,
        tool_calls=_tool_usage(block.get("tool_usage"), flags),
        flags=tuple(flags),
        raw=dict(block),
    )


def _tool_usage(value: Any, flags: list[str]) -> tuple[tuple[str, int], ...]:
    """BytePlus `usage.tool_usage`: calls per built-in tool (null or absent: none)."""
    if not isinstance(value, dict):
        return ()
    counts = ((str(name)[:64], _count(count, "tool_usage", flags)) for name, count in value.items())
    return tuple(sorted((name, count) for name, count in counts if count))
