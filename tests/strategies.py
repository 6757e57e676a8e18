"""Hypothesis strategies for JSON from outside: any value in any place.

Object keys are drawn mostly from the names the wire formats use (`type`, `usage`,
`choices`, ...), so that a walk which looks a name up meets every kind of value under it:
a `type` that is a list, a `usage` that is a string, `choices` that is a number.
"""

from hypothesis import strategies as st

WIRE_NAMES = (
    "type", "id", "model", "input", "messages", "content", "text", "role", "tools", "parameters", "properties",
    "items", "image_url", "url", "file_id", "usage", "input_tokens", "output_tokens", "prompt_tokens",
    "completion_tokens", "input_tokens_details", "output_tokens_details", "cached_tokens", "reasoning_tokens",
    "prompt_tokens_details", "completion_tokens_details", "tool_usage", "choices", "delta", "response", "output",
    "status", "service_tier", "background", "stream", "stream_options", "include_usage", "caching", "prefix",
    "thinking", "reasoning", "effort", "reasoning_effort", "store", "expire_at", "created_at", "container_id",
    "max_output_tokens", "max_completion_tokens", "max_tokens", "max_tool_calls", "n", "conversation",
    "previous_response_id", "prompt", "extra_body", "error", "data", "results", "start_time", "amount", "value",
    "line_item", "metadata", "user", "safety_identifier",
)
KNOWN_TYPES = ("input_image", "image_url", "input_file", "input_text", "message", "function", "web_search",
               "code_interpreter", "code_interpreter_call", "web_search_call", "enabled", "response.completed",
               "response.created", "response.output_text.delta", "error")

scalars = (st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats(allow_nan=False)
           | st.text(max_size=12) | st.sampled_from(KNOWN_TYPES))
keys = st.sampled_from(WIRE_NAMES) | st.text(max_size=6)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5),
    max_leaves=30,
)
json_objects = st.dictionaries(keys, json_values, max_size=8)


def nested_lists(depth: int) -> list:
    """`[[[...]]]`, `depth` levels deep, built without recursion."""
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value
