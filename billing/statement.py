"""A tenant's monthly statement: one line per model (or, for chargeback, per end user or per
value of a tag), one per adjustment, and the total, to attach to an internal invoice. Built
from a report of the tenant grouped by that one dimension. Pure.

Rounding policy: a statement rounds once, at the total, half to even to the cent. The lines
keep their exact amounts (shown to the cent, the exact value beside), and the difference
between the exact total and the total due is a line of its own, so that lines + rounding =
total due, and the exact lines still sum to the ledger."""

import csv
import io
import calendar
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from billing.display import to_cents
from billing.report import Report, money
from billing.report_dimensions import USER, parse_dimensions, tag_name

COLUMNS = ("model", "requests", "input_tokens", "cached_tokens", "output_tokens", "reasoning_tokens", "charge_usd")


def parse_group(text: str) -> str:
    """What a statement's lines are per: `model`, `user` or `tag:NAME`."""
    dims = parse_dimensions(text)
    if len(dims) != 1 or not (dims[0] in ("model", USER) or tag_name(dims[0]) is not None):
        raise ValueError("a statement groups its lines by one of model, user, tag:NAME")
    return dims[0]


@dataclass(frozen=True)
class Statement:
    tenant: str
    month: str
    lines: list[dict]
    total: Decimal  # usage and adjustments
    adjustments: tuple = ()  # billing.report.AdjustmentLine, each shown apart
    late_requests: int = 0  # calls of a closed month that arrived in this one (in `lines` too)
    late_charge: Decimal = Decimal(0)
    dimension: str = "model"  # what each line is for (its key in `lines`): model, user or tag:NAME

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.dimension, *COLUMNS[1:])

    @property
    def number(self) -> str:
        """Stable: the same month and tenant always give the same number."""
        return f"ST-{self.month.replace('-', '')}-{self.tenant}"

    @property
    def period(self) -> tuple[date, date]:
        """The first and the last day of the month (UTC days, as the report's)."""
        year, month = (int(part) for part in self.month.split("-"))
        return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])

    @property
    def total_due(self) -> Decimal:
        return to_cents(self.total)

    @property
    def rounding(self) -> Decimal:
        """What rounding the total added (negative: took off)."""
        return self.total_due - self.total


def statement_from(report: Report) -> Statement:
    if report.tenant is None or len(report.by) != 1 or parse_group(report.by[0]) != report.by[0]:
        raise ValueError("a statement is a report of one tenant grouped by model, user or tag:NAME")
    dimension = report.by[0]
    lines = [{dimension: r.group[dimension], "requests": r.requests, **{k: r.tokens[k] for k in COLUMNS[2:6]},
              "charge_usd": r.charge} for r in report.rows]
    return Statement(report.tenant, report.month, lines, report.total_charge, report.adjustments,
                     sum(r.late_requests for r in report.rows), sum((r.late_charge for r in report.rows), Decimal(0)),
                     dimension)


def statement_csv(statement: Statement) -> str:
    """Exact amounts; a line of entries without a user or that tag has an empty first cell."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(statement.columns)
    for line in statement.lines:
        writer.writerow([money(line[c]) if c == "charge_usd" else line[c] for c in statement.columns])
    for adjustment in statement.adjustments:
        writer.writerow([f"ADJUSTMENT {adjustment.at:%Y-%m-%d}: {adjustment.reason}", "", "", "", "", "",
                         money(adjustment.amount)])
    if statement.late_requests:
        writer.writerow([f"of which LATE from closed months: {statement.late_requests} calls", "", "", "", "", "",
                         money(statement.late_charge)])
    writer.writerow(["TOTAL", sum(line["requests"] for line in statement.lines), "", "", "", "",
                     money(statement.total)])
    return out.getvalue()
