"""Monthly report shapes: months, grouping dimensions and rows. Pure."""

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from billing.pricing import exact_sum

TOKEN_FIELDS = ("input_tokens", "cached_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")
COUNT_FIELDS = (*TOKEN_FIELDS, "tool_calls")  # summed per row: tokens, and calls of built-in tools
COST_FIELDS = ("cost_uncached_input", "cost_cached_input", "cost_cache_write", "cost_output", "cost_reasoning",
               "cost_tool_calls", "cost_cache_storage")


def parse_month(text: str) -> tuple[datetime, datetime]:
    """`YYYY-MM` as the half-open UTC interval [first instant, first instant of next month)."""
    match = re.fullmatch(r"(\d{4})-(\d{2})", text)
    if not match or not 1 <= int(match[2]) <= 12:
        raise ValueError(f"month must look like 2026-11, not {text!r}")
    year, month = int(match[1]), int(match[2])
    if not 1 <= year <= 9998:
        raise ValueError(f"month {text!r} is out of range")
    start = datetime(year, month, 1, tzinfo=timezone.utc)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=timezone.utc)
    return start, end


def previous_month(text: str) -> str:
    start, _ = parse_month(text)
    return (start - timedelta(days=1)).strftime("%Y-%m")


@dataclass(frozen=True)
class ReportRow:
    group: dict[str, str]
    requests: int
    tokens: dict[str, int]  # COUNT_FIELDS: tokens and tool calls
    costs: dict[str, Decimal]
    cost: Decimal  # the upstream's price
    charge: Decimal  # what the tenants are charged (markups, discounts, own prices)
    cache_savings: Decimal = Decimal(0)  # cached tokens at the input price, minus what they cost
    estimated_requests: int = 0  # calls that ended without usage, priced from an estimate...
    estimated_charge: Decimal = Decimal(0)  # ...and their part of `charge`
    late_requests: int = 0  # calls of a closed month, booked in this one when they arrived...
    late_charge: Decimal = Decimal(0)  # ...and their part of `charge`


@dataclass(frozen=True)
class AdjustmentLine:
    """A credit (< 0) or a charge (> 0) to a tenant's month, apart from its usage."""
    id: int
    tenant: str
    amount: Decimal
    reason: str
    at: datetime


@dataclass(frozen=True)
class Report:
    month: str
    tenant: str | None
    by: tuple[str, ...]
    rows: list[ReportRow] = field(default_factory=list)
    currency: str = "USD"
    adjustments: tuple[AdjustmentLine, ...] = ()

    @property
    def total_cost(self) -> Decimal:
        return exact_sum(r.cost for r in self.rows)

    @property
    def total_usage_charge(self) -> Decimal:
        return exact_sum(r.charge for r in self.rows)

    @property
    def total_adjustments(self) -> Decimal:
        return exact_sum(a.amount for a in self.adjustments)

    @property
    def total_charge(self) -> Decimal:
        """What the tenants owe: their usage, and the adjustments to it."""
        return self.total_usage_charge + self.total_adjustments

    @property
    def total_cache_savings(self) -> Decimal:
        return exact_sum(r.cache_savings for r in self.rows)

    @property
    def total_requests(self) -> int:
        return sum(r.requests for r in self.rows)


def _combined(a: ReportRow, b: ReportRow, sign: int, group: dict) -> ReportRow:
    """a + b (sign 1) or a - b (sign -1), field by field."""
    return ReportRow(group=group, requests=a.requests + sign * b.requests,
                     tokens={f: a.tokens[f] + sign * b.tokens[f] for f in a.tokens},
                     costs={f: a.costs[f] + sign * b.costs[f] for f in a.costs},
                     cost=a.cost + sign * b.cost, charge=a.charge + sign * b.charge,
                     cache_savings=a.cache_savings + sign * b.cache_savings,
                     estimated_requests=a.estimated_requests + sign * b.estimated_requests,
                     estimated_charge=a.estimated_charge + sign * b.estimated_charge,
                     late_requests=a.late_requests + sign * b.late_requests,
                     late_charge=a.late_charge + sign * b.late_charge)


