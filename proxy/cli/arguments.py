"""The command line's argument types (each refuses bad text with a clear message) and the
limit flags that tenants and keys share."""

import argparse
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation

from billing import operator_text
from billing.catalog import NAME_PATTERN
from billing.report import parse_month
from billing.report_dimensions import parse_dimensions
from billing.statement import parse_group
from proxy.cli.output import parse_duration

FORMATS = ("table", "json", "csv")


def tool_price(text: str) -> tuple[str, Decimal]:
    name, equals, price = text.partition("=")
    if not equals or not NAME_PATTERN.fullmatch(name):
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=USD_PER_1000_CALLS, e.g. web_search=10.00")
    return name, non_negative_decimal(price)


def non_negative_decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not a decimal number") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError("must be a non-negative number")
    return value


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def bounded_count(text: str) -> int:
    """A positive whole number a limit column holds (rpm, tpm, concurrent calls)."""
    value = positive_int(text)
    if value > 1_000_000_000:
        raise argparse.ArgumentTypeError("at most 1000000000")
    return value


def whole_number(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    return int(text)


def timestamp(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def argument_type(parse):
    def convert(text: str):
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return convert


def _no_models():
    raise ValueError("name at least one model or pattern")


duration = argument_type(parse_duration)
percentages = argument_type(lambda text: [int(v) for v in text.split(",") if v.strip()])
model_names = argument_type(lambda text: [m.strip() for m in text.split(",") if m.strip()] or _no_models())
dimensions = argument_type(parse_dimensions)
statement_group = argument_type(parse_group)
year_month = argument_type(lambda text: (parse_month(text), text)[1])
# Free text (billing/operator_text.py): no control characters; a reason may span lines.
one_line = argument_type(lambda text: operator_text.line_text(text, "the value"))
reason = argument_type(lambda text: operator_text.lines_text(text, "the reason"))
new_tenant_name = argument_type(operator_text.tenant_name)
tenant_text = argument_type(lambda text: operator_text.line_text(text, "a tenant name",
                                                                 4 * operator_text.MAX_NAME_LENGTH))

# Per-call caps, fitting and request quotas, on tenants and keys alike.
FIT_FLAGS = (("max-call-usd", "max_call_usd", non_negative_decimal, "USD"),
             ("fit-floor-tokens", "fit_floor_tokens", bounded_count, "N"),
             ("daily-request-quota", "daily_request_quota", whole_number, "N"),
             ("monthly-request-quota", "monthly_request_quota", whole_number, "N"))
# (flag, column, parser, metavar) of the limits beside the monthly ones; `--no-FLAG` clears one.
TENANT_LIMIT_FLAGS = (("daily-budget", "daily_budget_usd", non_negative_decimal, "USD"),
                      ("weekly-budget", "weekly_budget_usd", non_negative_decimal, "USD"),
                      ("daily-token-quota", "daily_token_quota", whole_number, "N"),
                      ("weekly-token-quota", "weekly_token_quota", whole_number, "N"),
                      ("rpm", "requests_per_minute", bounded_count, "N"),
                      ("tpm", "tokens_per_minute", bounded_count, "N"),
                      *FIT_FLAGS)
KEY_LIMIT_FLAGS = (("daily-budget", "daily_budget_usd", non_negative_decimal, "USD"),
                   ("weekly-budget", "weekly_budget_usd", non_negative_decimal, "USD"),
                   ("rpm", "requests_per_minute", bounded_count, "N"),
                   ("tpm", "tokens_per_minute", bounded_count, "N"),
                   ("max-concurrent", "max_concurrent", bounded_count, "N"),
                   *FIT_FLAGS)


def add_limit_flags(command, flags, clearable: bool) -> None:
    for flag, column, kind, metavar in flags:
        command.add_argument(f"--{flag}", dest=column, type=kind, metavar=metavar)
        if clearable:
            command.add_argument(f"--no-{flag}", dest=f"no_{column}", action="store_true",
                                 help=f"remove the {flag} limit")


def limit_values(args, flags) -> dict:
    """The limits named on the command line (None where `--no-FLAG` clears one)."""
    values = {column: getattr(args, column) for _, column, _, _ in flags if getattr(args, column) is not None}
    values.update({column: None for _, column, _, _ in flags if getattr(args, f"no_{column}", False)})
    return values
