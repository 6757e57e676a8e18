"""Fitting a call to what a limit has left: lower its output cap instead of refusing it. Pure.

A call's worst case (`billing.quota.estimate`) grows by the same amount with each token of
its per-choice output cap: its input, tools and storage are one fixed part, and each unit
of cap adds one output token per choice at the dearest output rate. `OutputLine` is that
line, checked exactly at both ends, so a cap read off it is one the estimate agrees with:
the fitted call's worst case never exceeds what was allowed.

A call is fitted only down to a floor (the tenant's or key's `fit_floor_tokens`, else the
setting): below it an answer is rarely useful, and the call is refused instead. The
database picks the cap that every limit allows (each limit gives `1 / (shares x (1 + calls
in flight))` of what it has left after the input, so that a burst is not served by a few
calls taking it all); the
per-call cap (`max_call_usd`) is applied here, before that.
"""

from dataclasses import dataclass, replace
from decimal import Decimal

from billing.pricebook import ResolvedPrice
from billing.quota import Estimate, ModelLimits, estimate, worst_output_tokens
from billing.request_bounds import RequestBounds

FITTED_ENDPOINTS = frozenset({"responses", "chat.completions"})  # where an output cap can be set


@dataclass(frozen=True)
class OutputLine:
    """The worst case at each per-choice output cap from 0 to `max_units`."""

    base: Estimate  # at a cap of 0: the input and everything else that does not depend on the cap
    unit_usd: Decimal  # added per unit of cap (one output token per choice)
    unit_tokens: int  # the choices
    max_units: int  # the cap the call has unfitted (its own, else the model's)

    def at(self, units: int) -> Estimate:
        return Estimate(self.base.input_tokens, self.base.output_tokens + units * self.unit_tokens,
                        self.base.charge + units * self.unit_usd)

    def units_within(self, usd: Decimal) -> int:
        """The largest cap whose worst case costs at most `usd` (-1: not even a cap of 0)."""
        if usd < self.base.charge:
            return -1
        if self.unit_usd <= 0:
            return self.max_units
        return min(self.max_units, int((usd - self.base.charge) // self.unit_usd))


def output_line(body_bytes: int, bounds: RequestBounds, price: ResolvedPrice, multiplier: Decimal,
                limits: ModelLimits, carried_tokens: int | None) -> OutputLine | None:
    """The call's worst case as a line in its output cap, or None where it is not one (no
    output to cap, or a price whose cost is not linear in output tokens)."""
    max_units = worst_output_tokens(bounds, price, limits) // bounds.choices
    if max_units <= 0:
        return None

    def at(cap: int) -> Estimate:
        return estimate(body_bytes, replace(bounds, output_cap=cap), price, multiplier, limits, carried_tokens)

    base, one, full = at(0), at(1), at(max_units)
    line = OutputLine(base, one.charge - base.charge, one.tokens - base.tokens, max_units)
    # exact at both ends (a convex worst case that met the line there would be the line)
    return line if line.at(max_units) == full and line.at(1) == one else None


@dataclass(frozen=True)
class CallFit:
    """What admission reserves for a call, and how it may shrink it further."""

    worst: Estimate  # the worst case to reserve when it fits whole
    line: OutputLine | None  # None: the call is reserved whole or refused, never fitted
    floor_units: int = 0  # the least cap a fitted call may get
    fitted_by: str | None = None  # the limit that lowered the cap already (a per-call cap)
    unfittable: str | None = None  # why a call that could be fitted is not (shown in a refusal)


def floor_units(floor_tokens: int, line: OutputLine) -> int:
    """The floor, or the call's own cap where that is lower (it asked for no more)."""
    return max(1, min(floor_tokens, line.max_units))


def with_max_units(line: OutputLine, units: int) -> OutputLine:
    return replace(line, max_units=units)


class CallTooDear(Exception):
    """A call that no output cap at or above the floor brings under the per-call cap."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def fit_call(worst: Estimate, line: OutputLine | None, floor_tokens: int, max_call_usd: Decimal | None,
             max_call_name: str | None, unfittable: str | None = None) -> CallFit:
    """The call under its per-call cap (`max_call_usd`, set by `max_call_name`), fitted if it
    must be; raises CallTooDear if even its floor costs more. `unfittable`: why the call's cap
    cannot be set (then a call over the per-call cap is refused)."""
    if line is not None and unfittable:
        line = None
    floor = floor_units(floor_tokens, line) if line is not None else 0
    if max_call_usd is None or worst.charge <= max_call_usd:
        return CallFit(worst, line, floor, unfittable=unfittable)
    what = f"{max_call_name.replace('_', ' ')} of ${max_call_usd}" if max_call_name else f"${max_call_usd}"
    if line is None:
        raise CallTooDear(f"This call could cost up to ${worst.charge}, over the per-call cap ({what})"
                          + (f", and its output cap cannot be lowered ({unfittable})." if unfittable else "."))
    units = line.units_within(max_call_usd)
    if units < floor:
        if units < 0:
            raise CallTooDear(f"This call's input alone could cost ${line.base.charge}, over the per-call cap "
                              f"({what}); send less input.")
        raise CallTooDear(f"This call could cost up to ${worst.charge}, over the per-call cap ({what}); only "
                          f"`max_output_tokens` of {units} would fit, below the fitting floor of {floor} tokens.")
    fitted = with_max_units(line, units)
    return CallFit(fitted.at(units), fitted, min(floor, units), fitted_by=max_call_name)
