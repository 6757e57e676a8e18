"""What a whole reply (a Response or chat completion object) bills: its usage block, plus
what the upstream charges outside the token counts. Pure.

- **Service tier**: the `service_tier` the reply reports it was served in (which may differ
  from the one requested) picks the prices.
- **Built-in tools**: BytePlus counts them in `usage.tool_usage`; OpenAI bills, outside
  `usage`, each `file_search_call`; each `web_search_call` that searched (opening a page or
  finding in it carries no fee), as `web_search_preview` when the reply's tools offered
  only that variant (dearer on non-reasoning models); each distinct container that code
  interpreter or hosted shell ran in, by its memory size (`container.4g`); and each image
  the image generation tool made, at its image model's price by quality and size
  (`billing.tool_units`).
- **Cache storage** (BytePlus ModelArk): a response stored with `caching: {type:
  enabled}` keeps its context cached until `expire_at` (3 days after `created_at` when
  the reply does not say), billed per token per started hour. The context is the reply's
  input plus its visible output (what a continuation reads back as cached); a prefix cache
  (`caching.prefix: true`) stores the input only, and only from 256 tokens on, below which
  ModelArk creates none. Deleting a stored response ends its storage: the started hours
  still to come are credited (`credited_hours`).
"""

import math
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Mapping

from billing.tool_units import ToolUse, remembered, units_in_output
from billing.usage import Usage, parse_usage

DEFAULT_CACHE_LIFETIME_SECONDS = 3 * 24 * 3600
PREFIX_CACHE_MIN_TOKENS = 256
SECONDS_PER_HOUR = 3600
_STORED_STATUSES = {"completed", "incomplete"}


def reply_usage(reply: Mapping[str, Any]) -> Usage | None:
    """Everything `reply` bills; None when it carries no usage (yet)."""
    usage = parse_usage(reply.get("usage"))
    if usage is None:
        return None
    tier = _tier(reply.get("service_tier"))
    tools = ToolUse(usage.tool_calls) if usage.tool_calls else units_in_output(reply.get("output"), reply.get("tools"))
    tokens, hours = cache_storage(reply, usage) if "caching" in reply else (0, 0)
    if tier is None and not tools.units and not tokens:  # the common reply: nothing beyond its tokens
        return usage
    return replace(usage, tool_calls=tools.units, containers=tools.containers, service_tier=tier,
                   cache_storage_tokens=tokens, cache_storage_hours=hours).with_flags(*tools.flags)


def in_sessions(usage: Usage, known: Mapping[str, tuple[str, bool]]) -> Usage:
    """`usage` with its containers billed as their session records say (`known`: id -> (the
    unit it was made as, whether this call starts its session)): a container whose session
    an earlier call paid for is not billed again, one named by its id at what it was made as."""
    if not usage.containers:
        return usage
    units, containers = remembered(usage.tool_calls, usage.containers, known)
    continued = any(not known[c][1] for c, _ in usage.containers if c in known)
    billed = replace(usage, tool_calls=units, containers=containers)
    return billed.with_flags("container_session_continued") if continued else billed


def _text(value: Any) -> str | None:
    """A field that should hold a name, when it does (a list or object there is not one)."""
    return value if isinstance(value, str) else None


def _tier(value: Any) -> str | None:
    """The tier as a short printable name (it is stored, and a NUL would make the entry one
    Postgres refuses), or None."""
    if not isinstance(value, str):
        return None
    tier = value[:32]
    return tier if tier.isprintable() else None


def cache_storage(reply: Mapping[str, Any], usage: Usage) -> tuple[int, int]:
    """(tokens stored, hours billed) for a reply the upstream keeps in its context cache."""
    caching = reply.get("caching")
    if not isinstance(caching, dict) or caching.get("type") != "enabled":
        return 0, 0
    if reply.get("store") is False or _text(reply.get("status")) not in _STORED_STATUSES:
        return 0, 0
    if caching.get("prefix") is True:
        tokens = usage.input_tokens if usage.input_tokens >= PREFIX_CACHE_MIN_TOKENS else 0
    else:
        tokens = usage.input_tokens + usage.visible_output_tokens
    created = _seconds(reply.get("created_at"))
    expires = _seconds(reply.get("expire_at"))
    if not tokens or created is None:
        return 0, 0
    if expires is None:
        expires = created + DEFAULT_CACHE_LIFETIME_SECONDS
    return tokens, storage_hours(created, expires)


def storage_hours(start: Decimal | int, end: Decimal | int) -> int:
    """Started hours from `start` to `end` (Unix seconds); storage is billed by the hour."""
    return max(0, math.ceil(Decimal(end - start) / SECONDS_PER_HOUR))


def _seconds(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return Decimal(value) if isinstance(value, int) else Decimal(str(value))


def credited_hours(created_at: int, expire_at: int, deleted_at: float) -> int:
    """Started hours of storage billed at creation that a deletion at `deleted_at` saves (the
    hour it was deleted in, at least the first, stays billed)."""
    if deleted_at >= expire_at:
        return 0
    used = max(1, storage_hours(created_at, max(int(deleted_at), created_at)))
    return max(0, storage_hours(created_at, expire_at) - used)


@dataclass(frozen=True)
class StorageCredit:
    """What deleting a stored reply early gives back: `hours` of its `tokens`' storage, priced
    as `model` was at `created_at`."""
    model: str
    created_at: int
    tokens: int
    hours: int


_LATEST_TIMESTAMP = 253_402_300_799  # 9999-12-31T23:59:59Z: any later one is not a date


def storage_credit_of(reply: Any, deleted_at: float) -> StorageCredit | None:
    """The credit a deletion at `deleted_at` earns for `reply` (the stored response, as the
    upstream returns it), or None when it stores nothing, or says so in a shape we cannot read."""
    if not isinstance(reply, dict):
        return None
    usage = reply_usage(reply)
    model = reply.get("model")
    created = _seconds(reply.get("created_at"))
    if usage is None or not usage.cache_storage_token_hours or not isinstance(model, str) or created is None:
        return None
    expires = _seconds(reply.get("expire_at")) or created + DEFAULT_CACHE_LIFETIME_SECONDS
    if not 0 <= created <= expires <= _LATEST_TIMESTAMP:
        return None
    hours = credited_hours(int(created), int(expires), deleted_at)
    if not hours:
        return None
    return StorageCredit(model=model, created_at=int(created), tokens=usage.cache_storage_tokens, hours=hours)
