"""The usage of a call the upstream took but never reported usage for: a stream cut or
abandoned, an `error` event, a body that never came whole, a process that died, a
background response the upstream forgot. Pure.

It may still be billed, so it is billed from an estimate, flagged, never as zero:
- tokens from the bytes seen (`billing.usage.estimate_usage`), plus the input the body does
  not show (`CallContext.unseen_input_tokens`), plus the reasoning the model typically does
  when the call reasoned (`billing.reasoning_share`);
- built-in tools from the tool calls the reply showed (one begun counts);
- where the proxy did not see all the upstream did (`saw_all` false: it stopped reading
  while the upstream worked on, the reply never came whole, the process died), the most
  the call could have billed beyond that: its output cap (flag `output_worst_case`) and its
  tools' worst case (flag `tool_units_worst_case`), both what its admission reserved.
"""

from dataclasses import replace
from functools import partial

from billing.ledger import CallContext
from billing.reasoning_share import ReasoningHistory
from billing.tool_units import ToolUse, merged
from billing.usage import Usage, estimate_usage


def unreported_usage(call: CallContext, history: ReasoningHistory, *, saw_all: bool, output_text_bytes: int = 0,
                     reasoned: bool = False, floor: Usage | None = None, seen: ToolUse = ToolUse()) -> Usage:
    """`reasoned`: the reply showed reasoning (beside the call's own `reasoning`); `floor`: a
    running total the upstream reported before it stopped; `seen`: what its output items bill."""
    reasoning = partial(history.allowance, call.price.model, output_cap=call.output_cap, tenant_id=call.tenant_id) \
        if call.reasoning or reasoned else None
    usage = estimate_usage(call.request_bytes, output_text_bytes, floor,
                           carried_tokens=call.carried_tokens + call.unseen_input_tokens, reasoning=reasoning)
    tool_calls, flags = merged(usage.tool_calls, seen.units), list(seen.flags)
    if call.unseen_input_tokens:
        flags.append("input_unseen")
    if not saw_all:
        if call.output_cap:
            unseen = max(0, call.output_cap - usage.output_tokens)
            usage = replace(usage, output_tokens=usage.output_tokens + unseen,
                            reasoning_tokens=usage.reasoning_tokens + unseen if reasoning else usage.reasoning_tokens)
            flags.append("output_worst_case")
        if call.worst_tools:
            tool_calls = merged(tool_calls, call.worst_tools)
            flags.append("tool_units_worst_case")
    return replace(usage, tool_calls=tool_calls, containers=seen.containers).with_flags(*flags)
