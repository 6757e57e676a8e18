"""What every admin API body is made of: money as exact decimal strings, names, times, ids,
time zones, thresholds; strict request bodies, converted query strings; the error body.

Money is a decimal string everywhere ("12.50"): never a JSON number, never a float.
"""

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated
from zoneinfo import available_timezones

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema

from billing import operator_text
from billing.quota import check_thresholds, check_time_zone
from billing.report import money

MONEY_PATTERN = r"^[0-9]{1,15}(\.[0-9]{1,12})?$"
MAX_ID = 2**63 - 1
MONTH_PATTERN = r"^(19[7-9][0-9]|[2-8][0-9]{3}|9[0-8][0-9]{2})-(0[1-9]|1[0-2])$"  # 1970-01 to 9899-12


POSITIVE_MONEY_PATTERN = r"^([1-9][0-9]{0,14}(\.[0-9]{1,12})?|0\.[0-9]{0,11}[1-9][0-9]{0,11})$"


def _decimal_string(pattern: str, example: str, what: str = "a decimal string"):
    """A money field: a JSON string matching `pattern`, exact as a Decimal, written back the same way."""
    def parse(value: object) -> Decimal:
        if isinstance(value, Decimal):  # from our own objects, on the way out
            return value
        if not isinstance(value, str) or not re.fullmatch(pattern, value):
            raise ValueError(f'must be {what} such as "{example}"')
        return Decimal(value)

    return Annotated[Decimal, BeforeValidator(parse), PlainSerializer(money, return_type=str),
                     WithJsonSchema({"type": "string", "pattern": pattern, "examples": [example]})]


Money = _decimal_string(MONEY_PATTERN, "12.50")
SignedMoney = _decimal_string(r"^-?" + POSITIVE_MONEY_PATTERN[1:], "-12.50",
                              "a non-zero decimal string (negative: a credit)")
PositiveMoney = _decimal_string(POSITIVE_MONEY_PATTERN, "25.00", "a positive decimal string")
# On the way out a price may carry more decimals (10% of a price with 12 decimals has 13).
MoneyOut = Annotated[
    Decimal,
    PlainSerializer(money, return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^-?[0-9]+\.[0-9]+$", "examples": ["12.50"]}),
]


def _checked(check, pattern: str, max_length: int, min_length: int = 0):
    """Text checked by `check` (billing/operator_text.py), its JSON Schema saying the same."""
    return Annotated[str, Field(min_length=min_length, max_length=max_length, json_schema_extra={"pattern": pattern}),
                     AfterValidator(check)]


# A tenant's name, normalised (NFKC, trimmed); no control or invisible characters.
Name = _checked(operator_text.tenant_name, operator_text.NAME_PATTERN, operator_text.MAX_NAME_LENGTH, 1)
# One line of free text (labels, names to filter by): no control characters (NUL first:
# Postgres text holds no NUL), no tab, no newline.
Text = _checked(operator_text.line_text, operator_text.LINE_PATTERN, operator_text.MAX_TEXT_LENGTH)
# A reason (of a top-up, an adjustment): not blank; tab and newline allowed, no other control.
Reason = _checked(operator_text.lines_text, operator_text.LINES_PATTERN, operator_text.MAX_TEXT_LENGTH, 1)
ModelPattern = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:/@+*?\[\]-]+$")]
TierBound = Annotated[str, Field(pattern=r"^[1-9][0-9]{0,17}$")]


def _timestamp_in(value: object) -> datetime:
    """An RFC 3339 date-time with its offset; a bare number is not a time here."""
    text = value.strip().upper() if isinstance(value, str) else ""
    if "T" not in text:
        raise ValueError("must be an RFC 3339 date-time such as 2026-11-01T00:00:00Z")
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("must include a time zone offset, e.g. Z")
    return parsed


Timestamp = Annotated[datetime, BeforeValidator(_timestamp_in),
                      WithJsonSchema({"type": "string", "format": "date-time", "examples": ["2026-11-01T00:00:00Z"]})]

_EXPIRY_YEARS = r"^(19[7-9][0-9]|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9])-"  # 1970 to 9989


def _expiry_in(value: object) -> datetime:
    """A key's expiry: a date-time from 1970 to 9989, so any offset keeps it a date in UTC."""
    parsed = _timestamp_in(value)
    if not 1970 <= parsed.year <= 9989:
        raise ValueError("must be a date-time from 1970 to 9989")
    return parsed


Expiry = Annotated[datetime, BeforeValidator(_expiry_in),
                   WithJsonSchema({"type": "string", "format": "date-time", "pattern": _EXPIRY_YEARS,
                                   "examples": ["2027-01-01T00:00:00Z"]})]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
TokenCount = Annotated[int, Field(ge=0, le=MAX_ID)]
Seconds = Annotated[int, Field(ge=0, le=10 * 365 * 86400)]
PerMinute = Annotated[int, Field(ge=1, le=1_000_000_000)]


def _time_zone_in(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("must be an IANA time zone name")
    return check_time_zone(value)


def _thresholds_in(value: object) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ValueError("must be a list of percentages")
    return check_thresholds(value)


TimeZone = Annotated[str, BeforeValidator(_time_zone_in),
                     WithJsonSchema({"type": "string", "enum": sorted(available_timezones()),
                                     "examples": ["UTC", "Europe/Berlin"]})]
Thresholds = Annotated[list[int], BeforeValidator(_thresholds_in),
                       WithJsonSchema({"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 1000},
                                       "minItems": 1, "maxItems": 10, "examples": [[50, 80, 100]]})]


class Strict(BaseModel):
    """A request body: unknown fields refused, no type coercion ("5" is not an integer).
    Validated from the JSON text, where an ISO 8601 string is a valid datetime."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Query(BaseModel):
    """Query parameters arrive as strings, so these are converted."""

    model_config = ConfigDict(extra="forbid")


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorOut(BaseModel):
    error: ErrorDetail
