"""JSON whose amounts are exact: every Decimal is written as the JSON number it is, never
through a float (clients of OpenAI-shaped endpoints expect numbers, not strings)."""

import json
import re
from decimal import Decimal

_MARKED = re.compile(r'"\\u0000decimal:(-?[0-9.]+)"')


def json_number(value: Decimal) -> str:
    """A decimal as a plain JSON number: no exponent, no trailing zeros."""
    return format(value.normalize(), "f")


def exact_json(data: object) -> str:
    text = json.dumps(data, default=lambda d: f"\x00decimal:{json_number(d)}")
    return _MARKED.sub(r"\1", text)