def _is_empty(row: ReportRow) -> bool:
    return not row.requests and not any(row.tokens.values()) and not any(row.costs.values()) and not any(
        (row.cost, row.charge, row.cache_savings, row.estimated_requests, row.estimated_charge, row.late_requests,
         row.late_charge))


def sorted_rows(rows: list[ReportRow], by: tuple[str, ...]) -> list[ReportRow]:
    """In the order of the dimensions' values, None last (as PostgreSQL sorts)."""
    def order(row: ReportRow) -> tuple:
        values = [row.group.get(d) for d in by]
        return tuple((v is None, "" if v is None else str(v)) for v in values)
    return sorted(rows, key=order)


def with_untagged(every: list[ReportRow], tagged: list[ReportRow], dimension: str,
                  by: tuple[str, ...]) -> list[ReportRow]:
    """A report by a tag, from `tagged` (the entries with the tag, by its value) and `every`
    (all entries, grouped by the other dimensions): what `every` holds beyond `tagged`, group
    by group, is the group of entries without the tag (None). So the rows always add up to
    `every`, exactly."""
    others = lambda group: tuple(sorted((k, v) for k, v in group.items() if k != dimension))  # noqa: E731
    with_tag: dict[tuple, list[ReportRow]] = {}
    for row in tagged:
        with_tag.setdefault(others(row.group), []).append(row)
    rows = [row for row in tagged if not _is_empty(row)]
    for row in every:
        rest = row
        for part in with_tag.get(others(row.group), []):
            rest = _combined(rest, part, -1, row.group)
        rest = ReportRow(**{**rest.__dict__, "group": {**row.group, dimension: None}})
        if not _is_empty(rest):
            rows.append(rest)
    return sorted_rows(rows, by)


def money(value: Decimal) -> str:
    """A decimal as a plain string, never in exponent form; at least 2 decimal places."""
    text = format(value.normalize(), "f")
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


def row_dict(row: ReportRow) -> dict:
    """A report row in the contract's JSON shape (costs still Decimal)."""
    return {**row.group, "requests": row.requests, **row.tokens, "cost": row.cost, "charge": row.charge,
            "cache_savings": row.cache_savings, "estimated_requests": row.estimated_requests,
            "estimated_charge": row.estimated_charge, "late_requests": row.late_requests,
            "late_charge": row.late_charge, **row.costs}


def report_columns(report: Report) -> list[str]:
    return [*report.by, *(["key_id"] if "key" in report.by else []), "requests", *COUNT_FIELDS, "cost", "charge",
            "cache_savings", "estimated_requests", "estimated_charge", "late_requests", "late_charge", *COST_FIELDS]


def report_csv_text(report: Report) -> str:
    """One header row, one line per group, exact decimals."""
    columns = report_columns(report)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in report.rows:
        values = row_dict(row)
        writer.writerow([money(values[c]) if isinstance(values[c], Decimal) else values[c] for c in columns])
    return out.getvalue()


def report_dict(report: Report) -> dict:
    return {
        "month": report.month,
        "currency": report.currency,
        "tenant": report.tenant,
        "by": list(report.by),
        "total_cost": money(report.total_cost),
        "total_charge": money(report.total_charge),
        "total_usage_charge": money(report.total_usage_charge),
        "total_adjustments": money(report.total_adjustments),
        "total_cache_savings": money(report.total_cache_savings),
        "total_requests": report.total_requests,
        "rows": [{k: money(v) if isinstance(v, Decimal) else v for k, v in row_dict(r).items()}
                 for r in report.rows],
        "adjustments": [adjustment_dict(a) for a in report.adjustments],
    }


def adjustment_dict(adjustment: AdjustmentLine) -> dict:
    return {"id": adjustment.id, "tenant": adjustment.tenant, "amount": money(adjustment.amount),
            "reason": adjustment.reason, "at": adjustment.at.isoformat()}
