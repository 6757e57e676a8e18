"""Rendering CLI output (table, json, csv) and parsing CLI values. Pure."""

import csv
import io
import re
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Sequence

import orjson

from billing.report import money

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """`90s`, `15m`, `12h`, `30d`, `2w`."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text)
    if not match or int(match[1]) == 0:
        raise ValueError(f"a duration looks like 30d, 12h or 15m, not {text!r}")
    return timedelta(seconds=int(match[1]) * _UNITS[match[2]])


def plain(value: Any) -> Any:
    """A value as JSON and CSV show it: decimals as exact strings, times in ISO 8601."""
    if isinstance(value, Decimal):
        return money(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def to_json(data: Any) -> str:
    return orjson.dumps(data, default=plain, option=orjson.OPT_INDENT_2).decode()


def to_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else plain(row.get(c)) for c in columns])
    return out.getvalue().rstrip("\n")


def to_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    cells = [[("" if row.get(c) is None else str(plain(row.get(c)))) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in cells:
        lines.append("  ".join(v.rjust(w) if _numeric(v) else v.ljust(w) for v, w in zip(row, widths)).rstrip())
    return "\n".join(lines)


def _numeric(text: str) -> bool:
    return bool(re.fullmatch(r"-?\d+(\.\d+)?", text))


def render(rows: Sequence[dict[str, Any]], columns: Sequence[str], fmt: str) -> str:
    if fmt == "json":
        return to_json([{c: row.get(c) for c in columns} for row in rows])
    if fmt == "csv":
        return to_csv(rows, columns)
    return to_table(rows, columns)
