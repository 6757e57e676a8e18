"""What a refused call is told: the limit, the call's worst case, what is left, and what to do
about it. Pure."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from billing.fitting import OutputLine
from billing.quota import LIMIT_NAMES, Estimate
from billing.report import money

CAUSES = ("spent", "over_left", "held_in_flight")  # what refused a call under a budget or quota


@dataclass(frozen=True)
class Refused:
    limit: str  # a name of LIMIT_NAMES
    cause: str  # one of CAUSES
    worst: Estimate  # what the call would have reserved
    resets_at: datetime | None  # None: the prepaid credit, which never resets
    line: OutputLine | None = None  # the call's worst case by output cap, if it could be fitted
    floor: int = 0  # the fitting floor that applied
    left_usd: Decimal | None = None  # unspent under the limit, calls in flight aside
    room_usd: Decimal | None = None  # what calls in flight leave of it
    left_tokens: int | None = None
    room_tokens: int | None = None
    unfittable: str | None = None  # why the call's output cap could not be lowered
    subject: str | None = None  # whose budget refused it: an end user, a tag's `name=value`, a run


def _largest_cap(refused: Refused) -> int | None:
    """The largest per-choice `max_output_tokens` that would fit in what is left now."""
    line = refused.line
    if line is None:
        return None
    if refused.room_usd is not None:
        units = line.units_within(refused.room_usd)
    elif refused.room_tokens is not None:
        spare = refused.room_tokens - line.base.tokens
        units = -1 if spare < 0 else min(line.max_units, spare // max(line.unit_tokens, 1))
    else:
        return None
    return units if units >= 1 else None


def _amount(refused: Refused, usd: Decimal | None, tokens: int | None) -> str:
    if usd is not None:
        return f"${money(max(usd, Decimal(0)))}"
    return f"{max(tokens or 0, 0):,} tokens"


def limit_name(limit: str, subject: str | None = None) -> str:
    """A limit as a person reads it; an end user or tag value (the tenant's own text) quoted."""
    name = LIMIT_NAMES.get(limit, limit)
    return name.replace("{subject}", f"`{subject[:128]}`" if subject is not None else "(unnamed)")


def refusal_text(refused: Refused) -> str:
    name = limit_name(refused.limit, refused.subject)
    resets = ("It never resets. Ask an operator to add credit." if refused.resets_at is None
              else f"The limit resets at {refused.resets_at.isoformat()}.")
    if refused.limit.endswith("_requests"):
        if refused.cause == "held_in_flight":
            return f"Calls in flight hold the last of {name}; retry once they finish."
        return f"Request refused: {name} is used up. {resets}"
    worst = (f"${money(refused.worst.charge)}" if refused.left_usd is not None or refused.room_usd is not None
             else f"{refused.worst.tokens:,} tokens")
    left = _amount(refused, refused.left_usd, refused.left_tokens)
    room = _amount(refused, refused.room_usd, refused.room_tokens)
    if refused.cause == "spent":
        return f"Request refused: {name} is spent. {resets}"
    if refused.cause == "held_in_flight":
        return (f"Calls in flight hold what is left of {name} ({left} unspent, {room} not held): this call needs "
                f"up to {worst}. Retry once they finish.")
    fix = ""
    cap = _largest_cap(refused)
    if cap is not None:
        fix = (f" `max_output_tokens` (on Chat Completions, `max_completion_tokens`) of at most {cap} would fit; "
               f"the proxy does not lower a call's cap below {refused.floor} tokens itself.")
        if refused.unfittable:
            fix = (f" `max_output_tokens` of at most {cap} would fit, but the proxy cannot set it for you: "
                   f"{refused.unfittable}.")
    elif refused.unfittable:
        fix = f" The proxy cannot lower this call's output cap: {refused.unfittable}."
    return (f"Request refused: this call could cost up to {worst}, more than is left of {name} ({left})."
            f"{fix} {resets}")
