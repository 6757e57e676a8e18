"""Money as people read it, on pages and statements (exports and the JSON API stay exact).
Pure.

- To the cent, with thousands separators: 1,234.50.
- An amount below a cent, but not zero, to 4 significant digits: 0.0004213, so that a
  cheap call does not read as free.
- Rounded half to even, the rule statements round their total by.
"""

from decimal import ROUND_HALF_EVEN, Decimal

CENT = Decimal("0.01")
SIGNIFICANT_BELOW_A_CENT = 4


def to_cents(value: Decimal) -> Decimal:
    """Rounded half to even to the cent (0.125 -> 0.12, 0.135 -> 0.14)."""
    return value.quantize(CENT, rounding=ROUND_HALF_EVEN)


def readable(value: Decimal) -> str:
    if value != 0 and abs(value) < CENT:
        quantum = Decimal(1).scaleb(value.adjusted() - SIGNIFICANT_BELOW_A_CENT + 1)
        rounded = value.quantize(quantum, rounding=ROUND_HALF_EVEN)
        if abs(rounded) < CENT:
            return format(rounded, "f")
    return f"{to_cents(value):,}"
