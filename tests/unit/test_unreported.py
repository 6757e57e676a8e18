"""The usage of a call whose usage never came, worked out by hand: the tokens seen, the
input the body does not show, the reasoning the model typically does, the tool calls seen;
and, where the proxy did not see all the upstream did, what the admission reserved."""

import uuid
from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.catalog import load_catalog, shipped_catalog_path
from billing.ledger import CallContext
from billing.pricebook import PriceBook
from billing.reasoning_share import ReasoningHistory
from billing.tool_units import ToolUse
from billing.unreported import unreported_usage

CATALOG = load_catalog(shipped_catalog_path())
NOW = datetime(2026, 12, 3, tzinfo=timezone.utc)
PRICE = PriceBook(CATALOG.versions, CATALOG.aliases).resolve("gpt-5.5", NOW)


def call(**fields) -> CallContext:
    defaults = dict(request_id=uuid.uuid4(), tenant_id=1, key_id=1, endpoint="responses", stream=True,
                    started_at=NOW, price=PRICE, request_bytes=400, output_cap=10_000)
    return CallContext(**{**defaults, **fields})


SEARCHES = ToolUse((("web_search", 2),))


@pytest.mark.parametrize(("context", "kwargs", "tokens", "tools", "flags"), [
    # 400 bytes in (100 tokens), 80 bytes out (20 tokens): the upstream said it stopped
    ({}, {"saw_all": True, "output_text_bytes": 80}, (100, 20, 0), (), {"estimated"}),
    # with 300 tokens carried over and an image of 1,000 tokens the body does not show
    ({"carried_tokens": 300, "unseen_input_tokens": 1_000}, {"saw_all": True}, (1_400, 0, 0), (),
     {"estimated", "input_unseen"}),
    # a call that reasons: 4,096 allowed on top of the 20 seen
    ({"reasoning": True}, {"saw_all": True, "output_text_bytes": 80}, (100, 4_116, 4_096), (),
     {"estimated", "reasoning_allowance"}),
    # the searches its output showed
    ({"worst_tools": (("web_search", 10),)}, {"saw_all": True, "seen": SEARCHES}, (100, 0, 0),
     (("web_search", 2),), {"estimated"}),
    # the proxy did not see it all: the whole output cap, and ten searches, as admitted
    ({"worst_tools": (("web_search", 10),)}, {"saw_all": False, "seen": SEARCHES, "output_text_bytes": 80},
     (100, 10_000, 0), (("web_search", 10),), {"estimated", "output_worst_case", "tool_units_worst_case"}),
    # ...and for a call that reasons, what it did not show is reasoning: 10,000 - 20
    ({"reasoning": True}, {"saw_all": False, "output_text_bytes": 80}, (100, 10_000, 9_980), (),
     {"estimated", "reasoning_allowance", "output_worst_case"}),
])
def test_hand_worked(context, kwargs, tokens, tools, flags):
    usage = unreported_usage(call(**context), ReasoningHistory(), **kwargs)
    assert (usage.input_tokens, usage.output_tokens, usage.reasoning_tokens) == tokens
    assert usage.tool_calls == tools and set(usage.flags) == flags


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**6), st.booleans(), st.booleans(),
       st.integers(0, 20))
def test_never_below_what_was_seen_and_within_the_worst_case_when_unseen(output_bytes, cap, unseen_input, reasoning,
                                                                         saw_all, searches):
    context = call(output_cap=cap, unseen_input_tokens=unseen_input, reasoning=reasoning,
                   worst_tools=(("web_search", 10),))
    usage = unreported_usage(context, ReasoningHistory(), saw_all=saw_all, output_text_bytes=output_bytes,
                             seen=ToolUse((("web_search", searches),)) if searches else ToolUse())
    visible = -(-output_bytes // 4)
    assert usage.output_tokens >= visible and usage.input_tokens >= 100 + unseen_input
    assert dict(usage.tool_calls).get("web_search", 0) == (max(searches, 10) if not saw_all else searches)
    if not saw_all:
        assert usage.output_tokens == max(cap, usage.output_tokens) and usage.output_tokens >= cap
